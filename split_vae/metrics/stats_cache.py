"""Reference features and their statistics (mu, sigma) of image sets, cached on disk.

The test set's statistics are the same for every model measured against it:
they are computed once and kept under `paths.cache_dir("fid")` (the cache root
is `$SPLIT_VAE_CACHE_DIR`, see docs/data.md), in a file named by a key made of
the images' bytes, the extractor's weights and architecture, and the
preprocessing (`statistics_key`), so a cached entry can never describe other
data. Files are written atomically.

Imports numpy, `split_vae.checks`, `split_vae.fileio`, `split_vae.paths`,
`frechet` and `feature_extractor`.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .. import checks
from ..fileio import atomic_write
from ..paths import cache_dir as cache_dir_for
from .feature_extractor import FeatureExtractor
from .frechet import feature_statistics

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
            feats, mu, sigma = f["features"], f["mu"], f["sigma"]
    except Exception as e:  # noqa: BLE001 - any unreadable file is corrupt
        raise ValueError(
            f"the FID statistics cache file {path} is corrupt ({type(e).__name__}: "
            f"{e}); delete it and it will be recomputed") from e
    if stored != key or mu.shape != (dim,) or sigma.shape != (dim, dim) \
            or feats.ndim != 2 or feats.shape[1] != dim \
            or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(
            f"the FID statistics cache file {path} does not hold what its name says "
            f"(key or shapes differ, or non-finite values); delete it and it will be "
            "recomputed")
    return feats, mu.astype(np.float64), sigma.astype(np.float64)


def reference_features(images, extractor: FeatureExtractor, cache_dir: str | None = None,
                       use_cache: bool = True, desc: str | None = None):
    """(features, mu, sigma) of the extractor's features of images, cached on disk.

    The features (float32) serve the kernel distance (KID), mu and sigma the
    Fréchet distance. The file is cache_dir/<statistics_key>.npz: any change
    to the images, the extractor's weights or the preprocessing gives another
    file, so a cached entry is never stale. Written atomically.
    """
    images = checks.images(images)
    if not use_cache:
        feats = extractor.features(images, desc=desc)
        return (feats, *feature_statistics(feats))
    cache_dir = cache_dir or cache_dir_for("fid")
    key = statistics_key(images, extractor)
    path = os.path.join(cache_dir, f"{key}.npz")
    if os.path.exists(path):
        return _read_cached(path, key, extractor.dim)
    feats = extractor.features(images, desc=desc)
    mu, sigma = feature_statistics(feats)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), features=np.asarray(feats, np.float32), mu=mu,
                     sigma=sigma, n=np.array(len(feats)))

    atomic_write(path, write)
    return feats, mu, sigma


def reference_statistics(images, extractor: FeatureExtractor, cache_dir: str | None = None,
                         use_cache: bool = True, desc: str | None = None):
    """(mu, sigma) of the extractor's features of images, cached on disk
    (`reference_features`)."""
    _, mu, sigma = reference_features(images, extractor, cache_dir, use_cache, desc)
    return mu, sigma
