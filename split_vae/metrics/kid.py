"""Kernel Inception Distance: an unbiased MMD^2 between features (numpy only).

Bińkowski, Sutherland, Arbel, Gretton, "Demystifying MMD GANs", ICLR 2018
(https://arxiv.org/abs/1801.01401): the squared maximum mean discrepancy
between two feature sets with the cubic polynomial kernel

    k(x, y) = (x . y / d + 1)^3,

estimated without bias, averaged over random subsets (mean and standard
deviation). The defaults are torch-fidelity's: 100 subsets of min(1000, N)
samples, N the smaller set. Unlike the Fréchet distance it has no bias from
a small N, so it can compare sets of a few hundred images. In Inception
features it is the KID; in any other extractor's, a kernel distance (KD).

Imports numpy alone.
"""

from __future__ import annotations

import numpy as np

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
# Up to this many kernel entries (8 bytes each: 128 MiB), the kernel of every
# pair is computed once and the subsets read from it.
FULL_KERNEL_ENTRIES = 4096 ** 2


def polynomial_kernel(x, y) -> np.ndarray:
    """(x . y / d + 1)^3 for every pair of rows, float64."""
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k  # a third of a power's time on this path


def mmd2_unbiased(x, y) -> float:
    """The unbiased MMD^2 of two equally sized sets (m >= 2) with the cubic kernel.

    Within-set sums leave out the diagonal (k(x_i, x_i)), divided by
    m (m - 1); the cross term is over all m^2 pairs.
    """
    return _mmd2_from_kernels(polynomial_kernel(x, x), polynomial_kernel(y, y),
                              polynomial_kernel(x, y))


def _mmd2_from_kernels(kxx, kyy, kxy) -> float:
    m = len(kxx)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def _check(features, which: str) -> np.ndarray:
    f = np.asarray(features)
    if f.ndim != 2:
        raise ValueError(f"features_{which} must have shape (N, d), received {f.shape}")
    if len(f) < 2:
        raise ValueError(f"features_{which} need at least 2 samples, received {len(f)}")
    f = f.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError(f"features_{which} contain NaN or inf")
    return f


def kid_subset_size(n_a: int, n_b: int, subset_size: int = KID_SUBSET_SIZE) -> int:
    """The subset size used: min(subset_size, n_a, n_b)."""
    return int(min(subset_size, n_a, n_b))


def kernel_inception_distance(features_a, features_b, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int | None = 0):
    """(mean, sd) of the unbiased MMD^2 over `subsets` random subsets.

    Each subset draws min(subset_size, N_a, N_b) rows of each set without
    replacement (`kid_subset_size` says how many); the same seed gives the
    same subsets. sd is the population standard deviation over subsets, as
    torch-fidelity reports it. With equal sets of N samples, one subset and
    subset_size >= N, the mean is the exact unbiased MMD^2 of the two sets.

    Example:
    ```python
    import numpy as np
    from split_vae.metrics import kernel_inception_distance
    rng = np.random.default_rng(0)
    mean, sd = kernel_inception_distance(rng.normal(size=(500, 64)),
                                         rng.normal(0.1, size=(500, 64)))
    ```
    """
    a, b = _check(features_a, "a"), _check(features_b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the feature sets have different dimensions: {a.shape[1]} "
                         f"and {b.shape[1]}")
    if int(subsets) < 1 or int(subset_size) < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, received {subsets} "
                         f"and {subset_size}")
    m = kid_subset_size(len(a), len(b), int(subset_size))
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False))
             for _ in range(int(subsets))]
    if m == len(a) == len(b):
        # Every subset is the whole of both sets, reordered: the unbiased MMD^2
        # does not depend on the order, so one evaluation is every subset's.
        values = np.full(len(draws), mmd2_unbiased(a, b))
    elif (len(a) + len(b)) ** 2 <= FULL_KERNEL_ENTRIES:
        # Every pair's kernel once, then each subset's blocks gathered from it:
        # the same numbers (up to rounding) without a product per subset.
        full = polynomial_kernel(np.concatenate([a, b]), np.concatenate([a, b]))
        kaa, kbb, kab = full[:len(a), :len(a)], full[len(a):, len(a):], full[:len(a), len(a):]
        values = np.array([_mmd2_from_kernels(kaa[np.ix_(i, i)], kbb[np.ix_(j, j)],
                                              kab[np.ix_(i, j)]) for i, j in draws])
    else:
        values = np.array([mmd2_unbiased(a[i], b[j]) for i, j in draws])
    return float(values.mean()), float(values.std())
