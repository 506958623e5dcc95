"""PyTorch state-dict files (.pth) read into numpy arrays, without PyTorch.

pytorch-fid ships the weights of the 2015 TensorFlow Inception graph as a
`torch.save`d state dict (`pt_inception-2015-12-05-6726825d.pth`). Users of
the TensorFlow or JAX backend should not need PyTorch to read it, and a
pickle must never run code it was not meant to: the unpickler here accepts
an ordered dict of tensors and nothing else (any other global, e.g. `os.system`,
is refused by name), and rebuilds each tensor as a numpy array from the raw
storage bytes.

Both of PyTorch's formats are read:

- the zip format (PyTorch >= 1.6): `<prefix>/data.pkl` pickles the dict,
  each storage is the file `<prefix>/data/<key>`, `<prefix>/byteorder` says
  the byte order;
- the legacy format (before 1.6, `_use_new_zipfile_serialization=False`):
  a magic number, a protocol version and system information, each pickled,
  then the dict's pickle, the pickled list of storage keys, and for each key
  the storage's element count (int64) followed by its bytes.

Imports numpy and the standard library alone.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> numpy dtype of its elements.
STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class _Storage:
    """A storage's type and key, as the pickle names it; data filled in later."""

    def __init__(self, dtype: str, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, int(numel)
        self.data = None


class _StorageType:
    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor(storage, offset, size, stride, *_unused):
    # The storage's bytes are read after the pickle (legacy format), so the
    # tensor is rebuilt once they are there (`_materialize`).
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return ("tensor", storage, int(offset), tuple(int(s) for s in size),
            tuple(int(s) for s in stride))


def _rebuild_parameter(data, *_unused):
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


# The only globals a state dict needs; everything else is refused.
_ALLOWED = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _TensorsOnly(pickle.Unpickler):
    def __init__(self, file, little_endian: bool):
        super().__init__(file)
        self.storages = {}
        self.order = "<" if little_endian else ">"

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"{module}.{name} is not allowed: a weights file holds tensors only")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, kind, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (PyTorch < 0.4 files) are not supported")
        key = str(key)
        if key not in self.storages:
            dtype = np.dtype(self.order + STORAGE_DTYPES[kind.name])
            self.storages[key] = _Storage(dtype, key, numel)
        return self.storages[key]


def _materialize(obj):
    """The unpickled dict with every ("tensor", ...) record as a numpy array."""
    if not isinstance(obj, dict):
        raise ValueError(f"it holds a {type(obj).__name__}, not a state dict")
    out = collections.OrderedDict()
    for name, value in obj.items():
        if not (isinstance(value, tuple) and value and value[0] == "tensor"):
            raise ValueError(f"its entry {name!r} is not a tensor")
        _, storage, offset, size, stride = value
        if storage.data is None:
            raise ValueError(f"the data of {name!r} is missing")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else -1
        if offset < 0 or min(stride, default=0) < 0 or last >= len(storage.data):
            raise ValueError(f"{name!r} reaches past the end of its storage")
        item = storage.data.itemsize
        array = np.lib.stride_tricks.as_strided(
            storage.data[offset:] if all(size) else storage.data[:0],
            shape=size, strides=tuple(s * item for s in stride), writeable=False)
        out[str(name)] = np.array(array, dtype=storage.data.dtype.newbyteorder("="))
    return out


def _read_zip(path: str):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ValueError("the zip archive has no single data.pkl")
        prefix = pkl[0][:-len("data.pkl")]
        order = z.read(prefix + "byteorder").decode().strip() \
            if prefix + "byteorder" in names else "little"
        unpickler = _TensorsOnly(io.BytesIO(z.read(pkl[0])), order == "little")
        obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            raw = z.read(f"{prefix}data/{key}")
            storage.data = _storage_array(raw, storage, key)
    return obj


def _storage_array(raw: bytes, storage: _Storage, key: str):
    need = storage.numel * storage.dtype.itemsize
    if len(raw) < need:
        raise ValueError(f"storage {key} is truncated: {len(raw)} of {need} bytes")
    return np.frombuffer(raw, dtype=storage.dtype, count=storage.numel)


def _read_legacy(f):
    magic = pickle.load(f)
    if magic != LEGACY_MAGIC:
        raise ValueError("it is neither a zip archive nor a legacy torch.save file "
                         "(wrong magic number)")
    if pickle.load(f) != LEGACY_PROTOCOL:
        raise ValueError("unsupported legacy protocol version")
    info = pickle.load(f)
    little = bool(info.get("little_endian", True)) if isinstance(info, dict) else True
    unpickler = _TensorsOnly(f, little)
    obj = unpickler.load()
    keys = _TensorsOnly(f, little).load()
    if not isinstance(keys, list):
        raise ValueError("the list of storage keys is missing")
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise ValueError(f"the file lists an unknown storage {key!r}")
        count = f.read(8)
        if len(count) < 8:
            raise ValueError(f"storage {key} is truncated")
        numel = int(np.frombuffer(count, dtype=unpickler.order + "i8")[0])
        if numel != storage.numel:
            raise ValueError(f"storage {key} holds {numel} elements, the pickle says "
                             f"{storage.numel}")
        storage.data = _storage_array(f.read(numel * storage.dtype.itemsize), storage, key)
    return obj


def read_state_dict(path) -> "collections.OrderedDict[str, np.ndarray]":
    """The tensors of a `torch.save`d state dict, as numpy arrays, without PyTorch.

    Reads the zip format and the legacy (pre-1.6) one. A file that is not a
    state dict, is truncated or corrupt, or whose pickle names anything but
    an ordered dict of tensors raises ValueError naming the file and the
    problem; a missing file, FileNotFoundError.

    Example:
    ```python
    from split_vae.metrics.pth import read_state_dict
    weights = read_state_dict("pt_inception-2015-12-05-6726825d.pth")
    weights["fc.weight"].shape  # (1008, 2048)
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"the weights file {path} does not exist")
    try:
        with open(path, "rb") as f:
            # A zip archive starts with a local file header; is_zipfile looks
            # for the directory at the end, which a truncated file has lost.
            is_zip = f.read(4) == b"PK\x03\x04"
            f.seek(0)
            obj = _read_zip(path) if is_zip else _read_legacy(f)
        return _materialize(obj)
    except Exception as e:  # noqa: BLE001 - pickle and zipfile raise many kinds
        raise ValueError(
            f"cannot read {path} as a PyTorch state dict ({type(e).__name__}: {e}); "
            "the file is truncated, corrupt or not a weights file") from None
