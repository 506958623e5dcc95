"""The numbers of a reproduction: the ablation curve's points, each finished
model's evaluation with every GMM of the plan, and the "real" row.

Every model is evaluated with `evaluation.evaluate_model` (the paper's
protocol: GEN and GMM samples of x_hat, x1, x2 and mix, the reconstruction,
the latent statistics, the split kind), with the plan's first GMM; every
further GMM of the plan (Table 1 compares 20 and 100 components) adds its own
GMM samples of the same model, measured against the same reference.
"""

from __future__ import annotations

import logging
import os
import warnings

import keras
import numpy as np

from .. import metrics, sampling
from ..evaluation import Reference, evaluate_model, part_distances, present_parts
from ..fileio import read_json
from ..model import SplitVAE

logger = logging.getLogger(__name__)

EVAL_SEED = 0  # prior draws, every GMM fit and its draws, the kernel distance's subsets


def history_measure(extractor, reference_images: np.ndarray, n_samples: int,
                    components: int, seed: int = EVAL_SEED, cache_dir: str | None = None):
    """A callable model -> {"x_hat": fd, "x1": fd, "x2": fd} (x_hat alone for a
    vanilla model): the Fréchet distance to reference_images of n_samples drawn
    from a `components`-GMM fitted on their z_mean (the paper's Figures 14, 15).

    The reference features are computed (or read from the cache) once.
    """
    ext = metrics.get_extractor(extractor)
    ref = metrics.reference_statistics(reference_images, ext, cache_dir,
                                       use_cache=cache_dir is not None,
                                       desc="history reference")

    def measure(model) -> dict:
        z_mean, _ = model.encode(reference_images, progress=False)
        k = min(components, len(z_mean))
        gmm = sampling.fit_gmm(z_mean, k, seed=seed, progress=False)
        parts = sampling.gmm_generate(model, n=n_samples, seed=seed, gmm=gmm, progress=False)
        out = {}
        with warnings.catch_warnings():
            # The singular-covariance warning would repeat at every point.
            warnings.simplefilter("ignore", UserWarning)
            for part in present_parts(parts):
                if part in parts:
                    feats = ext.features(parts[part], progress=False)
                    out[part] = metrics.frechet_distance(
                        *metrics.feature_statistics(feats), *ref)
        return out

    return measure


def evaluate_run(preset_dir: str, test_images: np.ndarray, extractor, gmm=(100,),
                 n_samples: int | None = None, cache_dir: str | None = None) -> dict:
    """One finished model's row: every number of the tables, and its full report.

    Args:
        preset_dir: the model, as `runner.save_without_optimizer` wrote it.
        test_images: the reference images (the paper: the first 10,000 test images).
        gmm: the GMM component counts; the first is evaluate_model's.
    """
    ext = metrics.get_extractor(extractor)
    keras.utils.set_random_seed(EVAL_SEED)
    model = SplitVAE.from_preset(preset_dir)
    meta = read_json(os.path.join(preset_dir, "metadata.json"))
    source = meta.get("source", {})
    model.config = model.config.replace(gmm_components=gmm[0])
    report, _ = evaluate_model(model, test_images, None, extractor=ext, n_samples=n_samples,
                               seed=EVAL_SEED, cache_dir=cache_dir,
                               use_cache=cache_dir is not None)
    fd_gmm = {str(gmm[0]): report["fd"]["gmm"]}
    kd_gmm = {str(gmm[0]): report["kd"]["gmm"]}
    if len(gmm) > 1:
        ref = Reference(*metrics.reference_features(
            test_images, ext, cache_dir, cache_dir is not None, desc="reference"), EVAL_SEED)
        z_mean, _ = model.encode(test_images, progress=False)
        n = report["protocol"]["n_samples"]
        for k in gmm[1:]:
            fitted = sampling.fit_gmm(z_mean, k, seed=EVAL_SEED)
            parts = sampling.gmm_generate(model, n=n, seed=EVAL_SEED, gmm=fitted)
            fd_gmm[str(k)], kd_gmm[str(k)] = part_distances(ext, parts, ref,
                                                            desc=f"GMM {k}")
    latent = report["latent"]
    return {
        "split": bool(model.config.split),
        "seed": source.get("seed"),
        "fd_gen": report["fd"]["gen"],
        "fd_gmm": report["fd"]["gmm"],
        "fd_gmm_by_components": fd_gmm,
        "kd_gen": report["kd"]["gen"],
        "kd_gmm_by_components": kd_gmm,
        "fd_reconstruction": report["fd"]["reconstruction"],
        "reconstruction_mse": report["reconstruction_mse"],
        "inactive_by_variance": latent["inactive_by_variance"],
        "inactive_by_posterior_variance": latent["inactive_by_posterior_variance"],
        "parameters": report["model"]["parameters"],
        "train_seconds": source.get("train_seconds"),
        "gmm_components": report["protocol"]["gmm"]["components"],
        "split_kind": report["split_kind"],
        "fid_history": source.get("fid_history", {}),
        "metric": report["metric"],
        "protocol": report["protocol"],
        "note": report["note"],
        "seconds": report["seconds"],
    }


def real_distance(extractor, test_images, train_images, cache_dir: str | None = None) -> dict:
    """The "real" row: the reference (test) images against as many training images."""
    ext = metrics.get_extractor(extractor)
    use = cache_dir is not None
    ref = Reference(*metrics.reference_features(test_images, ext, cache_dir, use,
                                                desc="reference (test)"), EVAL_SEED)
    feats, _, _ = metrics.reference_features(train_images, ext, cache_dir, use,
                                             desc="real (train)")
    fd, kd = ref.distances(feats)
    return {"fd": fd, "kd": kd, "n_test": int(len(test_images)),
            "n_train": int(len(train_images))}
