"""What the data sources share: the existence check of data_dir and the offline hints.

Imports the standard library alone.
"""

from __future__ import annotations

import os

# What to copy for each of the paper's datasets on a machine without internet
# (quoted by the error messages).
OFFLINE_FILES = {
    "mnist": "IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz])",
    "fashion_mnist": "IDX files (train-images-idx3-ubyte[.gz], "
                     "t10k-images-idx3-ubyte[.gz])",
    "cifar10": "the CIFAR-10 batches of the python or binary version "
               "(cifar-10-batches-py/ or cifar-10-batches-bin/)",
    "celeba": "the aligned images (img_align_celeba/000001.jpg ..., with "
              "list_eval_partition.txt beside the folder if you have it)",
}


def require_exists(path) -> None:
    """FileNotFoundError naming `path` and what to put there, if it does not exist."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"data_dir {path!r} does not exist; check the path (--data-dir), or copy "
            "the dataset's files there (IDX files, .npy/.npz arrays or images)")
