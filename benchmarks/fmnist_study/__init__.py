"""The parts of benchmarks/fashion_mnist_study.py, one concern each:

    training.py     the reduced configuration, the paired models, resumable training
    evaluation.py   every number of the table, recomputed from the shipped presets
    analysis.py     paired differences over seeds, the claims, the check against the
                    committed numbers
    report.py       the table as markdown
    figures.py      the figures of docs/fashion_mnist_study/

Paths are arguments with the defaults below, so tests run on temporary folders.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHTS_DIR = os.path.join(ROOT, "weights", "fashion_mnist")  # the shipped presets
WORK_DIR = os.path.join(ROOT, "runs", "fashion_mnist_study")  # checkpoints while training
FIGURES_DIR = os.path.join(ROOT, "docs", "fashion_mnist_study")
STUDY_JSON = os.path.join(WEIGHTS_DIR, "study.json")          # the committed numbers
SUBSET_JSON = os.path.join(WEIGHTS_DIR, "study_subset.json")  # the CI subset's
SEEDS = (0, 1, 2)  # a split and a vanilla model for each
