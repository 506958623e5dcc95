"""Latent walks: interpolation between two codes, traversal of latent variables.

A walk is a path of latent vectors, decoded into sigma, x1, x2 and x_hat: the
rows of the paper's figures (Asperti, Bugo, Filippini, IEEE Access 2022,
Figures 1-4), one column per step. Along the path, `split_kind` tells whether
sigma is a high-frequency pattern (a "syntactic" split) or follows shapes
("semantic"). A traversal moves one latent variable at a time over a range,
the others held; a variable whose traversal leaves x_hat unchanged is one the
decoder ignores: an inactive variable (docs/evaluation.md counts them
from the encoder's side, `evaluation.latent_statistics`).

`plotting.plot_walks` draws the walks of this module.

Example:
```python
from split_vae import SplitVAE, explore
model = SplitVAE.from_pretrained("digits")
walk = explore.interpolate(model, images[3], images[17], steps=9, method="spherical")
walk.split["kind"]                  # "syntactic", "semantic" or "none"
walks = explore.traverse(model, dims="all", values=np.linspace(-3, 3, 9))
[w.label for w in walks if not w.active]
```
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .parts import components_of, row_names
from .split_kind import split_kind_of_parts

METHODS = ("linear", "spherical")

# A traversal whose x_hat changes by less than this (the mean over pixels of
# each pixel's range along the walk, on the [0, 1] scale) is drawn and
# reported as inactive. In the shipped digits model, traversed over +-3, the
# six variables the encoder uses change x_hat by 0.26-0.34, while the two
# whose posterior stays near the prior (mean posterior variance 0.75 and
# 0.66) change it by 0.03 and 0.04, which the eye does not see in the
# figure; 0.05 (13 grey levels of 255) separates them.
INACTIVE_CHANGE = 0.05


@dataclasses.dataclass
class Walk:
    """One decoded path.

    Attributes:
        label: what the path is, e.g. "z[3]" or "image 3 -> image 17".
        z: the latent vectors, (steps, latent_dim).
        steps: the position of each column: the value of the traversed
            variable, or t in [0, 1] along an interpolation.
        parts: `SplitVAE.decode` of z: sigma, x1, x2, x_hat (x_hat alone for
            a vanilla model; sigma1..sigmaK, x1..xK, x_hat for K > 2
            components), each (steps, H, W, C).
        split: `split_kind.split_kind_of_parts` of the path's parts, None for a
            vanilla model.
        change: mean over pixels of each pixel's range of x_hat along the
            path (0: the path changes nothing).
    """

    label: str
    z: np.ndarray
    steps: np.ndarray
    parts: dict
    split: dict | None
    change: float

    @property
    def active(self) -> bool:
        """False when the path changes x_hat by less than INACTIVE_CHANGE."""
        return self.change >= INACTIVE_CHANGE


def path_change(x_hat) -> float:
    """Mean over pixels of each pixel's range (max - min) along the path's axis 0."""
    x = np.asarray(x_hat, dtype=np.float64)
    if x.ndim < 2 or len(x) < 2:
        raise ValueError(f"a path needs at least 2 steps, received shape {x.shape}")
    return float(np.mean(x.max(axis=0) - x.min(axis=0)))


def interpolation_path(a, b, steps: int = 9, method: str = "linear") -> np.ndarray:
    """(steps, d) latent vectors from a to b, both ends included.

    "linear": (1 - t) a + t b. "spherical" (slerp): along the great circle
    between the directions of a and b, the norm interpolated linearly, so
    that intermediate codes keep the norm typical of N(0, I) samples instead
    of shrinking towards the origin; parallel or zero vectors fall back to
    linear.
    """
    a, b = (np.asarray(v, dtype=np.float64) for v in (a, b))
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"interpolation needs two latent vectors of one length, received "
                         f"shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("latent vectors contain NaN or inf")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, received {method!r}")
    if int(steps) != steps or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, received {steps!r}")
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if method == "linear" or na == 0 or nb == 0:
        return ((1 - t) * a + t * b).astype("float32")
    ua, ub = a / na, b / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return ((1 - t) * a + t * b).astype("float32")
    direction = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).astype("float32")


def latent_code(model, x) -> np.ndarray:
    """A latent vector (latent_dim,) as given, or z_mean of one image (H, W, C)."""
    x = np.asarray(x)
    if x.shape == (model.latent_dim,):
        return x.astype("float32")
    if x.shape == tuple(model.image_shape):
        return model.encode(x[None])[0][0]
    raise ValueError(
        f"expected a latent vector of shape ({model.latent_dim},) or an image of shape "
        f"{tuple(model.image_shape)}, received shape {x.shape}")


def make_walk(label: str, z, steps, parts: dict) -> Walk:
    """A Walk from a path's latent vectors and their decoded parts."""
    kind = split_kind_of_parts(parts)
    return Walk(label=label, z=np.asarray(z), steps=np.asarray(steps, dtype="float64"),
                parts=parts, split=kind, change=path_change(parts["x_hat"]))


