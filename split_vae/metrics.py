"""Fréchet Inception Distance, as the Split VAE paper measures it.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738),
after Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
a Local Nash Equilibrium", NeurIPS 2017 (https://arxiv.org/abs/1706.08500).

The paper's protocol: Keras InceptionV3 with ImageNet weights, no top, average
pooling (2048 features); images resized bilinearly to 299x299, mapped from
[0, 1] to [-1, 1], grayscale repeated to three channels. Numbers measured this
way are NOT comparable with pytorch-fid, clean-fid or TTUR, which use the 2015
TensorFlow Inception graph; `FID_NOTE` says so and every report carries it.

The feature extractor is a parameter: any Keras model mapping images to
vectors works (`FeatureExtractor`), so the distance can be measured without the
ImageNet weights or with a domain classifier.

Reference statistics are cached on disk under a key made of the images'
bytes, the extractor's weights and architecture, and the preprocessing
(`statistics_key`), so a cached entry can never describe other data.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings

import numpy as np

from . import checks
from .fileio import atomic_write
from .paths import cache_dir as cache_dir_for, keras_models_dir

# Bumped whenever the way statistics are computed changes: old cache entries
# then simply stop matching.
STATS_FORMAT = 1

FID_NOTE = (
    "FID measured with Keras InceptionV3 (ImageNet weights, 299x299 bilinear, "
    "[-1, 1], 2048 pooled features), the paper's protocol; these numbers are not "
    "comparable with pytorch-fid, clean-fid or TTUR (2015 TF Inception graph).")

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _extractor_note(name: str) -> str:
    return (f"Fréchet distance in the feature space of the extractor {name!r}, not "
            "the paper's FID (Keras InceptionV3 with ImageNet weights); not "
            "comparable with the paper's tables, pytorch-fid, clean-fid or TTUR.")


# ---------------------------------------------------------------------------
# The distance
# ---------------------------------------------------------------------------
def _check_moments(mu, sigma, which: str):
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must be a vector, received shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise ValueError(
            f"sigma{which} must be a ({d}, {d}) matrix to match mu{which}, "
            f"received shape {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{which} or sigma{which} contain NaN or inf")
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    if np.abs(sigma - sigma.T).max() > 1e-6 * scale:
        raise ValueError(f"sigma{which} is not symmetric: not a covariance matrix")
    return mu, 0.5 * (sigma + sigma.T)


def _psd_factor(sigma, which: str, rtol: float):
    """B (d x r) with B @ B.T == sigma, r the rank of sigma.

    Cholesky first (a fraction of an eigendecomposition's cost). Covariances
    of fewer samples than features are singular: LAPACK's pivoted Cholesky
    (dpstrf) then stops at the numerical rank r, so the next step works on
    an r x r matrix. If that factor does not reproduce sigma (an indefinite
    matrix), eigh decides: an eigenvalue below -rtol times the largest means
    sigma is no covariance and the root would be complex, so ValueError.
    """
    from scipy.linalg import lapack

    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        pass
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    c, piv, rank, _ = lapack.dpstrf(sigma, lower=1, tol=-1)
    b = np.zeros((sigma.shape[0], rank))
    b[piv - 1] = np.tril(c)[:, :rank]
    if np.abs(b @ b.T - sigma).max() <= 1e-9 * scale:
        return b
    w, v = np.linalg.eigh(sigma)
    top = max(float(np.abs(w).max()), np.finfo(np.float64).tiny)
    if w.min() < -rtol * top:
        raise ValueError(
            f"sigma{which} is not positive semidefinite (eigenvalue {w.min():.3g} "
            f"against a largest of {top:.3g}): not a covariance matrix")
    return v * np.sqrt(np.clip(w, 0.0, None))


def trace_sqrt_product(sigma1, sigma2, rtol: float = 1e-6) -> float:
    """Tr((S1 S2)^(1/2)) for positive semidefinite S1, S2, in float64.

    The non-zero eigenvalues of S1 S2 are those of the symmetric B^T S2 B
    (S1 = B B^T), real and non-negative up to round-off; the trace of the
    square root is the sum of their square roots. Eigenvalues below -rtol
    times the largest mean a complex root: ValueError rather than silently
    dropping it.
    """
    from scipy import linalg

    b = _psd_factor(np.asarray(sigma1, np.float64), "1", rtol)
    m = b.T @ np.asarray(sigma2, np.float64) @ b
    if m.size == 0:  # sigma1 == 0
        return 0.0
    # LAPACK's MRRR driver (dsyevr): eigenvalues only, several times faster
    # than numpy's divide-and-conquer on the spread spectra of features.
    eig = linalg.eigh(0.5 * (m + m.T), eigvals_only=True, driver="evr",
                      check_finite=False)
    top = max(float(np.abs(eig).max()), np.finfo(np.float64).tiny)
    if eig.min() < -rtol * top:
        raise ValueError(
            f"S1 S2 has a significantly negative eigenvalue ({eig.min():.3g}, largest "
            f"{top:.3g}): its square root is complex, so sigma2 is not a covariance "
            "matrix")
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), computed in float64
    from the eigenvalues of a symmetric matrix similar to S1 S2 (see
    `trace_sqrt_product`): several times faster than scipy's sqrtm, and a
    significant complex part raises instead of being dropped.

    Args:
        mu1, mu2: mean feature vectors, shape (d,).
        sigma1, sigma2: covariance matrices, shape (d, d).
    Returns:
        The distance as a Python float (>= 0 up to round-off, clipped at 0).

    Example:
    ```python
    import numpy as np
    from split_vae.metrics import frechet_distance
    frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))  # 2.0
    ```
    """
    mu1, sigma1 = _check_moments(mu1, sigma1, "1")
    mu2, sigma2 = _check_moments(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"the two distributions have different dimensions: {mu1.shape[0]} "
            f"and {mu2.shape[0]}")
    diff = mu1 - mu2
    tr = trace_sqrt_product(sigma1, sigma2)
    d2 = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr)
    return max(d2, 0.0)


