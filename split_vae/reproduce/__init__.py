"""The paper's reproduction: `reproduce(make_plan("cifar10"), "runs/cifar10")`.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022: Tables 1, 3, 4 (GEN and GMM for
x_hat, x1, x2, mix), Table 2 (CIFAR-10 per category), Figure 9 (mean images),
Figures 14, 15 (the ablation curves). `python -m split_vae reproduce` is the
command line of the same; docs/reproduce.md says what each scale runs.
"""

from .pipeline import Layout, reproduce, write_tables
from .plan import DATASETS, SCALES, Plan, make_plan

__all__ = ["DATASETS", "Layout", "Plan", "SCALES", "make_plan", "reproduce", "write_tables"]
