"""The decoded-image cache: image files decoded once into a memory-mapped array.

Decoding (and, for CelebA, cropping and resizing) 200,000 JPEG files takes
minutes; the result is written once, atomically, as a uint8 `.npy` under
`paths.cache_dir("images")` (the cache root is `$SPLIT_VAE_CACHE_DIR`, see
docs/data.md), named by a hash of the files and of the preprocessing, and
memory-mapped from there on every later load.

Imports numpy, PIL, tqdm, `split_vae.fileio`, `split_vae.paths` and
`preprocessing`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..fileio import atomic_write
from ..paths import cache_dir
from .preprocessing import (CELEBA_ALIGNED_HW, CELEBA_SHAPE, celeba_crop_resize_uint8,
                            resize_uint8)

_CACHE_FORMAT = 1  # bump when the cached preprocessing changes


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
                batch = celeba_crop_resize_uint8(batch)
            elif resize:
                batch = resize_uint8(batch, out_shape[:2])
            out[start:start + len(batch)] = batch
            bar.update(len(batch))