def frechet_distance_sqrtm(mu1, sigma1, mu2, sigma2) -> float:
    """The common reference formula, with scipy.linalg.sqrtm of S1 S2.

    Kept to compare against (tests, `benchmarks/frechet_speed.py`); slow for
    d = 2048. A complex part above 1e-3 of the largest entry raises.
    """
    from scipy import linalg

    mu1, sigma1 = _check_moments(mu1, sigma1, "1")
    mu2, sigma2 = _check_moments(mu2, sigma2, "2")
    root = linalg.sqrtm(sigma1 @ sigma2)
    if np.iscomplexobj(root):
        if np.abs(root.imag).max() > 1e-3 * max(np.abs(root.real).max(), 1e-300):
            raise ValueError("sqrtm(S1 S2) has a significant imaginary part")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, ddof=1) of features of shape (N, d).

    Warns when N <= d: the covariance is then singular (rank < d), the
    distance is biased upwards and varies with N; the paper uses 10,000
    samples for d = 2048.
    """
    f = np.asarray(features)
    if f.ndim != 2:
        raise ValueError(f"features must have shape (N, d), received {f.shape}")
    n, d = f.shape
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, received {n}")
    f = f.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or inf (did the extractor diverge?)")
    if n <= d:
        warnings.warn(
            f"{n} samples for {d} features: the covariance is singular (rank < {d}), "
            f"so the Fréchet distance is biased and not comparable with one from more "
            f"samples (the paper uses 10,000)", stacklevel=2)
    mu = f.mean(axis=0)
    centred = f - mu
    sigma = centred.T @ centred / (n - 1)
    return mu, sigma


def fid_from_features(features1, features2) -> float:
    """Fréchet distance between two sets of features."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


