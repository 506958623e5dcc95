"""The kind of split a Split VAE found: "syntactic", "semantic" or "none".

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).

The paper observes two decompositions: "syntactic", where sigma is a
high-frequency pattern (a checkerboard, stripes) and x1, x2 carry
complementary pixels, and "semantic", where sigma follows the image's
contours. They differ in where sigma's spatial energy lies: at the highest
frequencies for the first, at low ones for the second.

Which part of sigma counts. The output is x_hat = sigma*x1 + (1-sigma)*x2
= x2 + sigma*(x1 - x2), so d x_hat / d sigma = x1 - x2: at a pixel where x1
and x2 agree (the black background of digits and garments, where both are
0) sigma has no effect on the output and the loss leaves it free. Measured
over the whole map, that free part is counted as if it were the split. It
usually differs from sigma inside the object by a step (sigma bright around
a digit, darker on it): an envelope with the object's shape, whose energy
lies at the lowest frequencies. A carrier of amplitude a on an object
covering a share p of the image, inside a background that differs from its
mean by d, keeps a^2 / (a^2 + (1-p) d^2) of the energy above the cutoff,
whatever the image size: a = 0.25, d = 0.4, p = 0.3 gives 0.36 at 16, 32
and 64 pixels alike. So the size of the image is not the cause; the envelope
is. On the shipped `digits` model (σ a visible carrier, x̂1 and x̂2
complementary pixels) 72% of sigma's energy lies below the cutoff, 45% in
the two lowest horizontal frequencies (+-1/16 cycles/pixel, the bright
border columns), and the plain measure reads 28%. Conversely the free part
can hold a carrier that does nothing: a Fashion-MNIST model of the study
with a textured background and a smooth sigma on the garment reads 37%.
On sigma alone the two cases have the same spectrum; what tells them apart
is where x1 and x2 differ.

The measure, given x1 and x2, is therefore the spectrum of sigma as it acts
on the output: u = w * (sigma - c) with w = |x1 - x2| and c the constant
that best fits sigma where it acts (least squares with weights w^2; a
constant sigma is no split, so it must count for nothing). u is 0 where
sigma is free, so the envelope outside the object and any pattern there
drop out; inside, a carrier stays a carrier. Without x1 and x2, w = 1 and c
is sigma's mean: the plain spectrum of sigma, right only when sigma acts
everywhere.

`evaluation.evaluate_model` reports it for the reconstructions of the
reference images (`split_kind_of_parts`). Numpy only.
"""

from __future__ import annotations

import numpy as np

from .parts import components_of, images_of, map_names

SPLIT_KIND_CUTOFF = 0.25      # cycles/pixel: half of the Nyquist frequency 0.5
SPLIT_KIND_THRESHOLD = 0.5    # above: most of sigma's energy is high-frequency
SPLIT_KIND_MIN_VARIANCE = 1e-4  # below: sigma is (nearly) constant, no split


def _as_maps(a, name: str) -> np.ndarray:
    s = np.asarray(a, dtype=np.float64)
    if s.ndim == 4 and s.shape[-1] == 1:
        s = s[..., 0]
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or s.shape[1] < 2 or s.shape[2] < 2 or len(s) == 0:
        raise ValueError(
            f"{name} must be maps (N, H, W), (N, H, W, 1) or (H, W) with H, W >= 2; "
            f"received shape {np.shape(a)}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contains NaN or inf")
    return s


def _action_weight(x1, x2, maps_shape) -> np.ndarray:
    """|x1 - x2| per pixel, shaped like sigma's maps (N, H, W).

    x1 and x2 are images (N, H, W, C), one image (H, W, C), or maps shaped
    like sigma's. Over C channels the weight is the length of the vector
    d x_hat / d sigma = x1 - x2 (one sigma acts on every channel), which is
    |x1 - x2| itself for one channel.
    """
    a, b = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"x1 and x2 must have the same shape; received {a.shape} and "
                         f"{b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("x1 or x2 contains NaN or inf")
    n, h, w = maps_shape
    if a.shape in ((n, h, w), (h, w)):                      # maps, as sigma's
        return np.abs(a - b).reshape(maps_shape)
    if a.ndim == 4 and a.shape[:3] == (n, h, w) or a.ndim == 3 and n == 1 \
            and a.shape[:2] == (h, w):                      # images with channels
        return np.sqrt(np.sum((a - b) ** 2, axis=-1)).reshape(maps_shape)
    raise ValueError(f"x1 and x2 must be the images of sigma's {n} map(s) of {h}x{w} "
                     f"(any number of channels); received shape {a.shape}")


