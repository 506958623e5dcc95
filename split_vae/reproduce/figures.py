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

from ..data import find_cifar10, read_cifar10_labelled
from ..fileio import atomic_write_json, read_json
from ..model import SplitVAE
from ..plotting import (plot_ablation_curves, plot_mean_images, plot_split_grid,
                        plot_split_kinds)
from .categories import category_fid, format_category_table, mean_images, normalise_result

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
        metric = result["metric"]
        if metric == "FD":  # a distance in some other network's features: name it
            metric = f"FD ({plan.extractor})"
        plot_ablation_curves(result["history"], metric, path,
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


def dataset_extras(plan, layout, test, data_dir=None) -> dict:
    """The paper's per-dataset extras, each computed once into OUT/extra/:

    cifar10: Table 2, each category against the test set (`categories.category_fid`;
    it needs the labels, read from CIFAR-10's batches in data_dir), and for
    cifar10 and celeba the mean image (Figure 9) of the reference (test) images.
    Returns {name: {"markdown": ..., ...}}.
    """
    extras = {}
    if plan.dataset == "cifar10":
        extras["categories"] = _categories(plan, layout, test, data_dir)
    if plan.dataset in ("cifar10", "celeba"):
        path = layout.file("figures", "mean_image.png")
        if not os.path.exists(path):
            means = mean_images({plan.dataset: test})
            plot_mean_images(means, path, title=f"mean of the {len(test):,} reference "
                                                f"(test) images (Figure 9)")
        extras["mean_image"] = {"figure": os.path.relpath(path, layout.out),
                                "markdown": f"Mean image (Figure 9): "
                                            f"{os.path.relpath(path, layout.out)}."}
    return extras


def _categories(plan, layout, test, data_dir) -> dict:
    path = layout.file("extra", "categories.json")
    if os.path.exists(path):
        return normalise_result(read_json(path, "the categories' table"))
    if data_dir is None or find_cifar10(data_dir) is None:
        reason = ("Table 2 (each CIFAR-10 category against the test set) needs the labels: "
                  "pass --data-dir with CIFAR-10's batches (cifar-10-batches-py or -bin)")
        logger.warning("reproduce: %s", reason)
        return {"skipped": reason, "markdown": f"Table 2: not computed. {reason}."}
    train, labels = read_cifar10_labelled(data_dir, "train")
    result = category_fid(train, labels, test, plan.extractor, seed=0,
                          cache_dir=layout.file("cache"))
    result["markdown"] = "## Table 2: each category against the test set\n\n" + \
        format_category_table(result)
    atomic_write_json(path, result)
    return result
