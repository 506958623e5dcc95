"""CIFAR-10's categories against the whole dataset (the paper's Table 2), and mean images
(its Figure 9).

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738),
Section V.B: "the iFID score between each category and the full dataset (we
derive 10000 image per category by flipping images in the training set, and
compare them with the test-set)". The scores are high; for "a random mix" of
the dataset the score drops to 5.3. Here:

- a category's set is its 5,000 training images and their horizontal mirror
  images (`category_images`), 10,000 in all;
- the "whole dataset" is the test set (10,000 images), whose features are
  computed once (and cached: `metrics.reference_statistics`);
- the mix is the same construction without the category filter: as many
  images (10,000) drawn at random, without replacement, from the training
  images and their mirror images (`mix_indices`).

The distance is the Fréchet distance in the extractor's features; it is the
paper's FID only with the paper's extractor ('inception', Keras InceptionV3
with ImageNet weights), and every result says which it is.

Imports numpy, tqdm, `split_vae.checks`, `split_vae.data.cifar10` and
`split_vae.metrics`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm.auto import tqdm

from .. import checks, metrics
from ..evaluation import normalise_report
from ..data.cifar10 import CIFAR10_CLASSES

logger = logging.getLogger(__name__)

MIX = "mix"


def _checked_labels(train_images, train_labels, classes) -> np.ndarray:
    """Labels as int64 (N,), one per training image, each in 0..len(classes)-1."""
    labels = np.asarray(train_labels)
    if labels.ndim != 1 or len(labels) != len(train_images):
        raise ValueError(f"train_labels must be one label per training image: "
                         f"{len(train_images):,} images, labels of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"train_labels must be integers, received dtype {labels.dtype}")
    k = len(classes)
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"train_labels lie in [{labels.min()}, {labels.max()}]; the "
                         f"{k} categories are 0..{k - 1}")
    return labels.astype(np.int64)


def _category_index(category, classes) -> int:
    if isinstance(category, str):
        if category not in classes:
            raise ValueError(f"unknown category {category!r}; the categories are "
                             f"{list(classes)}")
        return list(classes).index(category)
    if isinstance(category, (bool, np.bool_)) or not isinstance(category, (int, np.integer)) \
            or not 0 <= category < len(classes):
        raise ValueError(f"category must be a name or an index 0..{len(classes) - 1}, "
                         f"received {category!r}")
    return int(category)


def mirror(images: np.ndarray) -> np.ndarray:
    """Horizontal mirror images of (N, H, W, C) images (left and right swapped)."""
    return images[:, :, ::-1, :]


def category_images(train_images, train_labels, category,
                    classes=CIFAR10_CLASSES) -> np.ndarray:
    """A category's training images, then their horizontal mirror images.

    The paper's set of a CIFAR-10 category: its 5,000 training images and
    their flips, 10,000 images (Section V.B). The images keep their order in
    the training set and their dtype.

    Args:
        train_images: (N, H, W, C) images, uint8 or floats in [0, 1].
        train_labels: (N,) integer labels in 0..len(classes)-1.
        category: a name of `classes` or its index.
    Returns:
        (2 n, H, W, C): the n images of the category, then their mirror images.
    """
    train_images = checks.images(train_images, "training images", keep_uint8=True)
    labels = _checked_labels(train_images, train_labels, classes)
    c = _category_index(category, classes)
    if not np.any(labels == c):
        raise ValueError(f"no training image of category {classes[c]!r} (label {c})")
    return _category_set(train_images, labels, c)


def _category_set(train_images, labels, c) -> np.ndarray:
    chosen = train_images[labels == c]
    return np.concatenate([chosen, mirror(chosen)])


def mix_indices(n_train: int, n: int, seed: int = 0) -> np.ndarray:
    """The mix's draw: n distinct indices into the 2 n_train training images and
    their mirror images, sorted; index i < n_train is training image i, index
    i >= n_train the mirror image of training image i - n_train."""
    n_train, n = int(n_train), int(n)
    if not 2 <= n <= 2 * n_train:
        raise ValueError(f"the mix needs 2 to {2 * n_train:,} images (the training images "
                         f"and their mirror images), received n_mix={n:,}")
    return np.sort(np.random.default_rng(seed).choice(2 * n_train, size=n, replace=False))


def _mix_rows(index, labels, c):
    """The mix's indices of category c and their rows in the category's set
    (its images, then their mirror images)."""
    n_train = len(labels)
    members = np.flatnonzero(labels == c)
    mine = index[labels[index % n_train] == c]
    rows = np.searchsorted(members, mine % n_train) + np.where(mine >= n_train,
                                                               len(members), 0)
    return mine, rows


def category_fid(train_images, train_labels, test_images, extractor="inception",
                 seed: int = 0, progress: bool = True, n_mix: int | None = None,
                 classes=CIFAR10_CLASSES, cache_dir: str | None = None,
                 use_cache: bool = True) -> dict:
    """The paper's Table 2: each category's Fréchet distance to the test set, and the mix's.

    Each category's set (`category_images`: its training images and their
    mirror images) and the mix (n_mix images drawn by `mix_indices` from all
    the training images and their mirror images) are compared with the test
    images. The test set's features are computed once (cached on disk as
    `evaluation.evaluate_model` caches them); every training image's features
    once too: the mix takes its rows from the categories' features, since the
    extractor sees every image on its own.

    Args:
        train_images: (N, H, W, C) training images, uint8 or floats in [0, 1].
        train_labels: (N,) integer labels in 0..len(classes)-1; every category
            must have an image.
        test_images: (M, H, W, C) test images (the paper: CIFAR-10's 10,000).
        extractor: anything `metrics.get_extractor` takes ('inception' is the
            paper's FID).
        seed: seeds the mix's draw.
        progress: show a progress bar over the categories (and the
            extractor's bars).
        n_mix: images in the mix; default the size of a category's set when
            the categories are balanced, 2 N / len(classes) (10,000 for
            CIFAR-10, as the paper's).
        classes: the categories' names, by label.
        cache_dir, use_cache: where the test set's features are cached.
    Returns:
        JSON-able dict: "fd" maps each category name, then "mix", to its
        Fréchet distance (an FID only where "metric" says "FID": results
        written before this key existed hold it as "fid", which
        `normalise_result` reads); "metric", "metric_protocol" and "note"
        say what the distance is; "protocol" how it was measured.
    """
    t0 = time.time()
    ext = metrics.get_extractor(extractor)
    train_images = checks.images(train_images, "training images", keep_uint8=True)
    test_images = checks.images(test_images, "test images", keep_uint8=True)
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"training images have shape {train_images.shape[1:]}, the test "
                         f"images {test_images.shape[1:]}")
    labels = _checked_labels(train_images, train_labels, classes)
    absent = [name for c, name in enumerate(classes) if not np.any(labels == c)]
    if absent:
        raise ValueError(f"no training image of the categories {absent}; every category "
                         "needs its images")
    n_mix = 2 * len(train_images) // len(classes) if n_mix is None else n_mix
    index = mix_indices(len(train_images), n_mix, seed)

    mu, sigma = metrics.reference_statistics(test_images, ext, cache_dir, use_cache,
                                             desc="test-set features")
    fd, sizes, mix_feats, mix_counts = {}, {}, [], {}
    for c, name in enumerate(tqdm(classes, desc="categories", unit="category",
                                  disable=not progress)):
        images = _category_set(train_images, labels, c)
        feats = ext.features(images, desc=f"{name} features", progress=progress)
        fd[name] = metrics.frechet_distance(*metrics.feature_statistics(feats), mu, sigma)
        sizes[name] = len(images)
        mine, rows = _mix_rows(index, labels, c)
        mix_feats.append(feats[rows])
        mix_counts[name] = int(len(mine))
        logger.info("%s: %s %.3f (%d images)", name, ext.metric_name, fd[name], len(images))
    fd[MIX] = metrics.frechet_distance(
        *metrics.feature_statistics(np.concatenate(mix_feats)), mu, sigma)
    logger.info("mix: %s %.3f (%d images)", ext.metric_name, fd[MIX], n_mix)
    return {
        "fd": fd,
        "metric": ext.metric_name,
        "metric_protocol": ext.protocol,
        "note": ext.note,
        "protocol": _protocol(ext, test_images, sizes, n_mix, mix_counts, seed),
        "seconds": round(time.time() - t0, 1),
    }


def _protocol(ext, test_images, sizes: dict, n_mix: int, mix_counts: dict, seed) -> dict:
    """What was measured and how: the result's "protocol" entry."""
    return {
        "extractor": ext.name,
        "extractor_fingerprint": ext.fingerprint(),
        "feature_dim": ext.dim,
        "preprocessing": ext.preprocessing(),
        "reference": "the test set (the paper's 'whole dataset')",
        "n_test": int(len(test_images)),
        "category_set": "the category's training images and their horizontal mirror images",
        "n_per_category": sizes,
        "mix": "images drawn at random without replacement from all the training images "
               "and their horizontal mirror images",
        "n_mix": int(n_mix),
        "mix_per_category": mix_counts,
        "seed": seed,
        "statistics": "float64 mean and covariance (ddof=1); Fréchet distance from "
                      "the eigenvalues of a symmetric form of S1 S2",
    }


def _fmt(v: float) -> str:
    # Two decimals as the paper's tables; small distances (other extractors)
    # keep three significant digits instead of printing 0.00.
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def normalise_result(result: dict) -> dict:
    """A copy of a categories' result with its distances under "fd" (an old
    result's "fid" renamed; `evaluation.normalise_report`)."""
    return normalise_report(result, {"fid": "fd"})


def format_category_table(result: dict) -> str:
    """The paper's Table 2 as a markdown table (category | distance, the mix last),
    headed by what the distance is and followed by its note on comparability.
    Reads old results too (`normalise_result`)."""
    result = normalise_result(result)
    label = result.get("metric", "FD")
    proto = result["protocol"]
    lines = [f"{result.get('metric_protocol', label)}; extractor {proto['extractor']}; "
             f"each category: {proto['category_set']}, against {proto['n_test']:,} test "
             f"images; mix: {proto['n_mix']:,} images drawn at random (seed "
             f"{proto['seed']})", "",
             f"| category | {label} |", "|---|---:|"]
    names = [k for k in result["fd"] if k != MIX] + [MIX]
    lines += [f"| {name} | {_fmt(result['fd'][name])} |" for name in names
              if name in result["fd"]]
    lines += ["", f"note: {result['note']}"]
    return "\n".join(lines)


def mean_images(images_by_name: dict, chunk: int = 4096) -> dict:
    """The per-pixel mean image of each dataset (the paper's Figure 9).

    Args:
        images_by_name: name -> (N, H, W, C) images, uint8 or floats in
            [0, 1] (a memory map is read chunk by chunk, never whole).
        chunk: images converted to floats at a time.
    Returns:
        name -> (H, W, C) float64 mean in [0, 1], summed in float64.
    """
    chunk = checks.integer(chunk, "chunk")
    if not images_by_name:
        raise ValueError("no datasets given: images_by_name is empty")
    means = {}
    for name, images in images_by_name.items():
        if not hasattr(images, "shape"):
            images = np.asarray(images)
        if len(images.shape) != 4 or images.shape[0] == 0:
            raise ValueError(f"{name}: expected images (N, H, W, C) with N >= 1, received "
                             f"shape {tuple(images.shape)}")
        total = np.zeros(images.shape[1:], np.float64)
        for i in range(0, len(images), chunk):
            part = checks.images(images[i:i + chunk], f"{name} images")
            total += part.sum(axis=0, dtype=np.float64)
        means[name] = total / len(images)
    return means