# ---------------------------------------------------------------------------
# Feature extractors
# ---------------------------------------------------------------------------
class FeatureExtractor:
    """A Keras model mapping images to vectors, with the FID preprocessing.

    Images in [0, 1] of shape (N, H, W, C) are resized (bilinear, by default)
    to the model's input size, mapped linearly to `value_range`, and
    grayscale is repeated to three channels when the model wants three.

    Args:
        model: `keras.Model` with input (None, h, w, c) and output (None, d).
        name: short name used in reports and in messages.
        value_range: (low, high) that [0, 1] is mapped to; InceptionV3 wants
            (-1, 1).
        interpolation: resize method of `keras.ops.image.resize`.
        batch_size: images per forward pass.

    Example:
    ```python
    import keras, numpy as np
    from split_vae.metrics import FeatureExtractor
    net = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten()])
    feats = FeatureExtractor(net, name="flat").features(np.random.rand(4, 8, 8, 1))
    ```
    """

    # The images this extractor accepts: None for any size (resized to the
    # model's input); a subclass that reads one size only sets it, with a hint
    # on how to get there.
    image_shape = None
    image_hint = ""

    def __init__(self, model, name: str = "custom", value_range=(-1.0, 1.0),
                 interpolation: str = "bilinear", batch_size: int = 50):
        shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else None
        if shape is None or len(shape) != 4 or None in shape[1:]:
            raise ValueError(
                f"the extractor {name!r} must take images of a fixed size, input "
                f"shape (None, h, w, c); received input shape {shape}")
        out = tuple(model.outputs[0].shape)
        if len(out) != 2 or out[1] is None:
            raise ValueError(
                f"the extractor {name!r} must map images to vectors, output shape "
                f"(None, d); received {out} (add pooling or Flatten)")
        if shape[3] not in (1, 3):
            raise ValueError(
                f"the extractor {name!r} takes {shape[3]} channels; images have 1 or 3")
        lo, hi = (float(v) for v in value_range)
        if not (np.isfinite([lo, hi]).all() and lo < hi):
            raise ValueError(f"value_range must be (low, high) with low < high, "
                             f"received {value_range!r}")
        self.model = model
        self.name = name
        self.input_size = (int(shape[1]), int(shape[2]))
        self.channels = int(shape[3])
        self.dim = int(out[1])
        self.value_range = (lo, hi)
        self.interpolation = interpolation
        self.batch_size = checks.integer(batch_size, "batch_size")
        self._fingerprint = None

    @property
    def note(self) -> str:
        """What the numbers it gives are, and what they cannot be compared with."""
        return FID_NOTE if self.name == "inception" else _extractor_note(self.name)

    def preprocessing(self) -> dict:
        """Everything done to the images before the model, as JSON-able data."""
        return {"resize": list(self.input_size), "interpolation": self.interpolation,
                "value_range": list(self.value_range), "channels": self.channels,
                "format": STATS_FORMAT}

    def fingerprint(self) -> str:
        """sha256 of the layers' classes and configs and of the weights.

        Layer and weight names are left out: Keras numbers them per session
        (conv2d, conv2d_1, ...), and the same network loaded twice must give
        the same key. Computed once.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            layers = [(type(layer).__name__, _without_names(layer.get_config()))
                      for layer in getattr(self.model, "layers", [])]
            h.update(json.dumps(
                {"layers": layers, "input": list(self.model.inputs[0].shape),
                 "output": list(self.model.outputs[0].shape)},
                sort_keys=True, default=str).encode())
            for w in self.model.weights:
                a = np.ascontiguousarray(np.asarray(w.numpy()))
                h.update(f"{a.dtype.str}:{a.shape}".encode())
                h.update(a.tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def preprocess(self, images: np.ndarray):
        """A batch of images in [0, 1] -> the model's input tensor."""
        from keras import ops

        x = ops.convert_to_tensor(np.asarray(images, dtype="float32"))
        if tuple(x.shape[1:3]) != self.input_size:
            x = ops.image.resize(x, self.input_size, interpolation=self.interpolation,
                                 antialias=False)
        c = x.shape[-1]
        if c == 1 and self.channels == 3:
            x = ops.repeat(x, 3, axis=-1)
        elif c == 3 and self.channels == 1:
            x = ops.mean(x, axis=-1, keepdims=True)
        lo, hi = self.value_range
        return x * (hi - lo) + lo

    def features(self, images, desc: str | None = None, progress: bool = True) -> np.ndarray:
        """Feature vectors (N, d) of images in [0, 1], in batches, float32."""
        from keras import ops
        from tqdm.auto import tqdm

        images = checks.images(images, image_shape=self.image_shape,
                               owner=f"the extractor {self.name!r}", hint=self.image_hint)
        out = []
        bar = tqdm(total=len(images), desc=desc or f"{self.name} features",
                   unit="img", disable=not progress, leave=False)
        with bar:
            for i in range(0, len(images), self.batch_size):
                batch = self.preprocess(images[i:i + self.batch_size])
                # A compiled predict step: calling the model eagerly ran each
                # op on its own, 1.6x slower and with a peak of 7.8 GB for
                # InceptionV3 (1.6 GB this way), measured on 100 images.
                f = ops.convert_to_numpy(self.model.predict_on_batch(batch))
                out.append(np.asarray(f, dtype="float32").reshape(len(f), -1))
                bar.update(len(f))
        feats = np.concatenate(out) if out else np.zeros((0, self.dim), "float32")
        if not np.isfinite(feats).all():
            raise ValueError(f"the extractor {self.name!r} produced NaN or inf features")
        return feats


def _without_names(config):
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def inception_extractor(weights: str | None = "imagenet", size: int = 299,
                        batch_size: int = 50) -> FeatureExtractor:
    """Keras InceptionV3, no top, average pooling: the paper's extractor.

    weights="imagenet" downloads the weights once into ~/.keras/models/
    (KERAS_HOME/models/); if that fails, ValueError says how to go on.
    weights=None gives a randomly initialised network (name
    "inception-random"): the same pipeline for tests or machines without the
    weights, whose numbers are not FIDs.
    """
    import keras

    try:
        model = keras.applications.InceptionV3(
            include_top=False, weights=weights, pooling="avg", input_shape=(size, size, 3))
    except Exception as e:  # noqa: BLE001 - any download/IO failure
        if weights is None:
            raise
        raise ValueError(
            f"could not load InceptionV3's ImageNet weights ({type(e).__name__}: {e}). "
            f"Put the file {INCEPTION_WEIGHTS_FILE} in {keras_models_dir()} "
            "(where Keras caches it), or measure with --extractor inception-random "
            "(random weights: not an FID) or --extractor PATH.keras (your own "
            "model mapping images to vectors)") from e
    name = "inception" if weights == "imagenet" else (
        "inception-random" if weights is None else f"inception:{weights}")
    if size != 299:
        name += f"@{size}"
    return FeatureExtractor(model, name=name, value_range=(-1.0, 1.0),
                            batch_size=batch_size)