def interpolate(model, a, b, steps: int = 9, method: str = "linear",
                label: str | None = None) -> Walk:
    """The walk from a to b: each a latent vector or an image (encoded to z_mean).

    Args:
        model: a `SplitVAE`.
        a, b: arrays of shape (latent_dim,) or model.image_shape.
        steps: columns, both ends included.
        method: "linear" or "spherical" (see `interpolation_path`).
        label: the walk's name in figures (default "a -> b (method)").
    """
    za, zb = latent_code(model, a), latent_code(model, b)
    z = interpolation_path(za, zb, steps, method)
    return make_walk(label or f"a -> b ({method})", z, np.linspace(0.0, 1.0, len(z)),
                     model.decode(z))


def parse_dims(dims, latent_dim: int) -> list[int]:
    """"all", an int, a sequence of ints or "0,3,5" -> checked list of indices."""
    if isinstance(dims, str):
        if dims.strip() == "all":
            return list(range(latent_dim))
        try:
            dims = [int(d) for d in dims.split(",") if d.strip()]
        except ValueError:
            raise ValueError(f"dimensions must be 'all' or integers separated by commas, "
                             f"received {dims!r}") from None
    elif np.ndim(dims) == 0:
        dims = [dims]
    dims = [int(d) for d in dims]
    bad = [d for d in dims if not 0 <= d < latent_dim]
    if bad or not dims:
        raise ValueError(f"latent dimensions must be in 0..{latent_dim - 1}, received "
                         f"{dims if dims else 'none'}")
    return dims


def traverse(model, dims="all", values=None, base=None) -> list[Walk]:
    """One walk per latent dimension in dims: that variable set to each of values.

    Args:
        model: a `SplitVAE`.
        dims: "all", an index, a list of indices or "0,3,5".
        values: the values the variable takes, one column each (default
            np.linspace(-3, 3, 9): three prior standard deviations each way).
        base: where the other variables stay: None for the origin (the
            prior's mean), a latent vector, or an image (encoded to z_mean).
    Returns:
        list of Walk, labelled "z[i]", in the order of dims; `walk.active`
        is False for a variable that changes x_hat by less than
        INACTIVE_CHANGE.
    """
    dims = parse_dims(dims, model.latent_dim)
    values = np.linspace(-3.0, 3.0, 9) if values is None else np.asarray(values, "float64")
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"values must be at least 2 finite numbers, received {values!r}")
    z0 = (np.zeros(model.latent_dim, "float32") if base is None
          else latent_code(model, base))
    z = np.repeat(z0[None, None], len(dims), axis=0).repeat(len(values), axis=1)
    for i, d in enumerate(dims):
        z[i, :, d] = values
    # One decode for every walk: a single batch is far faster than one per dimension.
    parts = model.decode(z.reshape(-1, model.latent_dim))
    parts = {k: v.reshape((len(dims), len(values)) + v.shape[1:]) for k, v in parts.items()}
    return [make_walk(f"z[{d}]", z[i], values, {k: v[i] for k, v in parts.items()})
            for i, d in enumerate(dims)]


def overall_split(walks) -> dict | None:
    """`split_kind_of_parts` of all the walks together (None if vanilla)."""
    split = [w.parts for w in walks if components_of(w.parts)]
    if not split:
        return None
    keys = [k for k in row_names(split[0]) if k != "x_hat"]
    return split_kind_of_parts({k: np.concatenate([p[k] for p in split]) for k in keys})


def format_traversal(walks) -> str:
    """A table: one line per traversed variable, its change and whether it is active."""
    lines = [f"{'variable':<9} {'change':>8}  state   (inactive: change < {INACTIVE_CHANGE})"]
    for w in walks:
        lines.append(f"{w.label:<9} {w.change:8.4f}  {'active' if w.active else 'INACTIVE'}")
    n_off = sum(not w.active for w in walks)
    lines.append(f"{len(walks) - n_off} active, {n_off} inactive of {len(walks)} traversed")
    return "\n".join(lines)
