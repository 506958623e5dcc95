"""Datasets of the Split VAE paper, and offline sources, as float32 images in [0, 1].

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
The paper's preprocessing (DESIGN.md):

- mnist, fashion_mnist: 28x28 zero-padded by 2 on every side to 32x32x1;
- cifar10: 32x32x3 as is;
- celeba: the aligned 178x218 images cropped to rows 45:173 and columns 25:153
  (a 128x128 square around the face), resized bilinearly to 64x64x3.

Everything goes through one entry point, `load`. The paper's datasets come
from tensorflow-datasets when online; clusters without internet can point
`data_dir` at files they copied: IDX files (the MNIST format), `.npy`/`.npz`
arrays, CIFAR-10's own batches, or a folder of images (CelebA's
`img_align_celeba`). An image folder is
decoded once into a cached `.npy` array (progress bar, atomic write).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import struct
import warnings
import zipfile
import zlib

import numpy as np

from . import checks
from .fileio import atomic_write
from .paths import cache_dir

# ---------------------------------------------------------------------------
# Names and constants
# ---------------------------------------------------------------------------
# The paper's datasets and the bundled one; each applies its own preprocessing
# to whatever source it is read from.
DATASETS = ("mnist", "fashion_mnist", "cifar10", "celeba", "digits")
# Generic offline sources: data_dir is required, no dataset-specific step
# except the MNIST padding of IDX files.
GENERIC_SOURCES = ("idx", "array", "folder")
ALIASES = {"celeb_a": "celeba", "fashion-mnist": "fashion_mnist", "cifar-10": "cifar10",
           "npz": "array", "npy": "array", "images": "folder"}
SPLITS = ("train", "test", "validation")

# Debian's `dataset-fashion-mnist` package installs the original IDX files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

# tensorflow-datasets names of the paper's datasets.
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist",
              "cifar10": "cifar10", "celeba": "celeb_a"}

# CelebA: the aligned images are 178 wide, 218 high; the paper keeps the
# square rows 45:173, columns 25:153 (the face) and resizes it to 64x64.
CELEBA_ALIGNED_HW = (218, 178)
CELEBA_CROP = (45, 173, 25, 153)  # top, bottom, left, right
CELEBA_SHAPE = (64, 64, 3)
# The official partition (list_eval_partition.txt) numbers the images
# 000001.jpg ... 202599.jpg: the first 162,770 are train, the next 19,867
# validation, the last 19,962 test. Used when the partition file is absent.
CELEBA_PARTITION_ENDS = {"train": (1, 162770), "validation": (162771, 182637),
                         "test": (182638, 202599)}

# What to copy for each dataset on a machine without internet (error messages).
OFFLINE_FILES = {
    "mnist": "IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz])",
    "fashion_mnist": "IDX files (train-images-idx3-ubyte[.gz], "
                     "t10k-images-idx3-ubyte[.gz])",
    "cifar10": "the CIFAR-10 batches of the python or binary version "
               "(cifar-10-batches-py/ or cifar-10-batches-bin/)",
    "celeba": "the aligned images (img_align_celeba/000001.jpg ..., with "
              "list_eval_partition.txt beside the folder if you have it)",
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

_CACHE_FORMAT = 1  # bump when the cached preprocessing changes


# ---------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------
def load(name, split="train", *, batch_size=100, data_dir=None, as_numpy=False,
         limit=None, shuffle=None, seed=None, image_shape=None):
    """Images of a dataset split, as a `tf.data.Dataset` or a numpy array.

    Args:
        name: str. One of the paper's datasets, `"mnist"`, `"fashion_mnist"`,
            `"cifar10"`, `"celeba"` (alias `"celeb_a"`), the bundled
            `"digits"`, or a generic offline source that needs `data_dir`:
            `"idx"` (a directory of IDX files), `"array"` (a `.npy`/`.npz`
            file or a directory of them; alias `"npz"`) or `"folder"` (a
            folder of images; alias `"images"`).
        split: str, `"train"` or `"test"` (`"validation"` where the source
            has one: CelebA, tfds datasets that define it).
        batch_size: int, default 100 (the paper's).
        data_dir: str or None. Where the data lies, for machines without
            internet. For the paper's datasets it is auto-detected as, in
            this order: a tensorflow-datasets data directory (holding
            `mnist/`, `cifar10/`, `celeb_a/`, ...); IDX files
            (`train-images-idx3-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`;
            mnist and fashion_mnist); a `.npy`/`.npz` file or a directory of
            them (`x_train`/`x_test` or `train`/`test` arrays, as Keras'
            `mnist.npz`); for cifar10 the original batches
            (`cifar-10-batches-py/` or `cifar-10-batches-bin/`, or their
            contents); for celeba a folder of the aligned images (or its
            parent holding `img_align_celeba/` and, optionally,
            `list_eval_partition.txt`/`.csv`). None: tfds's default
            directory (downloading if needed), Debian's Fashion-MNIST files
            or Keras' loader for fashion_mnist.
        as_numpy: bool. True: return the split's images as one float32
            array `(N, H, W, C)`, unshuffled (what evaluation needs).
        limit: int or None, keep the first `limit` images of the split
            (before any shuffling).
        shuffle: bool or None; None shuffles the train split only. Reshuffled
            every epoch.
        seed: int or None, seed of the shuffling.
        image_shape: `(H, W, C)` of the model, or None. The data must match
            it (else ValueError saying what was found); a generic image
            `"folder"` is resized (bilinearly) and converted to it.

    Returns:
        A `tf.data.Dataset` of float32 batches `(batch, H, W, C)` in [0, 1],
        prefetched, or with `as_numpy=True` a float32 numpy array.

    Raises:
        ValueError: unknown name or split, a corrupt or truncated file,
            images of mixed sizes, data that does not match `image_shape`.
        FileNotFoundError: a missing directory or file, a tfds dataset that
            is not downloaded and cannot be (offline); the message says
            where to put the files.

    Example:
    ```python
    from split_vae import data
    train = data.load("fashion_mnist", "train", batch_size=100, seed=0)
    test = data.load("fashion_mnist", "test", as_numpy=True, limit=10000)
    folder = data.load("folder", data_dir="faces/", image_shape=(64, 64, 3))
    ```
    """
    name = _check_name(name)
    split = _check_split(split)
    batch_size = checks.integer(batch_size, "batch_size")
    if limit is not None:
        limit = checks.integer(limit, "limit")
    if image_shape is not None:
        image_shape = checks.image_shape(image_shape)
    if shuffle is None:
        shuffle = split == "train"
    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))

    source = _resolve(name, split, data_dir, limit, image_shape)
    if isinstance(source, _Stream):
        checks.matching_shape(source.shape, image_shape, source.description)
        if as_numpy:
            return source.to_numpy()
        return source.dataset(batch_size, shuffle, seed)

    x = source  # numpy array, uint8 or float32, (N, H, W, C)
    if limit is not None:
        x = x[:limit]
    checks.matching_shape(x.shape[1:], image_shape, f"dataset {name!r} ({split})")
    if as_numpy:
        return checks.uint8_to_float(x) if x.dtype == np.uint8 else np.array(x, "float32")
    return array_pipeline(x, batch_size=batch_size, shuffle=shuffle, seed=seed)


def array_pipeline(x, *, batch_size=100, shuffle=True, seed=None):
    """A prefetched `tf.data.Dataset` of float32 batches from an image array.

    `x` (N, H, W, C) is uint8 (scaled by 1/255 batch by batch) or float in
    [0, 1]; it may be a memory map. The dataset shuffles indices, not images,
    and gathers each batch from `x`, so the array is never copied into the
    TensorFlow graph (no 2 GB limit) and a memory-mapped cache streams from
    disk.
    """
    import tensorflow as tf

    x = np.asarray(x) if not isinstance(x, np.memmap) else x
    n = len(x)
    if n == 0:
        raise ValueError("no images to load (the array is empty)")
    uint8 = x.dtype == np.uint8
    dtype = tf.uint8 if uint8 else tf.float32
    shape = (None,) + tuple(x.shape[1:])

    def gather(idx):
        # Sorted indices read a memory map in file order; the batch is a
        # random subset either way, so its inner order does not matter.
        batch = x[np.sort(idx)]
        return batch if uint8 else batch.astype("float32", copy=False)

    def fetch(idx):
        batch = tf.numpy_function(gather, [idx], dtype, stateful=False)
        batch.set_shape(shape)
        if uint8:
            batch = tf.cast(batch, tf.float32) * (1.0 / 255.0)
        return batch

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------
def _check_name(name) -> str:
    valid = DATASETS + GENERIC_SOURCES
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, one of {list(valid)}; "
                         f"received {name!r}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in valid:
        raise ValueError(
            f"unknown dataset {name!r}; valid names: {', '.join(valid)} "
            f"(aliases: {', '.join(sorted(ALIASES))}). 'idx', 'array' and "
            "'folder' read files from data_dir")
    return key


def _check_split(split) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, received {split!r}")
    return split


# ---------------------------------------------------------------------------
# Resolving a name and data_dir to a source
# ---------------------------------------------------------------------------
def _resolve(name, split, data_dir, limit, image_shape):
    """A numpy array (N, H, W, C), uint8 or float in [0, 1], or a _Stream."""
    if name == "digits":
        if data_dir is not None:
            raise ValueError("'digits' is bundled with scikit-learn: it takes no data_dir "
                             f"(received {data_dir!r})")
        return _digits(split)

    if name in GENERIC_SOURCES:
        if data_dir is None:
            raise ValueError(f"dataset {name!r} reads files: pass data_dir "
                             "(--data-dir on the command line)")
        _require_exists(data_dir)
        if name == "idx":
            return pad_mnist(read_idx_split(data_dir, split))
        if name == "array":
            return read_array_split(data_dir, split)
        return read_image_folder_split(data_dir, split, image_shape)

    if data_dir is not None:
        return _from_data_dir(name, split, data_dir, limit)
    if name == "fashion_mnist":
        return _fashion_mnist_default(split)
    return _from_tfds(name, split, None, limit)


def _require_exists(path) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"data_dir {path!r} does not exist; check the path (--data-dir), or copy "
            "the dataset's files there (IDX files, .npy/.npz arrays or images)")


def _from_data_dir(name, split, data_dir, limit):
    _require_exists(data_dir)
    tfds_name = TFDS_NAMES[name]
    if _is_tfds_data_dir(data_dir, tfds_name):
        return _from_tfds(name, split, data_dir, limit)
    if os.path.isfile(data_dir) or _array_files(data_dir):
        x = read_array_split(data_dir, split)
        return _preprocess_named(name, x, data_dir)
    if name in ("mnist", "fashion_mnist") and _find_idx(data_dir, "train", "images"):
        return pad_mnist(read_idx_split(data_dir, split))
    if name == "cifar10" and _find_cifar10(data_dir) is not None:
        return read_cifar10_split(data_dir, split)
    if name == "celeba":
        folder = _celeba_folder(data_dir)
        if folder is not None:
            return read_celeba_folder(folder, split)
    raise FileNotFoundError(
        f"no {name} data found in {data_dir!r}. Expected one of: a tensorflow-datasets "
        f"data directory holding {tfds_name}/ (prepare it online with "
        f"`tfds.load('{tfds_name}', data_dir=...)` and copy it); a .npy/.npz file with "
        f"x_train/x_test arrays; {OFFLINE_FILES[name]}")


def _is_tfds_data_dir(data_dir, tfds_name) -> bool:
    """True when data_dir holds a prepared tfds dataset: NAME/[CONFIG/]VERSION/."""
    import glob

    root = os.path.join(glob.escape(data_dir), tfds_name)
    return bool(glob.glob(os.path.join(root, "*", "dataset_info.json"))
                or glob.glob(os.path.join(root, "*", "*", "dataset_info.json")))


def _preprocess_named(name, x, where):
    """The paper's preprocessing applied to arrays read from disk."""
    if name in ("mnist", "fashion_mnist"):
        return pad_mnist(x)
    if name == "celeba" and x.shape[1:3] == CELEBA_ALIGNED_HW:
        return celeba_crop_resize_batches(x, desc=f"cropping {where}")
    return x


# ---------------------------------------------------------------------------
# digits (scikit-learn) and the MNIST padding
# ---------------------------------------------------------------------------
def load_digits_images() -> np.ndarray:
    """scikit-learn's bundled 8x8 digits, upsampled to 16x16x1 in [0, 1].

    Each pixel is repeated 2x2 (no interpolation); values 0..16 become /16.
    """
    from sklearn.datasets import load_digits

    d = load_digits().images.astype("float32") / 16.0
    return np.kron(d, np.ones((2, 2), "float32"))[..., None]


def _digits(split):
    # The first fifth of the 1797 images is the test split, the rest train.
    if split == "validation":
        raise ValueError("'digits' has only the splits 'train' and 'test'")
    x = load_digits_images()
    n_test = len(x) // 5
    return x[n_test:] if split == "train" else x[:n_test]


def pad_mnist(x) -> np.ndarray:
    """Zero-pad 28x28 images by 2 on each side to 32x32 (the paper's MNIST).

    Images that are not 28x28 are returned unchanged (e.g. already padded).
    """
    if x.shape[1:3] != (28, 28):
        return x
    return np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))


