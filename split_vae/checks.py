"""Input checks shared by the whole package: images, image shapes, integers.

Every public entry point that takes images or a count checks it here, so one
rule holds everywhere and a bad value is named the same way wherever it
enters. The rules:

- images are arrays (N, H, W, C) with C = 1 (grayscale) or 3 (RGB) and N >= 1;
  an alpha channel is refused (drop it with `x[..., :3]`), and a grayscale
  array (N, H, W) needs its channel axis (`x[..., None]`);
- uint8 (or other integers in 0..255) are pixels, scaled by 1/255; floats
  must be finite and lie in [0, 1] (the decoder ends in a sigmoid);
- a model's images are square with side 4 * 2**k (the paper pads MNIST's
  28x28 to 32x32) and match its image_shape.

This module imports numpy alone, so that everything else may import it.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

CHANNELS = (1, 3)

# The pixel scale, the one place it is written: uint8 pixels 0..255 are the
# model's floats in [0, 1] times PIXEL_MAX (`unit_scale`, `to_pixels`).
PIXEL_MAX = 255.0
_UNIT_PER_PIXEL = np.float32(1.0 / PIXEL_MAX)


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------
def integer(value, name: str, minimum: int = 1) -> int:
    """`value` as an int if it is an integer >= minimum (bool refused), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {what}, received {value!r}")
    return int(value)


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------
def is_valid_image_size(side: int) -> bool:
    """True when `side` is 4 * 2**k for some k >= 0 (the sizes the network halves)."""
    return side >= 4 and side % 4 == 0 and (side // 4) & (side // 4 - 1) == 0


def image_shape(shape, name: str = "image_shape") -> tuple:
    """`shape` as a tuple (H, W, C) of positive ints, else ValueError."""
    try:
        out = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or min(out) < 1:
        raise ValueError(f"{name} must be (H, W, C), received {shape!r}")
    return out


def matching_shape(shape, expected, what: str) -> None:
    """ValueError unless a source's image shape (H, W, C) is `expected` (None: any)."""
    shape = tuple(int(v) for v in shape)
    if expected is None or shape == tuple(expected):
        return
    fmt = "x".join
    raise ValueError(
        f"{what} gives {fmt(map(str, shape))} images but the model expects "
        f"{fmt(map(str, expected))} (image_shape); use the preset made for "
        "this dataset, or set the model's image_shape to the data's")


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------
def images(x, name: str = "images", *, image_shape=None, owner: str = "the model",
           hint: str = "", keep_uint8: bool = False,
           announce_uint8: bool = False) -> np.ndarray:
    """Checked images: float32 in [0, 1] (or uint8 with keep_uint8), shape (N, H, W, C).

    Args:
        x: array-like of images; a numpy memory map stays one (no copy) when
            keep_uint8 and its dtype is uint8.
        name: how the error messages call `x`.
        image_shape: (H, W, C) that the images must have, or None for any
            (C still 1 or 3).
        owner: who expects image_shape, for the messages.
        hint: a sentence appended to a shape error.
        keep_uint8: return uint8 pixels as they are instead of scaling them.
        announce_uint8: log (INFO) that uint8 data was scaled by 1/255.

    Raises:
        ValueError naming the problem: a shape that is not (N, H, W, C), no
        images, 2 or 4+ channels, a shape that is not image_shape (or, for a
        model, not square with side 4 * 2**k), a non-numeric dtype, NaN/inf
        (with the first index), values outside [0, 1] or integers outside 0..255.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    expected = None if image_shape is None else tuple(int(v) for v in image_shape)
    _check_image_array_shape(x, name, expected, owner, hint)
    return pixels(x, name, keep_uint8=keep_uint8, announce_uint8=announce_uint8)


def _check_image_array_shape(x, name, expected, owner, hint) -> None:
    want = "(N, H, W, C)" if expected is None else f"(N, {', '.join(map(str, expected))})"
    hint = f" {hint}" if hint else ""
    if x.ndim != 4:
        extra = (" (a grayscale array (N, H, W) needs its channel axis: x[..., None])"
                 if x.ndim == 3 else "")
        raise ValueError(f"{owner} expects {name} of shape {want}; received an array of "
                         f"shape {tuple(x.shape)}{extra}.{hint}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    h, w, c = x.shape[1:]
    if c not in CHANNELS:
        raise ValueError(
            f"{name} have {c} channels (shape {tuple(x.shape)}); images must have 1 "
            "(grayscale) or 3 (RGB) channels; drop an alpha channel with x[..., :3]")
    if expected is None or (h, w, c) == expected:
        return
    if owner == "the model" and (h != w or not is_valid_image_size(h)):
        raise ValueError(
            f"{name} are {h}x{w}, but the Split VAE needs square images of side "
            f"4 * 2**k (e.g. 16, 32, 64); pad or resize them (the paper pads "
            f"MNIST 28x28 to 32x32)")
    detail = (f"they are {h}x{w}, not {expected[0]}x{expected[1]}" if (h, w) != expected[:2]
              else f"they have {c} channel(s), not {expected[2]}")
    raise ValueError(f"{owner} expects {name} of shape {want}; received "
                     f"{tuple(x.shape)}: {detail}.{hint}")


def pixels(x: np.ndarray, name: str = "images", *, keep_uint8: bool = False,
           announce_uint8: bool = False) -> np.ndarray:
    """Pixel values of any shape: float32 in [0, 1], or uint8 with keep_uint8.

    uint8 is scaled by 1/255 (logged at INFO with announce_uint8); other
    integers must lie in 0..255 and are taken as pixels too; floats must be
    finite (the first NaN/inf is named by index) and lie in [0, 1].
    """
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(f"{name} hold integers in [{lo}, {hi}]; integer pixels must "
                             "lie in 0..255 (floats in [0, 1])")
        x = x.astype(np.uint8)
    if x.dtype == np.uint8:
        if keep_uint8:
            return x
        if announce_uint8:
            logger.info("%s: uint8 data scaled to [0, 1] by 1/255", name)
        return unit_scale(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be numeric (uint8 pixels or floats in [0, 1]), "
                         f"received dtype {x.dtype}")
    x = x.astype("float32", copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} contain {int((~finite).sum())} NaN/inf value(s); the first "
            f"at index {tuple(int(i) for i in bad)}")
    if x.size:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{name} must lie in [0, 1] (the decoder ends in a sigmoid), "
                f"received values in [{lo:g}, {hi:g}]; divide by 255 if they are pixels, "
                "or save them as uint8")
    return x


def dataset(ds, image_shape):
    """Check a tf.data.Dataset of image batches before training.

    Its element shape must be (batch, *image_shape) (or (x, ...) tuples whose
    first item is); uint8 batches are mapped to float32 / 255; the first batch
    is checked for NaN/inf and range.
    """
    # Lazy: only a tf.data.Dataset brings us here, and this module must stay
    # importable without TensorFlow (the command line's --help, other backends).
    import tensorflow as tf

    spec = ds.element_spec
    if isinstance(spec, (tuple, list)):
        ds = ds.map(lambda *items: items[0])
        spec = ds.element_spec
    if isinstance(spec, dict):
        raise ValueError("the dataset must yield image batches, not dicts")
    shape = tuple(spec.shape)
    if len(shape) != 4:
        raise ValueError(
            f"the dataset must yield batches of shape (batch, H, W, C); its element "
            f"shape is {shape} (call .batch(n) on it?)")
    if shape[1:] != tuple(image_shape) and None not in shape[1:]:
        raise ValueError(
            f"the dataset yields images of shape {shape[1:]}, the model expects "
            f"{tuple(image_shape)}")
    if spec.dtype == tf.uint8:
        logger.info("dataset: uint8 batches scaled to [0, 1] by 1/255")
        ds = ds.map(lambda b: unit_scale(tf.cast(b, tf.float32)))
    for first in ds.take(1):
        images(first.numpy(), "the dataset's first batch", image_shape=image_shape)
    return ds


# ---------------------------------------------------------------------------
# The pixel scale
# ---------------------------------------------------------------------------
def unit_scale(x):
    """Pixel values 0..255 on the model's [0, 1] scale: x * (1/255) in float32.

    x: a numpy array of any numeric dtype (uint8 memory maps included),
    converted in one pass without a float64 copy, or a float32 TensorFlow
    tensor.
    """
    if isinstance(x, np.ndarray):
        out = np.empty(x.shape, "float32")
        np.multiply(x, _UNIT_PER_PIXEL, out=out, casting="unsafe")
        return out
    return x * _UNIT_PER_PIXEL


def to_pixels(x) -> np.ndarray:
    """Floats in [0, 1] as uint8 pixels: x * 255, rounded to the nearest, clipped."""
    return to_uint8(np.asarray(x) * PIXEL_MAX)


def to_uint8(x) -> np.ndarray:
    """Values on the 0..255 scale, rounded to the nearest and clipped, as uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
