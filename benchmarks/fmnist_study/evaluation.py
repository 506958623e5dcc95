"""Every number of the study's table, recomputed from the shipped presets:
FD-FMNIST of each source and part, the calibration rows, the latent
statistics and the split kind (split_vae.evaluation.evaluate_model)."""

from __future__ import annotations

import os
import sys
import time

from . import SEEDS, WEIGHTS_DIR
from .analysis import analyse
from .training import model_names, study_config

FULL = dict(n_images=10_000, seeds=SEEDS)
# CI: one pair of models and 1,000 images (well above the 128 features).
SUBSET = dict(n_images=1_000, seeds=(0,))
EVAL_SEED = 0  # prior draws, the GMM fit and its draws
SAMPLE_PARTS = ("x_hat", "x1", "x2", "mix")


def _blur(images, sigma=1.0):
    """A Gaussian blur of `sigma` pixels over height and width."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0, sigma, sigma, 0)).astype("float32")


def calibration(ext, test, train) -> dict:
    """FD-FMNIST of the test images vs the training images ("real") and vs
    themselves blurred by one pixel: the scale the models' numbers are read on."""
    from split_vae import metrics

    ref = metrics.feature_statistics(ext.features(test, progress=False))

    def fd(images):
        return metrics.frechet_distance(
            *metrics.feature_statistics(ext.features(images, progress=False)), *ref)

    return {"real_test_vs_train": fd(train), "test_vs_blurred_test_1px": fd(_blur(test, 1.0))}


def model_row(preset_dir: str, split: bool, seed: int, test, ext, n: int) -> dict:
    """One model's numbers: `reproduce`'s evaluation of it (measure.evaluate_run),
    in the study's row."""
    from split_vae.reproduce.measure import evaluate_run

    row = evaluate_run(preset_dir, test, ext, gmm=(20,), n_samples=n)
    out = {"split": split, "seed": seed, **{k: row[k] for k in (
        "fd_gen", "fd_gmm", "fd_reconstruction", "reconstruction_mse", "inactive_by_variance",
        "inactive_by_posterior_variance", "parameters", "train_seconds", "gmm_components")}}
    if split:
        out["split_kind"] = row["split_kind"]
    print(f"[study] evaluated {os.path.basename(preset_dir)} ({row['seconds']:.0f} s)",
          file=sys.stderr, flush=True)
    return out


def evaluate_models(subset: bool = False, progress: bool = False, wait: bool = False,
                    weights_dir: str = WEIGHTS_DIR) -> dict:
    """Every number of the table, recomputed from the presets in weights_dir."""
    if not progress:
        os.environ.setdefault("TQDM_DISABLE", "1")
    from split_vae import data
    from split_vae.metrics import fd_fmnist_extractor

    size = SUBSET if subset else FULL
    n = size["n_images"]
    start = time.time()
    ext = fd_fmnist_extractor()
    test = data.load("fashion_mnist", "test", as_numpy=True, limit=n)
    train = data.load("fashion_mnist", "train", as_numpy=True, limit=n)
    cal = calibration(ext, test, train)
    models = {}
    for name, split, seed in model_names(size["seeds"]):
        preset_dir = os.path.join(weights_dir, name)
        while wait and not os.path.exists(os.path.join(preset_dir, "metadata.json")):
            print(f"[study] waiting for {name} to finish training", file=sys.stderr,
                  flush=True)
            time.sleep(30)
        models[name] = model_row(preset_dir, split, seed, test, ext, n)
    return {
        "table": "FD-FMNIST study, " + ("CI subset" if subset else "full"),
        "metric": "FD-FMNIST (Fréchet distance in the 128-d penultimate features of "
                  "split_vae/assets/fd_fmnist.weights.h5; not an FID)",
        "classifier_test_accuracy": ext.card.get("test_accuracy"),
        "n_reference": n, "n_samples": n, "seeds": list(size["seeds"]),
        "eval_seed": EVAL_SEED,
        "config": study_config(True).to_dict(),
        "calibration": cal,
        "models": models,
        "analysis": analyse(models, size["seeds"]),
        "seconds": round(time.time() - start, 1),
    }