# ---------------------------------------------------------------------------
# IDX files (the MNIST / Fashion-MNIST format)
# ---------------------------------------------------------------------------
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


def _find_idx(directory, split, kind):
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
        _require_exists(directory)
        raise FileNotFoundError(f"{directory!r} is not a directory of IDX files")
    path = _find_idx(directory, split, kind)
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


# ---------------------------------------------------------------------------
# CIFAR-10's own distribution (python pickles or binary records)
# ---------------------------------------------------------------------------
CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _find_cifar10(data_dir):
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
    directory, ext = _find_cifar10(data_dir)
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
    import pickle

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


# ---------------------------------------------------------------------------
# .npy / .npz arrays
# ---------------------------------------------------------------------------
_SPLIT_KEYS = {
    "train": ("x_train", "train", "images_train", "train_images"),
    "test": ("x_test", "test", "images_test", "test_images"),
    "validation": ("x_val", "x_validation", "validation", "val"),
}


def _array_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory)
                  if n.lower().endswith((".npy", ".npz")) and not n.startswith("."))


def read_array_split(path, split) -> np.ndarray:
    """The split's images from a .npy/.npz file, or a directory of them.

    A directory may hold one file per split (`train.npy`/`test.npy` or
    `x_train.npy`/`x_test.npy`) or a single .npy/.npz. In an .npz the split's
    array is `x_train`/`x_test` (Keras' mnist.npz) or `train`/`test`. A
    source holding a single array has no test split: it is returned for
    every split, with a warning. Images are (N, H, W) or (N, H, W, C),
    uint8 pixels or floats in [0, 1].
    """
    path = os.fspath(path)
    _require_exists(path)
    if os.path.isdir(path):
        files = _array_files(path)
        for key in _SPLIT_KEYS[split]:
            if f"{key}.npy" in files:
                return array_images(_load_npy(os.path.join(path, f"{key}.npy")),
                                    os.path.join(path, f"{key}.npy"))
        per_split = [f for f in files if f[:-4] in sum(_SPLIT_KEYS.values(), ())]
        if per_split:
            raise FileNotFoundError(
                f"{path!r} holds per-split arrays ({', '.join(per_split)}) but none for the "
                f"{split} split; add {split}.npy (or x_{split}.npy)")
        if len(files) != 1:
            raise FileNotFoundError(
                f"{path!r} holds {len(files)} .npy/.npz files ({', '.join(files[:5])}); "
                f"expected {split}.npy (or x_{split}.npy), or a single .npz/.npy")
        path = os.path.join(path, files[0])
    if path.lower().endswith(".npz"):
        arrays = _load_npz(path)
        for key in _SPLIT_KEYS[split]:
            if key in arrays:
                return array_images(arrays[key], f"{path}[{key}]")
        if len(arrays) == 1:
            (key, x), = arrays.items()
            return _single_array(array_images(x, f"{path}[{key}]"), path, split)
        raise ValueError(
            f"{path} has no array for the {split} split: its arrays are "
            f"{sorted(arrays)}; name them x_train and x_test (as Keras' mnist.npz)")
    if path.lower().endswith(".npy"):
        return _single_array(array_images(_load_npy(path), path), path, split)
    raise ValueError(f"{path} is neither a .npy nor a .npz file")


