"""Evaluation of a Split VAE as the paper's tables report it.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).

One evaluation generates one set of samples from the prior (GEN) and one from
a Gaussian mixture fitted on z_mean of the reference images (GMM), and measures
the FID of x_hat, x1, x2 and "mix" (x1 for the first half of the samples, x2
for the second) against the reference images. The features of x1 and x2 are
computed once: mix takes its halves from them, since the extractor sees every
image on its own. Beside them: "real" (reference test images against as many
training images), the FID of reconstructions, and the latent statistics
(inactive variables, the variance law). The protocol is the paper's Section IV
(GEN and GMM columns, the number of parameters) and Section V (the tables'
columns, "mix"); docs/evaluation.md says how our FID differs.

This module takes a model it is given; `loader.for_evaluation` reads one from a
name or a path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings

import keras
import numpy as np
from tqdm.auto import tqdm

from . import checks, metrics, sampling
from . import parts as parts_lib
from .fileio import atomic_write_json
from .plotting import plot_fid_history
from .split_kind import split_kind_of_parts

logger = logging.getLogger(__name__)

PARTS = ("x_hat", "x1", "x2")  # of the paper's model; K parts: present_parts
SOURCES = ("gen", "gmm")  # samples from the prior, from the GMM fitted on z_mean

# The paper's Section IV: 10,000 generated images per source, against the
# first 10,000 test images.
PAPER_SAMPLES = 10000

# Keys of reports written before the distances were named by what they
# measure (the Fréchet distance in any extractor's features is an FID only in
# InceptionV3's ImageNet features): old name -> new name.
LEGACY_KEYS = {"fid": "fd", "kid": "kd"}


def default_samples(n_reference: int) -> int:
    """Samples per source when none are asked for: the paper's 10,000, or the
    number of reference (test) images when there are fewer (the digits test
    set has 359: more samples than reference images add time, not accuracy,
    to a distance whose reference side has 359)."""
    return min(PAPER_SAMPLES, int(n_reference))


def normalise_report(report: dict, renames=None) -> dict:
    """A copy of a report (or of a categories' result) with its distances under
    the current keys: an old report's "fid" and "kid" become "fd" and "kd"
    (`LEGACY_KEYS`); a current one comes back unchanged. Every reader of a
    report goes through it."""
    renames = LEGACY_KEYS if renames is None else renames
    out = _renamed(report, renames)
    if isinstance(out.get("protocol"), dict):  # the kernel distance's subsets
        out["protocol"] = _renamed(out["protocol"], {"kid": "kd"})
    return out


def _renamed(d: dict, renames: dict) -> dict:
    out = dict(d)
    for old, new in renames.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def read_report(path: str) -> dict:
    """report.json as `evaluate` writes it (an old one too), normalised."""
    with open(path) as f:
        return normalise_report(json.load(f))


# ---------------------------------------------------------------------------
# Latent statistics
# ---------------------------------------------------------------------------
def latent_statistics(z_mean, z_log_var, var_threshold: float = 0.05,
                      sigma2_threshold: float = 0.95) -> dict:
    """Active and inactive latent variables, and the variance law.

    A variable is inactive when the variance over the data of its z_mean is
    below var_threshold (0.05: the encoder ignores the image), or, by the
    second criterion, when the mean of its posterior variance exp(z_log_var)
    is above sigma2_threshold (0.95: the posterior stays at the prior). The
    variance law (Asperti, "Variance Loss in Variational Autoencoders", 2020):
    for a well-trained VAE, var(z_mean) + mean(exp(z_log_var)) is close to 1
    for every variable, as the aggregate posterior should match N(0, I).

    Args:
        z_mean, z_log_var: arrays (N, latent_dim) from `SplitVAE.encode`.
    Returns:
        JSON-able dict; per-variable lists and the counts.
    """
    z_mean = np.asarray(z_mean, dtype=np.float64)
    z_log_var = np.asarray(z_log_var, dtype=np.float64)
    if z_mean.ndim != 2 or z_mean.shape != z_log_var.shape:
        raise ValueError(
            f"z_mean and z_log_var must both have shape (N, latent_dim), received "
            f"{z_mean.shape} and {z_log_var.shape}")
    if len(z_mean) < 2:
        raise ValueError(f"need at least 2 images for variances, received {len(z_mean)}")
    if not (np.isfinite(z_mean).all() and np.isfinite(z_log_var).all()):
        raise ValueError("z_mean or z_log_var contain NaN or inf")
    var_mean = z_mean.var(axis=0)
    mean_sigma2 = np.exp(z_log_var).mean(axis=0)
    law = var_mean + mean_sigma2
    inactive_var = var_mean < var_threshold
    inactive_sigma = mean_sigma2 > sigma2_threshold
    d = z_mean.shape[1]
    return {
        "latent_dim": d,
        "n_images": int(len(z_mean)),
        "thresholds": {"var_z_mean_below": var_threshold,
                       "mean_exp_z_log_var_above": sigma2_threshold},
        "inactive_by_variance": int(inactive_var.sum()),
        "active_by_variance": int(d - inactive_var.sum()),
        "inactive_by_posterior_variance": int(inactive_sigma.sum()),
        "active_by_posterior_variance": int(d - inactive_sigma.sum()),
        "variance_law_mean": float(law.mean()),
        "var_z_mean": var_mean.tolist(),
        "mean_exp_z_log_var": mean_sigma2.tolist(),
        "variance_law": law.tolist(),
    }


# ---------------------------------------------------------------------------
# One evaluation
# ---------------------------------------------------------------------------
def mix_images(*images) -> np.ndarray:
    """The paper's "mix": x1 for the first half of the samples, x2 for the
    rest; of K parts, part k for the k-th of K equal slices (`parts.mix_images`).

    With an odd count the first floor(n/2) come from x1. Applied to images,
    or to their features (the extractor sees every image on its own).
    """
    return parts_lib.mix_images(*images)


def present_parts(parts: dict) -> tuple[str, ...]:
    """The keys measured in a decode dict: x_hat, then x1..xK (those present)."""
    return ("x_hat",) + parts_lib.part_names(parts_lib.components_of(parts))


def part_features(extractor, parts: dict, desc: str) -> dict:
    """Features of x_hat and of x1..xK (those present), and mix from theirs."""
    feats = {k: extractor.features(parts[k], desc=f"{desc} {k}") for k in present_parts(parts)}
    images = parts_lib.part_names(parts_lib.components_of(parts))
    if images:
        feats["mix"] = mix_images(*(feats[k] for k in images))
    return feats


def evaluate_model(model, test_images, train_images=None, extractor="inception",
                   n_samples: int | None = None, gmm_components: int | None = None,
                   seed: int = 0, cache_dir: str | None = None, use_cache: bool = True,
                   batch_size: int = 256):
    """Fréchet and kernel distances, GEN and GMM, for x_hat, x1, x2, mix; real;
    reconstruction; latents.

    Every Fréchet distance has its kernel distance beside it (KID in
    Inception features, "KD in <extractor>" in any other: `metrics.kid`).
    The report keeps them under "fd" and "kd" (an FID only where
    report["metric"] says "FID"; report["kid_name"] names the kernel one).

    Args:
        model: a `SplitVAE` (split or vanilla; a vanilla one has x_hat only).
        test_images: reference images in [0, 1] (the paper: the first 10,000
            test images); the GMM is fitted on their z_mean.
        train_images: images for the "real" row (test against train); None
            skips it.
        extractor: "inception", "auto" (`metrics.auto_extractor`, chosen by
            the model's image shape), "fid-inception", "inception-random", a
            .pth or .keras path, a Keras model or a `metrics.FeatureExtractor`;
            report["protocol"]["extractor_choice"] says what was asked for,
            what measured and why.
        n_samples: generated images per source; default len(test_images).
        gmm_components: default model.config.gmm_components.
        seed: seeds the prior draw, the mixture's fit and its draw, and the
            kernel distance's subsets.
        cache_dir, use_cache: where reference features are cached.
    Returns:
        (report, samples): report is a JSON-able dict; samples maps "gen"
        and "gmm" to the decoded dicts (sigma, x1, x2, x_hat, z).
    """
    t0 = time.time()
    ext = metrics.get_extractor(extractor, image_shape=model.image_shape)
    metric = getattr(ext, "metric_name", "FD")
    test_images, train_images = _checked_images(model, test_images, train_images)
    n = len(test_images) if n_samples is None else int(n_samples)
    if n < 2:
        raise ValueError(f"n_samples must be at least 2, received {n}")
    k = gmm_components if gmm_components is not None else model.config.gmm_components

    with _steps(6 + (train_images is not None)) as step:
        ref = Reference(*metrics.reference_features(
            test_images, ext, cache_dir, use_cache, desc="reference (test) features"), seed)
        step("reference features")
        fd, kd = {}, {}
        if train_images is not None:
            train_feats, _, _ = metrics.reference_features(
                train_images, ext, cache_dir, use_cache, desc="real (train) features")
            fd["real"], kd["real"] = ref.distances(train_feats)
            step("real")

        z_mean, z_log_var = model.encode(test_images, batch_size=batch_size, progress=True,
                                         desc="encode reference")
        latents = latent_statistics(z_mean, z_log_var)
        rec = model.decode(z_mean, batch_size=batch_size, progress=True, desc="reconstruct")
        fd["reconstruction"], kd["reconstruction"] = ref.distances(
            ext.features(rec["x_hat"], desc="reconstruction x_hat"))
        rec_mse = float(np.mean(np.square(rec["x_hat"] - test_images)))
        kind = split_kind_of_parts(rec)
        step("latents and reconstruction")

        samples = {"gen": model.generate(n, seed=seed, batch_size=batch_size, progress=True,
                                         desc="decode GEN")}
        step("GEN samples")
        gmm = sampling.fit_gmm(z_mean, k, seed=seed)
        samples["gmm"] = sampling.gmm_generate(model, n=n, seed=seed, gmm=gmm,
                                               batch_size=batch_size)
        step("GMM samples")
        for source in SOURCES:
            fd[source], kd[source] = part_distances(ext, samples[source], ref,
                                                      desc=source.upper())
            step(f"{metric} {source.upper()}")

    report = {
        "note": ext.note,
        "fd": fd,
        "kd": kd,
        "metric": metric,
        "metric_protocol": getattr(ext, "protocol", f"FD in {ext.name}"),
        "kid_name": getattr(ext, "kid_name", f"KD in {ext.name}"),
        "reconstruction_mse": rec_mse,
        "split_kind": kind,
        "latent": latents,
        "model": _model_summary(model),
        "protocol": _protocol(ext, test_images, train_images, n, k, gmm, seed,
                              model.config.parts),
        "seconds": round(time.time() - t0, 1),
    }
    report["protocol"]["kd"] = ref.kid_protocol(n)
    return report, samples


class Reference:
    """The reference set's features and statistics, and both distances to it."""

    def __init__(self, features, mu, sigma, seed):
        self.features, self.stats, self.seed = features, (mu, sigma), seed

    def distances(self, features):
        """(Fréchet distance, {"mean", "sd"} of the kernel distance) of features."""
        fd = metrics.frechet_distance(*metrics.feature_statistics(features), *self.stats)
        mean, sd = metrics.kernel_inception_distance(features, self.features, seed=self.seed)
        return fd, {"mean": mean, "sd": sd}

    def kid_protocol(self, n: int) -> dict:
        return {"estimator": "unbiased MMD^2", "kernel": "(x . y / d + 1)^3",
                "subsets": metrics.KID_SUBSETS,
                "subset_size": metrics.kid_subset_size(n, len(self.features)),
                "seed": self.seed}


def _checked_images(model, test_images, train_images):
    """The test and training images, checked against the model and each other."""
    test_images = checks.images(test_images, "test images")
    if tuple(test_images.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"test images have shape {test_images.shape[1:]}, the model "
                         f"expects {tuple(model.image_shape)}")
    if train_images is not None:
        train_images = checks.images(train_images, "training images")
        if train_images.shape[1:] != test_images.shape[1:]:
            raise ValueError(
                f"training images have shape {train_images.shape[1:]}, the test "
                f"images {test_images.shape[1:]}")
    return test_images, train_images


@contextlib.contextmanager
def _steps(total: int):
    """A tqdm bar of the evaluation's steps; yields `step(name)`, which advances it."""
    with tqdm(total=total, desc="evaluation", unit="step") as bar:
        def step(name):
            bar.set_postfix_str(name)
            bar.update(1)

        yield step


def part_distances(extractor, parts: dict, ref, desc: str):
    """Fréchet and kernel distances of x_hat, x1, x2 (those present) and mix to
    the reference `ref` (an `Reference`): two dicts keyed by part."""
    feats = part_features(extractor, parts, desc=desc)
    pairs = {key: ref.distances(f) for key, f in feats.items()}
    return ({k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()})


def _model_summary(model) -> dict:
    return {"parameters": int(model.count_params()), "split": bool(model.config.split),
            "components": int(model.config.parts),
            "latent_dim": int(model.latent_dim), "image_shape": list(model.image_shape),
            "config": model.config.to_dict()}


def _protocol(ext, test_images, train_images, n: int, k: int, gmm, seed,
              model_components: int = 2) -> dict:
    """What was measured and how: the report's "protocol" entry."""
    return {
        "extractor": ext.name,
        "extractor_choice": dict(ext.choice or {}),
        "extractor_fingerprint": ext.fingerprint(),
        "feature_dim": ext.dim,
        "preprocessing": ext.preprocessing(),
        "n_reference": int(len(test_images)),
        "n_real_train": None if train_images is None else int(len(train_images)),
        "n_samples": n,
        "gmm": {"components": int(k), "covariance": "full", "max_iter": int(gmm.max_iter),
                "fitted_on": "z_mean of the reference images", "seed": seed,
                "em_iterations": int(gmm.n_iter_), "converged": bool(gmm.converged_)},
        "seed": seed,
        "gen": "z ~ N(0, I)",
        "mix": parts_lib.mix_description(model_components),
        "real": "reference (test) images against as many training images",
        "reconstruction": "x_hat decoded from z_mean of the reference images",
        "split_kind": "from sigma of the reconstructions of the reference images "
                      "weighted by |x1 - x2| (split_vae.split_kind.split_kind_of_parts)",
        "statistics": "float64 mean and covariance (ddof=1); Fréchet distance from "
                      "the eigenvalues of a symmetric form of S1 S2",
    }


def _fid(ext, images, ref, desc: str) -> float:
    return metrics.frechet_distance(
        *metrics.feature_statistics(ext.features(images, desc=desc)), *ref)


def _fmt(v: float) -> str:
    # Two decimals as the paper's tables; small distances (custom extractors)
    # keep three significant digits instead of printing 0.00.
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def _fmt_kid(v: dict) -> str:
    return f"{v['mean']:.3g}±{v['sd']:.1g}"


def _distance_rows(report: dict, keys, width: int) -> list:
    """The table's rows: each source's Fréchet distances, then their kernel ones."""
    fid, kid = report["fd"], report.get("kd")
    label = report.get("metric", "FD")
    kid_label = "KID" if report.get("kid_name") == "KID" else "KD"
    col = 16 if kid else 10
    rows = []
    for source in SOURCES:
        rows.append(f"{label + ' ' + source.upper():>{width}}"
                    + "".join(f"{_fmt(fid[source][k]):>{col}}" for k in keys))
        if kid:
            rows.append(f"{kid_label + ' ' + source.upper():>{width}}"
                        + "".join(f"{_fmt_kid(kid[source][k]):>{col}}" for k in keys))
    for key, name in (("real", "real"), ("reconstruction", "rec")):
        if key in fid:
            rows.append(f"{label + ' ' + name:>{width}}{_fmt(fid[key]):>{col}}")
            if kid:
                rows.append(f"{kid_label + ' ' + name:>{width}}{_fmt_kid(kid[key]):>{col}}")
    return [f"{'':>{width}}" + "".join(f"{k:>{col}}" for k in keys)] + rows


def format_report(report: dict) -> str:
    """A short table of the report's distances, named by their protocol, with the
    note on comparability (once). Reads old reports too (`normalise_report`)."""
    report = normalise_report(report)
    keys = [k for k in report["fd"]["gen"] if k == "x_hat" or k == "mix"
            or (k[0] == "x" and k[1:].isdigit())]
    keys = sorted(keys, key=lambda k: (k != "x_hat", k == "mix",
                                       int(k[1:]) if k[1:].isdigit() else 0))
    label = report.get("metric", "FD")
    width = max(14, len(label) + 5)
    protocol = report.get("metric_protocol", label)
    if label != "FID":
        protocol += " (not an FID)"
    lines = [f"{protocol}; extractor {report['protocol']['extractor']}"]
    if report.get("kd"):
        sizes = report["protocol"].get("kd", {})
        lines[0] += (f"; {report['kid_name']}: unbiased MMD², mean±sd over "
                     f"{sizes.get('subsets')} subsets of {sizes.get('subset_size')}")
    choice = report["protocol"].get("extractor_choice") or {}
    if choice.get("requested") == "auto":
        lines.append(f"extractor chosen by 'auto': {choice.get('extractor')}, because "
                     f"{choice.get('reason')}")
    lines += _distance_rows(report, keys, width)
    if report.get("split_kind"):
        sk = report["split_kind"]
        lines.append(f"split kind: {sk['kind']} ({100 * sk['high_frequency_fraction']:.1f}% "
                     f"of sigma's energy above {sk['cutoff_cycles_per_pixel']} cycles/pixel; "
                     f"syntactic above {100 * sk['threshold']:.0f}%)")
    lat = report["latent"]
    th = lat.get("thresholds", {})
    lines.append(f"inactive latent variables: {lat['inactive_by_variance']}/"
                 f"{lat['latent_dim']} (var z_mean < {th.get('var_z_mean_below', 0.05):g}), "
                 f"{lat['inactive_by_posterior_variance']}/{lat['latent_dim']} "
                 f"(mean exp(z_log_var) > {th.get('mean_exp_z_log_var_above', 0.95):g}); "
                 f"variance law mean {lat['variance_law_mean']:.3f}")
    lines.append(f"parameters: {report['model']['parameters']:,}")
    lines.append(f"note: {report['note']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# FID along training (the paper's Figure 11)
# ---------------------------------------------------------------------------
class FIDHistory(keras.callbacks.Callback):
    """Fréchet distance of x_hat, x1 and x2 every `every` epochs, plotted.

    The paper's Figure 11 follows the FID of the three images along training.
    Samples come from the prior with a fixed seed, so the curve shows the
    model changing, not the draw.

    Args:
        reference_images: images in [0, 1] the samples are compared with.
        every: measure after every `every`-th epoch (and never otherwise).
        extractor: "inception", "inception-random", a .keras path, a Keras
            model or a `metrics.FeatureExtractor` (loaded at train start).
        n_samples: generated images per measurement.
        plot_path: PNG of distance against epoch, rewritten (atomically)
            after each measurement; None plots nothing.
        seed: seed of the prior draw.
        cache_dir, use_cache: for the reference statistics.
        verbose: log the extractor's note and each measurement (logger
            "split_vae.evaluation", level INFO).

    Attributes:
        history: {"epoch": [...], "x_hat": [...], "x1": [...], "x2": [...]}
            (x_hat only for a vanilla model).

    Example:
    ```python
    cb = FIDHistory(test_images, every=5, extractor="inception", n_samples=1000,
                    plot_path="runs/mnist/fid.png")
    model.fit(train, epochs=100, callbacks=[GammaBalance(), cb])
    ```
    """

    def __init__(self, reference_images, every: int = 5, extractor="inception",
                 n_samples: int = 1000, plot_path: str | None = None, seed: int = 0,
                 cache_dir: str | None = None, use_cache: bool = True, verbose: int = 1):
        super().__init__()
        every = checks.integer(every, "every")
        n_samples = checks.integer(n_samples, "n_samples", minimum=2)
        self.reference_images = checks.images(reference_images, "reference images")
        self.every = every
        self.extractor_spec = extractor
        self.n_samples = n_samples
        self.plot_path = plot_path
        self.seed = seed
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.verbose = verbose
        self.history = {"epoch": []}
        self._ext = None
        self._ref = None

    def on_train_begin(self, logs=None):
        if self._ext is None:
            self._ext = metrics.get_extractor(self.extractor_spec)
            self._ref = metrics.reference_statistics(
                self.reference_images, self._ext, self.cache_dir, self.use_cache,
                desc="FIDHistory reference")
            if self.verbose:
                logger.info("FIDHistory: %s", self._ext.note)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        self.on_train_begin()
        parts = self.model.generate(self.n_samples, seed=self.seed)
        with warnings.catch_warnings():
            # The singular-covariance warning would repeat every measurement.
            warnings.simplefilter("ignore", UserWarning)
            values = {k: _fid(self._ext, parts[k], self._ref, f"epoch {epoch + 1} {k}")
                      for k in present_parts(parts)}
        self.history["epoch"].append(epoch + 1)
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)
        if self.verbose:
            logger.info("epoch %d Fréchet distance (%s): %s", epoch + 1, self._ext.name,
                        ", ".join(f"{k} {v:.2f}" for k, v in values.items()))
        if self.plot_path:
            self.plot(self.plot_path)

    def plot(self, path: str | None = None):
        """Distance against epoch for x_hat, x1, x2 (`plotting.plot_fid_history`);
        returns the Figure."""
        name = self._ext.name if self._ext is not None else str(self.extractor_spec)
        return plot_fid_history(self.history, name, path)


def write_report(report: dict, path: str) -> None:
    """The report as indented JSON, written atomically."""
    atomic_write_json(path, report)
