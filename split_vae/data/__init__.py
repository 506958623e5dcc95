"""Datasets of the Split VAE paper, and offline sources, as float32 images in [0, 1].

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738),
Section IV names the datasets; their preprocessing is the authors' code's, as
the table of datasets in docs/data.md lists it (`preprocessing`):

- mnist, fashion_mnist: 28x28 zero-padded by 2 on every side to 32x32x1;
- cifar10: 32x32x3 as is;
- celeba: the aligned 178x218 images cropped to rows 45:173 and columns 25:153
  (a 128x128 square around the face), resized bilinearly to 64x64x3.

Everything goes through one entry point, `load`, which this module (the
package's face) holds with `array_pipeline`. The paper's datasets come from
tensorflow-datasets when online (`tfds`); clusters without internet can point
`data_dir` at files they copied: IDX files (`idx`, the MNIST format),
`.npy`/`.npz` arrays (`arrays`), CIFAR-10's own batches (`cifar10`), or a
folder of images (`folders`; CelebA's `img_align_celeba`, `celeba`). An image
folder is decoded once into a cached `.npy` array (`cache`: progress bar,
atomic write).

The modules of the package import in one direction: the face imports the
sources; the sources import `cache`, `preprocessing` and `common` (and
`celeba` the image listing of `folders`), never the face. TensorFlow is
imported only inside the functions that build pipelines or resize: the data
also feeds JAX and PyTorch users, and the command line's `--help` must not
load it.
"""

from __future__ import annotations

import os

import numpy as np

from .. import checks
from .arrays import array_files, array_images, read_array_split
from .cache import preprocess_images
from .celeba import (CELEBA_PARTITION_ENDS, find_celeba_folder, read_celeba_folder,
                     read_celeba_partition)
from .cifar10 import (CIFAR10_BATCHES, CIFAR10_CLASSES, find_cifar10, read_cifar10_labelled,
                      read_cifar10_labels, read_cifar10_split)
from .common import OFFLINE_FILES, require_exists
from .digits import digits_split, load_digits_images
from .folders import IMAGE_EXTENSIONS, list_images, read_image_folder_split
from .idx import DEBIAN_FASHION_MNIST, find_idx, read_idx, read_idx_split
from .preprocessing import (CELEBA_ALIGNED_HW, CELEBA_CROP, CELEBA_SHAPE, celeba_crop_resize,
                            celeba_crop_resize_batches, pad_mnist)
from .tfds import TFDS_NAMES, TfdsStream, from_tfds, is_tfds_data_dir

__all__ = [
    "ALIASES", "CELEBA_ALIGNED_HW", "CELEBA_CROP", "CELEBA_PARTITION_ENDS", "CELEBA_SHAPE",
    "CIFAR10_BATCHES", "CIFAR10_CLASSES", "DATASETS", "DEBIAN_FASHION_MNIST", "GENERIC_SOURCES",
    "IMAGE_EXTENSIONS", "OFFLINE_FILES", "SPLITS", "TFDS_NAMES", "array_images",
    "array_pipeline", "celeba_crop_resize", "celeba_crop_resize_batches", "list_images",
    "load", "load_digits_images", "pad_mnist", "preprocess_images", "read_array_split",
    "read_celeba_folder", "read_celeba_partition", "read_cifar10_labelled",
    "read_cifar10_labels", "read_cifar10_split", "read_idx",
    "read_idx_split", "read_image_folder_split",
]

# ---------------------------------------------------------------------------
# Names
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
    if isinstance(source, TfdsStream):
        checks.matching_shape(source.shape, image_shape, source.description)
        if as_numpy:
            return source.to_numpy()
        return source.dataset(batch_size, shuffle, seed)

    x = source  # numpy array, uint8 or float32, (N, H, W, C)
    if limit is not None:
        x = x[:limit]
    checks.matching_shape(x.shape[1:], image_shape, f"dataset {name!r} ({split})")
    if as_numpy:
        return checks.unit_scale(x) if x.dtype == np.uint8 else np.array(x, "float32")
    return array_pipeline(x, batch_size=batch_size, shuffle=shuffle, seed=seed)