def array_images(x, where) -> np.ndarray:
    """Images read from an array file: uint8 (kept, not copied) or float32 in [0, 1].

    A 3-d array (N, H, W) is grayscale: the channel axis is added here, as
    part of reading the file format. Everything else is `checks.images`.
    """
    if x.ndim == 3:
        x = x[..., None]
    return checks.images(x, where, keep_uint8=True)


def _single_array(x, path, split):
    if split != "train":
        warnings.warn(f"{path} holds a single array: its {split} split is the same images "
                      "as train (no held-out data)")
    return x


def _load_npy(path):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npy array ({e}); it may be truncated "
                         "or hold Python objects; write it again with np.save") from None


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path} is a corrupt or truncated .npz file ({e}); write it "
                         "again with np.savez or copy it again") from None


# ---------------------------------------------------------------------------
# Image folders, with a cached decoded array
# ---------------------------------------------------------------------------
def list_images(folder):
    """Sorted names of the image files directly inside `folder`."""
    return sorted(n for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith("."))


def read_image_folder_split(folder, split, image_shape=None) -> np.ndarray:
    """A generic folder of images as uint8 (N, H, W, C), through the cache.

    With `train/` and `test/` sub-folders the split picks one; otherwise the
    folder is the only split (other splits: the same images, with a
    warning). With `image_shape` every image is converted to its channels
    and, if its size differs, resized bilinearly; without it the images
    keep their size and must all share it, grayscale folders giving C = 1.
    """
    sub = os.path.join(folder, split)
    if os.path.isdir(sub) and list_images(sub):
        folder = sub
    elif split != "train":
        warnings.warn(f"{folder} has no {split}/ sub-folder: its {split} split is the "
                      "same images as train (no held-out data)")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder!r} is not a folder of images")
    names = list_images(folder)
    if not names:
        raise FileNotFoundError(
            f"no images in {folder!r} (looked for {', '.join(IMAGE_EXTENSIONS)}); put the "
            "images there, or train/ and test/ sub-folders of images")
    paths = [os.path.join(folder, n) for n in names]
    return preprocess_images(paths, image_shape=image_shape, desc=folder)