def get_extractor(spec, batch_size: int = 50) -> FeatureExtractor:
    """"inception", "inception-random", "fd-fmnist", a path to a .keras model or to
    FD-FMNIST classifier weights (.weights.h5), or a model.

    A .keras extractor gets images resized to its own input size and mapped
    to [-1, 1], like InceptionV3.
    """
    import keras

    if isinstance(spec, FeatureExtractor):
        return spec
    if isinstance(spec, keras.Model):
        return FeatureExtractor(spec, name=spec.name, batch_size=batch_size)
    if spec == "inception":
        return inception_extractor("imagenet", batch_size=batch_size)
    if spec == "inception-random":
        return inception_extractor(None, batch_size=batch_size)
    spec = os.fspath(spec)
    if spec == "fd-fmnist" or spec.endswith(".weights.h5"):
        # FD-FMNIST: our Fashion-MNIST classifier (shipped, or weights at a path).
        from .fd_fmnist import fd_fmnist_extractor

        return fd_fmnist_extractor(None if spec == "fd-fmnist" else spec,
                                   batch_size=batch_size)
    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"extractor model {spec} does not exist")
        model = keras.saving.load_model(spec, compile=False)
        return FeatureExtractor(model, name=os.path.basename(spec), batch_size=batch_size)
    raise ValueError(
        f"unknown extractor {spec!r}: use 'inception' (ImageNet weights, the paper's "
        "FID), 'inception-random' (untrained, for pipelines without the weights), "
        "'fd-fmnist' (our Fashion-MNIST classifier: FD-FMNIST, not an FID), the path "
        "of its .weights.h5, or the path of a .keras model mapping images to vectors")


# ---------------------------------------------------------------------------
# Cached reference statistics
# ---------------------------------------------------------------------------
def images_digest(images) -> str:
    """sha256 of an image array's shape, dtype and bytes."""
    x = np.ascontiguousarray(images)
    h = hashlib.sha256(f"{x.dtype.str}:{x.shape}".encode())
    h.update(memoryview(x).cast("B"))
    return h.hexdigest()


def statistics_key(images, extractor: FeatureExtractor) -> str:
    """The cache key: images' content + extractor's weights + preprocessing."""
    parts = {"images": images_digest(checks.images(images)),
             "extractor": extractor.fingerprint(),
             "preprocessing": extractor.preprocessing()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _read_cached(path: str, key: str, dim: int):
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = str(f["key"])
            mu, sigma, n = f["mu"], f["sigma"], int(f["n"])
    except Exception as e:  # noqa: BLE001 - any unreadable file is corrupt
        raise ValueError(
            f"the FID statistics cache file {path} is corrupt ({type(e).__name__}: "
            f"{e}); delete it and it will be recomputed") from e
    if stored != key or mu.shape != (dim,) or sigma.shape != (dim, dim) \
            or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(
            f"the FID statistics cache file {path} does not hold what its name says "
            f"(key or shapes differ, or non-finite values); delete it and it will be "
            "recomputed")
    return mu.astype(np.float64), sigma.astype(np.float64), n


def reference_statistics(images, extractor: FeatureExtractor, cache_dir: str | None = None,
                         use_cache: bool = True, desc: str | None = None):
    """(mu, sigma) of the extractor's features of images, cached on disk.

    The file is cache_dir/<statistics_key>.npz: any change to the images, the
    extractor's weights or the preprocessing gives another file, so a cached
    entry is never stale. Written atomically.
    """
    images = checks.images(images)
    if not use_cache:
        return feature_statistics(extractor.features(images, desc=desc))
    cache_dir = cache_dir or cache_dir_for("fid")
    key = statistics_key(images, extractor)
    path = os.path.join(cache_dir, f"{key}.npz")
    if os.path.exists(path):
        mu, sigma, _ = _read_cached(path, key, extractor.dim)
        return mu, sigma
    feats = extractor.features(images, desc=desc)
    mu, sigma = feature_statistics(feats)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), mu=mu, sigma=sigma, n=np.array(len(feats)))

    atomic_write(path, write)
    return mu, sigma