def sigma_high_frequency_fraction(sigma, cutoff: float = SPLIT_KIND_CUTOFF,
                                  x1=None, x2=None):
    """(fraction, variance): the share of sigma's spatial energy above `cutoff`.

    The energy is the power spectrum (2-D DFT, Parseval) of each map of
    u = w * (sigma - c), summed over the maps, with w = |x1 - x2| (1 when
    x1 and x2 are not given) and c = sum(w^2 sigma) / sum(w^2) per map (the
    mean of sigma when w = 1); see the module docstring for why.
    Frequencies are radial, sqrt(fx^2 + fy^2) in cycles per pixel. A
    checkerboard has all its energy at (0.5, 0.5), radius 0.71; a smooth
    map almost none above 0.25. `variance` is sigma's variance where it
    acts, sum(u^2) / sum(w^2) over all the maps (with w = 1: the mean
    per-map variance of sigma).

    Args:
        sigma: array (N, H, W), (N, H, W, 1) or one map (H, W).
        x1, x2: the two parts of the same shape as sigma, both or neither.
    """
    s = _as_maps(sigma, "sigma")
    if not 0.0 < cutoff < np.sqrt(0.5):
        raise ValueError(f"cutoff must be in (0, 0.707) cycles/pixel, received {cutoff!r}")
    if (x1 is None) != (x2 is None):
        raise ValueError("give both x1 and x2, or neither")
    if x1 is None:
        w = np.ones_like(s)
    else:
        w = _action_weight(x1, x2, s.shape)
    w2 = w * w
    norm = w2.sum(axis=(1, 2), keepdims=True)
    c = (w2 * s).sum(axis=(1, 2), keepdims=True) / np.where(norm > 0, norm, 1.0)
    u = w * (s - c)
    power = np.abs(np.fft.fft2(u)) ** 2
    fy = np.fft.fftfreq(s.shape[1])[:, None]
    fx = np.fft.fftfreq(s.shape[2])[None, :]
    high = np.sqrt(fx ** 2 + fy ** 2) > cutoff
    total = float(power.sum())
    weight = float(norm.sum())
    variance = total / (s.shape[1] * s.shape[2]) / weight if weight > 0 else 0.0  # Parseval
    fraction = float(power[:, high].sum() / total) if total > 0 else 0.0
    return fraction, variance


def split_kind(sigma, cutoff: float = SPLIT_KIND_CUTOFF,
               threshold: float = SPLIT_KIND_THRESHOLD,
               min_variance: float = SPLIT_KIND_MIN_VARIANCE,
               x1=None, x2=None) -> dict:
    """Tell a "syntactic" split from a "semantic" one from sigma (and x1, x2).

    Syntactic: more than `threshold` of sigma's spatial energy lies above
    `cutoff` cycles/pixel (a checkerboard or stripes). Semantic: the energy
    is at lower frequencies (sigma follows shapes). "none": sigma is
    nearly constant where it acts (variance below `min_variance`), so the
    model does not split; the output is one fixed blend of x1 and x2.

    Give x1 and x2 whenever they exist: sigma is then weighted by |x1 - x2|,
    so that where sigma has no effect on x_hat (x1 = x2, the background) it
    does not count (`split_kind_of_parts` does it from a parts dict).

    Args:
        sigma: maps (N, H, W[, 1]) from `SplitVAE.decode`/`generate`/
            `reconstruct` (key "sigma"), or one map (H, W).
        x1, x2: the same call's "x1" and "x2", both or neither.
    Returns:
        dict: kind, high_frequency_fraction, sigma_variance, sigma_mean,
        and the cutoff and threshold used.

    Example:
    ```python
    parts = model.reconstruct(test_images[:1000])
    split_kind(parts["sigma"], x1=parts["x1"], x2=parts["x2"])["kind"]
    ```
    """
    fraction, variance = sigma_high_frequency_fraction(sigma, cutoff, x1=x1, x2=x2)
    if variance < min_variance:
        kind = "none"
    else:
        kind = "syntactic" if fraction > threshold else "semantic"
    return {"kind": kind, "high_frequency_fraction": fraction,
            "sigma_variance": variance, "sigma_mean": float(np.mean(sigma)),
            "cutoff_cycles_per_pixel": cutoff, "threshold": threshold,
            "n_maps": int(np.asarray(sigma).shape[0]) if np.ndim(sigma) >= 3 else 1}


