"""The kind of split a Split VAE found: "syntactic", "semantic" or "none".

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).

The paper observes two decompositions: "syntactic", where sigma is a
high-frequency pattern (a checkerboard, stripes) and x1, x2 carry
complementary pixels, and "semantic", where sigma follows the image's
contours. They differ in where sigma's spatial energy lies: at the highest
frequencies for the first, at low ones for the second.

`evaluation.evaluate_model` reports it for the reconstructions of the
reference images. Numpy only.
"""

from __future__ import annotations

import numpy as np

SPLIT_KIND_CUTOFF = 0.25      # cycles/pixel: half of the Nyquist frequency 0.5
SPLIT_KIND_THRESHOLD = 0.5    # above: most of sigma's energy is high-frequency
SPLIT_KIND_MIN_VARIANCE = 1e-4  # below: sigma is (nearly) constant, no split


def sigma_high_frequency_fraction(sigma, cutoff: float = SPLIT_KIND_CUTOFF):
    """(fraction, variance): the share of sigma's spatial energy above `cutoff`.

    The energy is the power spectrum of each map minus its own mean (2-D
    DFT, Parseval), summed over the maps; frequencies are radial,
    sqrt(fx^2 + fy^2) in cycles per pixel. A checkerboard has all its
    energy at (0.5, 0.5), radius 0.71; a smooth map almost none above 0.25.
    `variance` is the mean per-map variance of sigma (its total energy per
    pixel).

    Args:
        sigma: array (N, H, W), (N, H, W, 1) or one map (H, W).
    """
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim == 4 and s.shape[-1] == 1:
        s = s[..., 0]
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or s.shape[1] < 2 or s.shape[2] < 2 or len(s) == 0:
        raise ValueError(
            f"sigma must be maps (N, H, W), (N, H, W, 1) or (H, W) with H, W >= 2; "
            f"received shape {np.shape(sigma)}")
    if not np.isfinite(s).all():
        raise ValueError("sigma contains NaN or inf")
    if not 0.0 < cutoff < np.sqrt(0.5):
        raise ValueError(f"cutoff must be in (0, 0.707) cycles/pixel, received {cutoff!r}")
    s = s - s.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(s)) ** 2
    fy = np.fft.fftfreq(s.shape[1])[:, None]
    fx = np.fft.fftfreq(s.shape[2])[None, :]
    high = np.sqrt(fx ** 2 + fy ** 2) > cutoff
    total = float(power.sum())
    variance = total / s.size / (s.shape[1] * s.shape[2])  # Parseval
    fraction = float(power[:, high].sum() / total) if total > 0 else 0.0
    return fraction, variance


def split_kind(sigma, cutoff: float = SPLIT_KIND_CUTOFF,
               threshold: float = SPLIT_KIND_THRESHOLD,
               min_variance: float = SPLIT_KIND_MIN_VARIANCE) -> dict:
    """Tell a "syntactic" split from a "semantic" one from sigma alone.

    Syntactic: more than `threshold` of sigma's spatial energy lies above
    `cutoff` cycles/pixel (a checkerboard or stripes). Semantic: the energy
    is at lower frequencies (sigma follows shapes). "none": sigma is
    nearly constant over each image (mean variance below `min_variance`),
    so the model does not split; the output is one fixed blend of x1 and x2.

    Args:
        sigma: maps (N, H, W[, 1]) from `SplitVAE.decode`/`generate`/
            `reconstruct` (key "sigma"), or one map (H, W).
    Returns:
        dict: kind, high_frequency_fraction, sigma_variance, sigma_mean,
        and the cutoff and threshold used.

    Example:
    ```python
    parts = model.reconstruct(test_images[:1000])
    split_kind(parts["sigma"])["kind"]      # "syntactic", "semantic" or "none"
    ```
    """
    fraction, variance = sigma_high_frequency_fraction(sigma, cutoff)
    if variance < min_variance:
        kind = "none"
    else:
        kind = "syntactic" if fraction > threshold else "semantic"
    return {"kind": kind, "high_frequency_fraction": fraction,
            "sigma_variance": variance, "sigma_mean": float(np.mean(sigma)),
            "cutoff_cycles_per_pixel": cutoff, "threshold": threshold,
            "n_maps": int(np.asarray(sigma).shape[0]) if np.ndim(sigma) >= 3 else 1}