def _celeba_folder(data_dir):
    """The folder of aligned CelebA images: data_dir or data_dir/img_align_celeba."""
    for folder in (os.path.join(data_dir, "img_align_celeba"), data_dir):
        if os.path.isdir(folder) and list_images(folder):
            return folder
    return None


def read_celeba_partition(folder):
    """{filename: split} from list_eval_partition.txt/.csv next to or in `folder`.

    None when there is no such file. Accepts the original text file
    ("000001.jpg 0") and Kaggle's CSV ("image_id,partition" header).
    """
    codes = {"0": "train", "1": "validation", "2": "test"}
    for directory in (folder, os.path.dirname(os.path.abspath(folder))):
        for fname in ("list_eval_partition.txt", "list_eval_partition.csv"):
            path = os.path.join(directory, fname)
            if not os.path.isfile(path):
                continue
            parts = {}
            with open(path) as f:
                for i, line in enumerate(f, 1):
                    fields = line.replace(",", " ").split()
                    if not fields:
                        continue
                    if len(fields) != 2 or fields[1] not in codes:
                        if i == 1:
                            continue  # a header
                        raise ValueError(f"{path}, line {i}: expected 'NAME PARTITION' with "
                                         f"PARTITION 0, 1 or 2, found {line.strip()!r}")
                    parts[fields[0]] = codes[fields[1]]
            return parts
    return None


