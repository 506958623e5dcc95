"""The paper's datasets through tensorflow-datasets (https://www.tensorflow.org/datasets).

mnist, fashion_mnist and cifar10 are small: read once into a uint8 array.
celeba is too large to hold in memory: a `TfdsStream` reads it lazily and
applies the paper's crop and resize (`preprocessing.celeba_crop_resize`) to
each image.

Imports numpy, tqdm, `common` and `preprocessing`. tensorflow and
tensorflow_datasets are imported inside the functions: the data package also
feeds JAX and PyTorch users, and `python -m split_vae --help` must not load
TensorFlow.
"""

from __future__ import annotations

import glob
import os

import numpy as np
from tqdm import tqdm

from .common import OFFLINE_FILES
from .preprocessing import CELEBA_SHAPE, celeba_crop_resize, pad_mnist

# tensorflow-datasets names of the paper's datasets.
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist",
              "cifar10": "cifar10", "celeba": "celeb_a"}


class TfdsStream:
    """A tfds split read lazily, each image cropped and resized as the paper's CelebA."""

    def __init__(self, builder, split, limit, description, shape):
        self.builder, self.split, self.limit = builder, split, limit
        self.description, self.shape = description, shape

    def _images(self, shuffle_files=False, seed=None):
        import tensorflow as tf  # lazily: see the module's docstring
        import tensorflow_datasets as tfds

        config = tfds.ReadConfig(shuffle_seed=seed)
        ds = self.builder.as_dataset(split=self.split, shuffle_files=shuffle_files,
                                     read_config=config)
        if self.limit is not None:
            ds = ds.take(self.limit)
        # Crop and resize before shuffling: a 64x64 float32 face holds as
        # many bytes as the 128x128 uint8 crop, a third of the aligned image.
        return ds.map(lambda ex: celeba_crop_resize(ex["image"]),
                      num_parallel_calls=tf.data.AUTOTUNE)

    def dataset(self, batch_size, shuffle, seed):
        """A prefetched `tf.data.Dataset` of float32 batches (batch, 64, 64, 3)."""
        import tensorflow as tf  # lazily: see the module's docstring

        ds = self._images(shuffle_files=shuffle and self.limit is None, seed=seed)
        if shuffle:
            # 4096 faces of 49 KB: 200 MB of buffer, on top of file shuffling.
            ds = ds.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def to_numpy(self):
        """The whole split as one float32 array (N, 64, 64, 3), in order."""
        ds = self._images().batch(500)
        parts = [b.numpy() for b in tqdm(ds, desc=self.description, unit="batch")]
        if not parts:
            return np.zeros((0,) + self.shape, "float32")
        return np.concatenate(parts)


def is_tfds_data_dir(data_dir, tfds_name) -> bool:
    """True when data_dir holds a prepared tfds dataset: NAME/[CONFIG/]VERSION/."""
    root = os.path.join(glob.escape(data_dir), tfds_name)
    return bool(glob.glob(os.path.join(root, "*", "dataset_info.json"))
                or glob.glob(os.path.join(root, "*", "*", "dataset_info.json")))


def from_tfds(name, split, data_dir, limit):
    """The split through tensorflow-datasets, with the paper's preprocessing.

    A uint8 array (N, H, W, C) for mnist, fashion_mnist (padded to 32x32)
    and cifar10; a `TfdsStream` for celeba.
    """
    import tensorflow_datasets as tfds  # lazily: see the module's docstring

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
        return TfdsStream(builder, split, limit, f"{name} ({split})", CELEBA_SHAPE)

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