def one_against_the_rest(maps, images):
    """For K maps and images, each map k against the blend of the others.

    x_hat = sum_j m_j x_j = m_k x_k + (1 - m_k) r_k, with r_k the blend of
    the other images, sum_{j != k} m_j x_j / sum_{j != k} m_j. So map k acts on
    x_hat as the paper's sigma acts between x1 = x_k and x2 = r_k: moving a
    share of a pixel from the others to component k changes x_hat by
    x_k - r_k. Where the others have no weight left (m_k = 1), r_k is x_k and
    the weight |x_k - r_k| is 0: the map is not free to move there without
    the others. For K = 2 this gives (sigma, x1, x2) and (1 - sigma, x2, x1).

    Args:
        maps: K arrays (N, H, W[, 1]) that sum to 1 at every pixel.
        images: K arrays (N, H, W, C).
    Returns:
        (maps, x, rest), each the K cases concatenated on the first axis:
        (K*N, H, W) maps and (K*N, H, W, C) images.
    """
    m = [_as_maps(a, f"sigma{k + 1}") for k, a in enumerate(maps)]
    x = [np.asarray(a, dtype=np.float64) for a in images]
    if len(m) != len(x) or len(m) < 2:
        raise ValueError(f"give K >= 2 maps and as many images; received {len(m)} and "
                         f"{len(x)}")
    if x[0].ndim == 3:  # (N, H, W) images of one channel
        x = [a[..., None] for a in x]
    rest = []
    for k, (mk, xk) in enumerate(zip(m, x)):
        # x_k - r_k from the differences, so that equal images give exactly 0
        others = sum(mj for j, mj in enumerate(m) if j != k)[..., None]
        diff = sum(mj[..., None] * (xk - xj) for j, (mj, xj) in enumerate(zip(m, x)) if j != k)
        safe = np.where(others > 1e-12, others, 1.0)
        rest.append(xk - np.where(others > 1e-12, diff / safe, 0.0))
    return np.concatenate(m), np.concatenate(x), np.concatenate(rest)


def split_kind_of_parts(parts: dict, **kwargs) -> dict | None:
    """`split_kind` of a decode/generate/reconstruct dict; None for a vanilla
    model's dict (no maps).

    The paper's model (K = 2): sigma weighted by |x1 - x2|. K > 2 components:
    every map against the blend of the others (`one_against_the_rest`), the K
    cases pooled into one spectrum; for K = 2 the pooled measure is the
    paper's one (the second case, 1 - sigma, has the same spectrum). The
    result adds "components" (K) and "map_means" (the mean of each map).
    """
    k = components_of(parts)
    if not k:
        return None
    if k == 2:
        return split_kind(parts["sigma"], x1=parts.get("x1"), x2=parts.get("x2"), **kwargs)
    maps = [parts[n] for n in map_names(k)]
    sigma, x, rest = one_against_the_rest(maps, images_of(parts))
    out = split_kind(sigma, x1=x, x2=rest, **kwargs)
    out.update(sigma_mean=float(np.mean(maps[0])), n_maps=int(len(sigma) // k),
               components=k, map_means=[float(np.mean(a)) for a in maps])
    return out