def read_celeba_folder(folder, split) -> np.ndarray:
    """The paper's CelebA split from `img_align_celeba`: uint8 (N, 64, 64, 3).

    The split follows list_eval_partition.txt when present, else the official
    numbering (CELEBA_PARTITION_ENDS). Each 178x218 image is cropped to rows
    45:173, columns 25:153 and resized bilinearly to 64x64, once; the result
    is cached.
    """
    names = list_images(folder)
    partition = read_celeba_partition(folder)
    if partition is not None:
        chosen = [n for n in names if partition.get(n) == split]
    else:
        first, last = CELEBA_PARTITION_ENDS[split]
        chosen = []
        for n in names:
            stem = os.path.splitext(n)[0]
            if not stem.isdigit():
                raise ValueError(
                    f"{folder} holds {n!r}, not a CelebA name (000001.jpg ...), and no "
                    "list_eval_partition.txt: put the partition file next to the folder, or "
                    "load it as a generic 'folder' with an image_shape")
            if first <= int(stem) <= last:
                chosen.append(n)
    if not chosen:
        rule = ("listed in list_eval_partition" if partition is not None else
                "images {:06d} to {:06d}".format(*CELEBA_PARTITION_ENDS[split]))
        raise FileNotFoundError(
            f"no CelebA {split} images in {folder!r} (the {split} split is {rule}); "
            "copy the whole img_align_celeba folder there")
    paths = [os.path.join(folder, n) for n in chosen]
    return preprocess_images(paths, celeba=True, desc=f"{folder} ({split})")


