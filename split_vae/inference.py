"""Batched numpy inference: `SplitVAE.encode` and `decode` on arrays.

A model's numpy path runs functional views of its sub-models (image ->
z_mean, z_log_var; latent vector -> decoder output) with `predict_on_batch`,
one compiled step per batch, under an optional tqdm bar. The views share the
model's layers and live in a cache outside it, so Keras neither tracks nor
saves them; they go when the model goes. A compiled step per batch is faster,
and peaks lower in memory, than calling the layers eagerly.

Callers check their inputs first; this module takes a model it is given.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
from keras import ops
from tqdm.auto import tqdm

from . import checks

_VIEWS = weakref.WeakKeyDictionary()


def views(model) -> dict:
    """{"encode": image -> [z_mean, z_log_var], "decode": z -> decoder output}."""
    if model not in _VIEWS:
        x = keras.Input(shape=model.image_shape)
        _, _, z_mean, z_log_var = model.latent(model.encoder(x))
        z = keras.Input(shape=(model.latent_dim,))
        decoded = model.decoder(model.embed_latent(z))
        _VIEWS[model] = {"encode": keras.Model(x, [z_mean, z_log_var]),
                         "decode": keras.Model(z, decoded)}
    return _VIEWS[model]


def encode(model, x: np.ndarray, batch_size: int, progress: bool, desc: str):
    """(z_mean, z_log_var) of checked images x, as numpy arrays."""
    encoder = views(model)["encode"]
    means, logvars = [], []
    for i in batch_starts(len(x), batch_size, progress, desc):
        batch, n = _full_batch(x, i, batch_size)
        m, v = encoder.predict_on_batch(batch)
        means.append(ops.convert_to_numpy(m)[:n])
        logvars.append(ops.convert_to_numpy(v)[:n])
    empty = (0, model.latent_dim)
    return _concat(means, empty), _concat(logvars, empty)


def decode(model, z: np.ndarray, batch_size: int, progress: bool, desc: str) -> np.ndarray:
    """The decoder's output (N, H, W, 2C+1 or C) for latent vectors z (N, latent_dim)."""
    decoder = views(model)["decode"]
    outputs = []
    for i in batch_starts(len(z), batch_size, progress, desc):
        batch, n = _full_batch(z, i, batch_size)
        outputs.append(ops.convert_to_numpy(decoder.predict_on_batch(batch))[:n])
    return _concat(outputs, (0,) + tuple(model.image_shape[:2])
                   + (model.config.output_channels,))


def _full_batch(a: np.ndarray, start: int, batch_size: int):
    """(batch, rows that are real): the batch at start, its last one padded by
    repeating its final row up to batch_size when the array holds more than one
    batch, so that every batch has one shape and the compiled step is traced
    once (inference mode: a row's output does not depend on the others)."""
    batch = a[start:start + batch_size]
    n = len(batch)
    if n < batch_size < len(a):
        batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - n, axis=0)])
    return batch, n


def batch_starts(n: int, batch_size: int, progress: bool, desc: str):
    """Start indices of the batches of n items, under a tqdm bar if progress."""
    batch_size = checks.integer(batch_size, "batch_size")
    starts = range(0, n, batch_size)
    if not progress:
        yield from starts
        return
    with tqdm(total=n, desc=desc, unit="img", leave=False) as bar:
        for i in starts:
            yield i
            bar.update(min(int(batch_size), n - i))


def _concat(arrays, empty_shape):
    return np.concatenate(arrays) if arrays else np.zeros(empty_shape, "float32")
