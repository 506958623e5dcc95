"""CelebA from its aligned images (`img_align_celeba/`), the paper's 64x64 faces.

Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015
(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html). The split follows the
official partition; each image gets the paper's crop and resize
(`preprocessing.celeba_crop_resize`) once, through the image cache.

Imports numpy, `cache` and `folders` (its image listing).
"""

from __future__ import annotations

import os

import numpy as np

from .cache import preprocess_images
from .folders import list_images

# The official partition (list_eval_partition.txt) numbers the images
# 000001.jpg ... 202599.jpg: the first 162,770 are train, the next 19,867
# validation, the last 19,962 test. Used when the partition file is absent.
CELEBA_PARTITION_ENDS = {"train": (1, 162770), "validation": (162771, 182637),
                         "test": (182638, 202599)}


def find_celeba_folder(data_dir):
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