def _fingerprint(paths, params) -> str:
    """Hash of the files' names, sizes and modification times, and the preprocessing.

    Any change to the folder or to the preprocessing gives a new cache file
    (never a stale one).
    """
    h = hashlib.sha256(json.dumps([_CACHE_FORMAT, params], sort_keys=True).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def preprocess_images(paths, *, image_shape=None, celeba=False, desc="images",
                      cache=True) -> np.ndarray:
    """Decode image files into one uint8 array (N, H, W, C), once, with a cache.

    celeba=True applies the paper's crop and 64x64 resize (the images must be
    178x218). Otherwise `image_shape` sets the size (bilinear resize if
    needed) and channels; without it all images must share one size. The
    array is written atomically to `cache_dir("images")` under a name that hashes the
    files and the preprocessing, and memory-mapped from there afterwards;
    the first run shows a progress bar.
    """
    params = {"celeba": bool(celeba), "image_shape": list(image_shape or [])}
    path = os.path.join(cache_dir("images"), f"images-{_fingerprint(paths, params)}.npy")
    if cache and os.path.isfile(path):
        try:
            return np.load(path, mmap_mode="r")
        except (ValueError, OSError):
            pass  # an unreadable cache file is rebuilt below

    if celeba:
        size, channels = CELEBA_ALIGNED_HW, 3
    else:
        size, channels = _folder_geometry(paths, image_shape)
    out_shape = CELEBA_SHAPE if celeba else (
        tuple(image_shape[:2]) if image_shape else size) + (channels,)

    def write(tmp):
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(paths),) + tuple(out_shape))
        _decode_into(out, paths, size, channels, celeba, out_shape, desc)
        out.flush()
        del out

    if not cache:
        out = np.empty((len(paths),) + tuple(out_shape), np.uint8)
        _decode_into(out, paths, size, channels, celeba, out_shape, desc)
        return out
    try:
        atomic_write(path, write)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC):
            raise
        raise ValueError(
            f"cannot write the decoded images to the cache {cache_dir('images')!r} ({e}); set "
            "the environment variable SPLIT_VAE_CACHE_DIR to a writable directory with "
            "room for them") from None
    return np.load(path, mmap_mode="r")


def _open_image(path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path} is not a readable image ({e}); remove or replace it") from None


def _folder_geometry(paths, image_shape):
    """((H, W), C) the decoded images get, checking that sizes agree."""
    first = _open_image(paths[0])
    w, h = first.size
    if image_shape is not None:
        channels = image_shape[2]
        if channels not in (1, 3):
            raise ValueError(f"image folders give 1 or 3 channels; image_shape is {image_shape}")
    else:
        channels = 1 if first.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    first.close()
    for p in paths[1:]:
        with _open_image(p) as im:
            other = im.size
        if other != (w, h):
            raise ValueError(
                f"images of mixed sizes: {paths[0]} is {w}x{h} but {p} is "
                f"{other[0]}x{other[1]} (width x height); bring them to one size "
                "first (the loader resizes uniform folders to image_shape, but does not "
                "guess how to crop mixed ones)")
    return (h, w), channels


