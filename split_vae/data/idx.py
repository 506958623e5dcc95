"""IDX files, the format of MNIST and Fashion-MNIST (LeCun's MNIST page).

Debian's `dataset-fashion-mnist` package installs Fashion-MNIST's four IDX
files in `DEBIAN_FASHION_MNIST`, which `split_vae.data.load` finds without a
data_dir. Imports numpy and `common`.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from .common import require_exists

# Debian's `dataset-fashion-mnist` package installs the original IDX files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array.

    The format (LeCun's MNIST page): two zero bytes, a type code (0x08 uint8,
    0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the
    number of dimensions, each dimension as a big-endian uint32, then the
    values in C order, big-endian. Raises ValueError on a truncated or
    corrupt file, naming it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file {path!r} does not exist")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(
                f"{path} is a corrupt or truncated gzip file ({e}); download it again"
            ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file (its first bytes are {raw[:4].hex()!r}, expected "
            "00 00 <type> <ndim>); pass the MNIST-format files, e.g. "
            "train-images-idx3-ubyte.gz")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes); download it again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise ValueError(
            f"{path} is truncated: its header announces shape {dims} ({expected:,} bytes of "
            f"data) but it holds {found:,}; download it again")
    if found > expected:
        raise ValueError(
            f"{path} is corrupt: {found - expected:,} bytes follow the {dims} values its "
            "header announces; download it again")
    x = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=header)
    return x.reshape(dims).astype(dtype.newbyteorder("="))


def find_idx(directory, split, kind):
    """Path of the split's IDX file of `kind` ('images' or 'labels'), or None.

    Accepts the original names (train-images-idx3-ubyte, t10k-...) and the
    usual variants: test- for t10k-, '.' for '-' before idx, a .gz suffix.
    """
    if not os.path.isdir(directory):
        return None
    prefixes = {"train": ("train",), "test": ("t10k", "test")}.get(split, ())
    rank = 3 if kind == "images" else 1
    names = {n.lower(): n for n in os.listdir(directory)}
    for prefix in prefixes:
        for sep in ("-", "."):
            for gz in ("", ".gz"):
                candidate = f"{prefix}-{kind}{sep}idx{rank}-ubyte{gz}"
                if candidate in names:
                    return os.path.join(directory, names[candidate])
    return None


def read_idx_split(directory, split, kind="images") -> np.ndarray:
    """The split's images (N, H, W, 1) uint8, or labels (N,), from an IDX directory."""
    if split == "validation":
        raise ValueError("IDX (MNIST-format) data has only the splits 'train' and 'test'")
    if not os.path.isdir(directory):
        require_exists(directory)
        raise FileNotFoundError(f"{directory!r} is not a directory of IDX files")
    path = find_idx(directory, split, kind)
    if path is None:
        prefix = "train" if split == "train" else "t10k"
        rank = 3 if kind == "images" else 1
        raise FileNotFoundError(
            f"no {split} {kind} in {directory!r}: expected {prefix}-{kind}-idx{rank}-ubyte "
            "(or .gz), as distributed with MNIST / Fashion-MNIST; put the files there")
    x = read_idx(path)
    if kind == "labels":
        return x
    if x.ndim != 3:
        raise ValueError(f"{path} holds an array of shape {x.shape}, not images (N, H, W)")
    if x.dtype != np.uint8:
        raise ValueError(f"{path} holds {x.dtype} values; image IDX files hold uint8 pixels")
    return x[..., None]
