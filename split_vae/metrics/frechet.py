"""The Fréchet distance between Gaussians fitted to features (numpy and scipy only).

Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium", NeurIPS 2017 (https://arxiv.org/abs/1706.08500),
the distance the Split VAE paper (Asperti, Bugo, Filippini, IEEE Access
2022, https://arxiv.org/abs/2202.02738) reports as FID:

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

computed in float64 from the eigenvalues of a symmetric matrix similar to
S1 S2 (`trace_sqrt_product`); `frechet_distance_sqrtm` keeps the usual
formula with scipy's sqrtm to compare against.

Imports numpy and scipy alone: the distance needs no Keras.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.linalg import lapack


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
