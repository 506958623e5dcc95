"""CIFAR-10 from its own distribution: the python pickles or the binary records.

https://www.cs.toronto.edu/~kriz/cifar.html. The pickles are read with an
unpickler that builds numpy arrays and nothing else. Imports numpy and the
standard library.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def find_cifar10(data_dir):
    """(directory, ".bin" or "") of CIFAR-10 batches in or under data_dir, or None."""
    for sub in ("", "cifar-10-batches-bin", "cifar-10-batches-py"):
        directory = os.path.join(data_dir, sub)
        for ext in (".bin", ""):
            if os.path.isfile(os.path.join(directory, "test_batch" + ext)):
                return directory, ext
    return None


def read_cifar10_split(data_dir, split) -> np.ndarray:
    """CIFAR-10 images (N, 32, 32, 3) uint8 from its original distribution.

    Either the binary version (`data_batch_1.bin` ... `test_batch.bin`: records
    of one label byte and 3072 pixel bytes, the red plane, then green, then
    blue) or the python version Keras downloads (`data_batch_1` ...: pickled
    dicts whose b"data" is (N, 3072) in the same order). The pickles are read
    with an unpickler that builds numpy arrays and nothing else.
    """
    if split not in CIFAR10_BATCHES:
        raise ValueError("CIFAR-10 has only the splits 'train' and 'test'")
    directory, ext = find_cifar10(data_dir)
    paths = [os.path.join(directory, name + ext) for name in CIFAR10_BATCHES[split]]
    missing = [os.path.basename(p) for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 batches missing in {directory!r}: {missing}; "
                                "copy the whole extracted archive there")
    parts = [_read_cifar10_bin(p) if ext else _read_cifar10_pickle(p) for p in paths]
    return np.concatenate(parts).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _read_cifar10_bin(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise ValueError(f"{path} is truncated or corrupt: {raw.size:,} bytes is not a whole "
                         "number of 3073-byte records; extract the archive again")
    return raw.reshape(-1, 3073)[:, 1:]


def _read_cifar10_pickle(path):
    allowed = {("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    class ArraysOnly(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
            return super().find_class(module, name)

    try:
        with open(path, "rb") as f:
            batch = ArraysOnly(f, encoding="bytes").load()
        x = np.asarray(batch[b"data"] if b"data" in batch else batch["data"])
    except Exception as e:  # pickle raises many types on a damaged file
        raise ValueError(f"{path} is not a readable CIFAR-10 python batch "
                         f"({type(e).__name__}: {e}); extract the archive again") from None
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise ValueError(f"{path}: its data is {x.dtype} {x.shape}, expected uint8 (N, 3072)")
    return x
