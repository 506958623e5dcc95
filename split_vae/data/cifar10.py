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

# The ten categories, in the order of their labels 0..9 (batches.meta).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


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
    return _read_batches(data_dir, split, with_labels=False)[0]


def read_cifar10_labels(data_dir, split) -> np.ndarray:
    """CIFAR-10 labels (N,) uint8 in 0..9 (`CIFAR10_CLASSES` names them), in the
    order of `read_cifar10_split`'s images."""
    return read_cifar10_labelled(data_dir, split)[1]


def read_cifar10_labelled(data_dir, split) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) uint8 in 0..9) of a CIFAR-10 split.

    Reads the batches `read_cifar10_split` reads. Raises FileNotFoundError
    when no batch or one of the split's is missing, ValueError when a batch
    is damaged, its labels are missing, fewer or more than its images, or
    outside 0..9.
    """
    return _read_batches(data_dir, split, with_labels=True)


def _read_batches(data_dir, split, with_labels: bool):
    """(images, labels or None): the images are read alike with or without labels."""
    if split not in CIFAR10_BATCHES:
        raise ValueError("CIFAR-10 has only the splits 'train' and 'test'")
    found = find_cifar10(data_dir)
    if found is None:
        raise FileNotFoundError(
            f"no CIFAR-10 batches in {data_dir!r} (looked for test_batch or "
            "test_batch.bin there and in cifar-10-batches-py/, cifar-10-batches-bin/)")
    directory, ext = found
    paths = [os.path.join(directory, name + ext) for name in CIFAR10_BATCHES[split]]
    missing = [os.path.basename(p) for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 batches missing in {directory!r}: {missing}; "
                                "copy the whole extracted archive there")
    parts = [_read_cifar10_bin(p, with_labels) if ext else _read_cifar10_pickle(p, with_labels)
             for p in paths]
    pixels = np.concatenate([x for x, _ in parts])
    labels = np.concatenate([y for _, y in parts]) if with_labels else None
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _checked_labels(path, labels, n) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{path}: {labels.size:,} labels for {n:,} images; "
                         "extract the archive again")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: its labels are {labels.dtype}, expected integers 0..9")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels in [{labels.min()}, {labels.max()}]; CIFAR-10's "
                         "are 0..9 (is this CIFAR-100?)")
    return labels.astype(np.uint8)


def _read_cifar10_bin(path, with_labels=False):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise ValueError(f"{path} is truncated or corrupt: {raw.size:,} bytes is not a whole "
                         "number of 3073-byte records; extract the archive again")
    records = raw.reshape(-1, 3073)
    labels = _checked_labels(path, records[:, 0], len(records)) if with_labels else None
    return records[:, 1:], labels


def _read_cifar10_pickle(path, with_labels=False):
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
        y = batch.get(b"labels", batch.get("labels"))
    except Exception as e:  # pickle raises many types on a damaged file
        raise ValueError(f"{path} is not a readable CIFAR-10 python batch "
                         f"({type(e).__name__}: {e}); extract the archive again") from None
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise ValueError(f"{path}: its data is {x.dtype} {x.shape}, expected uint8 (N, 3072)")
    if not with_labels:
        return x, None
    if y is None:
        raise ValueError(f"{path} has no b'labels' entry; extract the archive again")
    return x, _checked_labels(path, y, len(x))