def _decode_into(out, paths, size, channels, celeba, out_shape, desc):
    """Fill `out` with the decoded, cropped and resized images, chunk by chunk."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    mode = "L" if channels == 1 else "RGB"
    h, w = size

    def decode(p):
        with _open_image(p) as im:
            if im.size != (w, h):
                what = ("CelebA's aligned images are 178x218" if celeba
                        else "images of mixed sizes")
                raise ValueError(f"{p} is {im.size[0]}x{im.size[1]} (width x height); "
                                 f"{what}; expected {w}x{h}")
            try:
                a = np.asarray(im.convert(mode), dtype=np.uint8)
            except OSError as e:
                raise ValueError(f"{p} is a corrupt image ({e}); remove or replace "
                                 "it") from None
        return a[..., None] if a.ndim == 2 else a

    chunk = 512
    resize = celeba or tuple(out_shape[:2]) != (h, w)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool, \
            tqdm(total=len(paths), desc=f"decoding {desc}", unit="img") as bar:
        for start in range(0, len(paths), chunk):
            batch = np.stack(list(pool.map(decode, paths[start:start + chunk])))
            if celeba:
                batch = _celeba_crop_resize_uint8(batch)
            elif resize:
                batch = _resize_uint8(batch, out_shape[:2])
            out[start:start + len(batch)] = batch
            bar.update(len(batch))


# ---------------------------------------------------------------------------
# CelebA's crop and resize
# ---------------------------------------------------------------------------
def celeba_crop_resize(images):
    """The paper's CelebA step on a batch: crop [45:173, 25:153], bilinear 64x64.

    `images` (N, 218, 178, 3) uint8 (a tensor or an array); returns float32
    tensors in [0, 1]. Used by the tfds pipeline on every batch.
    """
    import tensorflow as tf

    top, bottom, left, right = CELEBA_CROP
    x = tf.cast(images[:, top:bottom, left:right, :], tf.float32) * (1.0 / 255.0)
    return tf.image.resize(x, CELEBA_SHAPE[:2], method="bilinear")


def _celeba_crop_resize_uint8(batch):
    x = celeba_crop_resize(batch).numpy()
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _resize_uint8(batch, hw):
    import tensorflow as tf

    x = tf.image.resize(tf.cast(batch, tf.float32), hw, method="bilinear").numpy()
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def celeba_crop_resize_batches(x, desc="CelebA", chunk=512) -> np.ndarray:
    """Crop and resize an array of aligned CelebA images to uint8 (N, 64, 64, 3)."""
    from tqdm import tqdm

    out = np.empty((len(x),) + CELEBA_SHAPE, np.uint8)
    for start in tqdm(range(0, len(x), chunk), desc=desc, unit="batch"):
        batch = np.asarray(x[start:start + chunk])
        if batch.dtype != np.uint8:
            batch = np.rint(batch * 255.0).astype(np.uint8)
        out[start:start + len(batch)] = _celeba_crop_resize_uint8(batch)
    return out


# ---------------------------------------------------------------------------
# fashion_mnist without tensorflow-datasets
# ---------------------------------------------------------------------------
def _fashion_mnist_default(split):
    """Debian's IDX files when installed, else Keras' loader (downloads)."""
    if _find_idx(DEBIAN_FASHION_MNIST, "train", "images"):
        return pad_mnist(read_idx_split(DEBIAN_FASHION_MNIST, split))
    if split == "validation":
        raise ValueError("fashion_mnist has only the splits 'train' and 'test'")
    import keras

    try:
        (x_train, _), (x_test, _) = keras.datasets.fashion_mnist.load_data()
    except Exception as e:  # network errors come in many types
        raise FileNotFoundError(
            f"Fashion-MNIST could not be downloaded ({type(e).__name__}: "
            f"{str(e)[:200]}). Offline, install Debian's dataset-fashion-mnist package "
            f"(files in {DEBIAN_FASHION_MNIST}), or copy the four IDX files "
            "(train-images-idx3-ubyte.gz, ...) to a directory and pass it as data_dir "
            "(--data-dir)") from None
    x = x_train if split == "train" else x_test
    return pad_mnist(x[..., None])


# ---------------------------------------------------------------------------
# tensorflow-datasets
# ---------------------------------------------------------------------------
class _Stream:
    """A tfds split read lazily (CelebA is too large to hold in memory)."""

    def __init__(self, builder, split, limit, description, shape):
        self.builder, self.split, self.limit = builder, split, limit
        self.description, self.shape = description, shape

    def _images(self, shuffle_files=False, seed=None):
        import tensorflow as tf
        import tensorflow_datasets as tfds

        top, bottom, left, right = CELEBA_CROP
        config = tfds.ReadConfig(shuffle_seed=seed)
        ds = self.builder.as_dataset(split=self.split, shuffle_files=shuffle_files,
                                     read_config=config)
        if self.limit is not None:
            ds = ds.take(self.limit)
        # Crop before batching (and shuffling): 128x128 instead of 218x178.
        return ds.map(lambda ex: ex["image"][top:bottom, left:right, :],
                      num_parallel_calls=tf.data.AUTOTUNE)

    def dataset(self, batch_size, shuffle, seed):
        import tensorflow as tf

        ds = self._images(shuffle_files=shuffle and self.limit is None, seed=seed)
        if shuffle:
            # 4096 crops of 49 KB: 200 MB of buffer, on top of file shuffling.
            ds = ds.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        ds = ds.map(_resize_crops, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def to_numpy(self):
        from tqdm import tqdm

        ds = self._images().batch(500).map(_resize_crops)
        parts = [b.numpy() for b in tqdm(ds, desc=self.description, unit="batch")]
        if not parts:
            return np.zeros((0,) + self.shape, "float32")
        return np.concatenate(parts)


def _resize_crops(crops):
    import tensorflow as tf

    x = tf.cast(crops, tf.float32) * (1.0 / 255.0)
    return tf.image.resize(x, CELEBA_SHAPE[:2], method="bilinear")


def _from_tfds(name, split, data_dir, limit):
    """The split through tensorflow-datasets, with the paper's preprocessing.

    mnist, fashion_mnist and cifar10 are small: read once into a uint8 array.
    celeba is a _Stream, cropped and resized batch by batch.
    """
    import tensorflow_datasets as tfds

    tfds_name = TFDS_NAMES[name]
    where = data_dir or "tensorflow-datasets' default directory (~/tensorflow_datasets)"
    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
        builder.download_and_prepare()
    except Exception as e:  # offline: network, missing modules, manual downloads...
        raise FileNotFoundError(
            f"{name} is not prepared in {where} and could not be downloaded "
            f"({type(e).__name__}: {str(e)[:200]}). Offline: prepare it on a machine with "
            f"internet (`tfds.load('{tfds_name}', data_dir=DIR)`) and copy DIR here, "
            "then pass it as data_dir (--data-dir); or pass as data_dir a .npz with "
            f"x_train/x_test, or {OFFLINE_FILES[name]}") from None
    known = getattr(builder.info, "splits", None)
    if known and split not in known:
        raise ValueError(f"{name} has no {split!r} split; its splits are {sorted(known)}")

    if name == "celeba":
        return _Stream(builder, split, limit, f"{name} ({split})", CELEBA_SHAPE)

    from tqdm import tqdm

    ds = builder.as_dataset(split=split, shuffle_files=False)
    if limit is not None:
        ds = ds.take(limit)
    ds = ds.map(lambda ex: ex["image"]).batch(10000)
    parts = [b for b in tqdm(tfds.as_numpy(ds), desc=f"reading {name} ({split})",
                             unit="batch", leave=False)]
    if not parts:
        raise ValueError(f"{name} ({split}) holds no images")
    x = np.concatenate(parts)
    return pad_mnist(x) if name in ("mnist", "fashion_mnist") else x
