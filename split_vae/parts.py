"""The parts of a split model's output, for any number K of components.

`SplitVAE.decode`, `generate` and `reconstruct` return a dict:
- the paper's model (K = 2): "sigma", "x1", "x2", "x_hat", with
  x_hat = sigma*x1 + (1-sigma)*x2;
- K > 2 components (the paper's Section VII): "sigma1".."sigmaK" (maps that
  sum to 1 at every pixel), "x1".."xK", "x_hat" = sum_k sigma_k * x_k;
- a vanilla model: "x_hat" alone.
The functions here read such a dict whatever K is, with numpy alone (no
framework is imported), so evaluation, figures, export and the split kind
share one reading of it.
"""

from __future__ import annotations

import numpy as np

# Figure and table labels of the paper's parts (Figures 1-4).
ROW_LABELS = {"input": "x", "sigma": "σ", "x1": "x̂₁", "x2": "x̂₂", "x_hat": "x̂"}
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def row_label(key: str) -> str:
    """The label of a part: σ, x̂₁, x̂ as the paper's; σ₃, x̂₃ for more components."""
    if key in ROW_LABELS:
        return ROW_LABELS[key]
    for prefix, symbol in (("sigma", "σ"), ("x", "x̂")):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            return symbol + key[len(prefix):].translate(_SUBSCRIPTS)
    return key


def part_names(components: int) -> tuple[str, ...]:
    """The keys of the K images: ("x1", ..., "xK")."""
    return tuple(f"x{k + 1}" for k in range(components))


def map_names(components: int) -> tuple[str, ...]:
    """The keys of the maps: ("sigma",) for K = 2 (the paper's sigma; the
    other map is 1 - sigma), ("sigma1", ..., "sigmaK") for K > 2."""
    return ("sigma",) if components == 2 else tuple(f"sigma{k + 1}" for k in range(components))


def components_of(parts: dict) -> int:
    """K of a decode/generate dict: 2 with "sigma", K with "sigma1".."sigmaK",
    0 for a vanilla model's dict (x_hat alone)."""
    if "sigma" in parts:
        return 2
    k = 0
    while f"sigma{k + 1}" in parts:
        k += 1
    if k == 1:
        raise ValueError("a dict of parts with one map (sigma1) and no sigma2; a split "
                         "model has at least 2 components")
    return k


def images_of(parts: dict) -> list:
    """The K images [x1, ..., xK] of the dict (empty for a vanilla model)."""
    return [parts[name] for name in part_names(components_of(parts))]


def row_names(parts: dict) -> tuple[str, ...]:
    """The figure rows of a dict, the paper's order: maps, images, x_hat."""
    k = components_of(parts)
    return (map_names(k) + part_names(k) + ("x_hat",)) if k else ("x_hat",)


def maps_of(parts: dict) -> np.ndarray | None:
    """The K maps stacked on a last axis (N, H, W, K), float64; for K = 2
    sigma and 1 - sigma. None for a vanilla model's dict."""
    k = components_of(parts)
    if not k:
        return None
    if k == 2:
        s = np.asarray(parts["sigma"], dtype=np.float64)
        return np.concatenate([s, 1.0 - s], axis=-1)
    return np.concatenate([np.asarray(parts[n], dtype=np.float64) for n in map_names(k)],
                          axis=-1)


def mix_images(*images) -> np.ndarray:
    """The paper's "mix" of K parts: of n samples, part k gives the samples
    [k*n//K, (k+1)*n//K). For K = 2 this is x1 for the first half and x2 for
    the rest (with an odd count the first floor(n/2) from x1). Applied to
    images, or to their features (the extractor sees every image alone)."""
    if len(images) < 2:
        raise ValueError(f"mix needs at least 2 parts, received {len(images)}")
    arrays = [np.asarray(x) for x in images]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("the parts must have the same shape, received "
                         + " and ".join(str(a.shape) for a in arrays))
    n, k = len(arrays[0]), len(arrays)
    return np.concatenate([a[i * n // k:(i + 1) * n // k] for i, a in enumerate(arrays)])


def mix_description(components: int) -> str:
    if components == 2:
        return "x1 for the first half of the samples, x2 for the second"
    return (f"x_k for the k-th of {components} equal slices of the samples "
            "(slice k: samples k*n//K to (k+1)*n//K)")