def array_pipeline(x, *, batch_size=100, shuffle=True, seed=None):
    """A prefetched `tf.data.Dataset` of float32 batches from an image array.

    `x` (N, H, W, C) is uint8 (scaled by 1/255 batch by batch) or float in
    [0, 1]; it may be a memory map. The dataset shuffles indices, not images,
    and gathers each batch from `x`, so the array is never copied into the
    TensorFlow graph (no 2 GB limit) and a memory-mapped cache streams from
    disk.
    """
    # TensorFlow is imported here, not at the top: see the module's docstring.
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
            batch = checks.unit_scale(tf.cast(batch, tf.float32))
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
    """A numpy array (N, H, W, C), uint8 or float in [0, 1], or a TfdsStream."""
    if name == "digits":
        if data_dir is not None:
            raise ValueError("'digits' is bundled with scikit-learn: it takes no data_dir "
                             f"(received {data_dir!r})")
        return digits_split(split)

    if name in GENERIC_SOURCES:
        if data_dir is None:
            raise ValueError(f"dataset {name!r} reads files: pass data_dir "
                             "(--data-dir on the command line)")
        require_exists(data_dir)
        if name == "idx":
            return pad_mnist(read_idx_split(data_dir, split))
        if name == "array":
            return read_array_split(data_dir, split)
        return read_image_folder_split(data_dir, split, image_shape)

    if data_dir is not None:
        return _from_data_dir(name, split, data_dir, limit)
    if name == "fashion_mnist":
        return _fashion_mnist_default(split)
    return from_tfds(name, split, None, limit)


def _from_data_dir(name, split, data_dir, limit):
    require_exists(data_dir)
    tfds_name = TFDS_NAMES[name]
    if is_tfds_data_dir(data_dir, tfds_name):
        return from_tfds(name, split, data_dir, limit)
    if os.path.isfile(data_dir) or array_files(data_dir):
        x = read_array_split(data_dir, split)
        return _preprocess_named(name, x, data_dir)
    if name in ("mnist", "fashion_mnist") and find_idx(data_dir, "train", "images"):
        return pad_mnist(read_idx_split(data_dir, split))
    if name == "cifar10" and find_cifar10(data_dir) is not None:
        return read_cifar10_split(data_dir, split)
    if name == "celeba":
        folder = find_celeba_folder(data_dir)
        if folder is not None:
            return read_celeba_folder(folder, split)
    raise FileNotFoundError(
        f"no {name} data found in {data_dir!r}. Expected one of: a tensorflow-datasets "
        f"data directory holding {tfds_name}/ (prepare it online with "
        f"`tfds.load('{tfds_name}', data_dir=...)` and copy it); a .npy/.npz file with "
        f"x_train/x_test arrays; {OFFLINE_FILES[name]}")


def _preprocess_named(name, x, where):
    """The paper's preprocessing applied to arrays read from disk."""
    if name in ("mnist", "fashion_mnist"):
        return pad_mnist(x)
    if name == "celeba" and x.shape[1:3] == CELEBA_ALIGNED_HW:
        return celeba_crop_resize_batches(x, desc=f"cropping {where}")
    return x


# ---------------------------------------------------------------------------
# fashion_mnist without tensorflow-datasets
# ---------------------------------------------------------------------------
def _fashion_mnist_default(split):
    """Debian's IDX files when installed, else Keras' loader (downloads)."""
    if find_idx(DEBIAN_FASHION_MNIST, "train", "images"):
        return pad_mnist(read_idx_split(DEBIAN_FASHION_MNIST, split))
    if split == "validation":
        raise ValueError("fashion_mnist has only the splits 'train' and 'test'")
    # Keras (and its backend) only when Debian's files are absent: importing
    # it takes seconds, and the data package must not load TensorFlow early.
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
