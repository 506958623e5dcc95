"""Samples out, for any tool: numbered PNG folders and one .npz.

Other tools measure generated images from files: pytorch-fid reads a folder
of PNG files, torch-fidelity and clean-fid too. `draw_samples` draws what
`evaluation.evaluate_model` draws (Asperti, Bugo, Filippini, IEEE Access 2022,
https://arxiv.org/abs/2202.02738, Section IV: GEN from the prior, GMM from a
mixture fitted on z_mean of the test images) and `write_samples` writes them:

    OUT/x_hat/00000.png, 00001.png, ...   one folder per part, uint8 PNG
    OUT/samples.npz                       an array per part (float32 in [0, 1]), and z

The parts are sigma, x1, x2, x_hat and mix (the paper's: x1 for the first
half of the samples, x2 for the second); a model of K > 2 components has
sigma1..sigmaK and x1..xK instead of sigma, x1, x2, and its mix takes part k
for the k-th of K equal slices of the samples (`parts.mix_images`). Pixels are the [0, 1] values times
255, rounded to the nearest and clipped, as every uint8 conversion here.

Imports numpy, tqdm, `split_vae.checks`, `split_vae.evaluation` (the "mix"),
`split_vae.fileio` and `split_vae.sampling`.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from tqdm.auto import tqdm

import re

from . import checks, sampling
from .evaluation import mix_images
from .parts import components_of, images_of
from .fileio import atomic_write

logger = logging.getLogger(__name__)

PARTS = ("x_hat", "x1", "x2", "sigma", "mix")  # the paper's model's
# Any model's: x_hat, mix, sigma, and x<k> / sigma<k> for its K components.
PART_NAME = re.compile(r"x_hat|mix|sigma|x[1-9][0-9]*|sigma[1-9][0-9]*")
SOURCES = ("prior", "gmm")
NPZ_FILE = "samples.npz"


def parse_parts(text: str) -> tuple:
    """"x_hat,x1" -> ("x_hat", "x1"); ValueError naming an unknown or repeated part."""
    parts = tuple(p.strip() for p in str(text).split(",") if p.strip())
    unknown = [p for p in parts if not PART_NAME.fullmatch(p)]
    if not parts or unknown or len(set(parts)) != len(parts):
        raise ValueError(f"parts must be distinct names from {','.join(PARTS)} (and "
                         f"x3, sigma1, ... for a model of K > 2 components), received "
                         f"{text!r}")
    return parts


def draw_samples(model, n: int, source: str = "prior", seed: int = 0, test_images=None,
                 gmm_components: int | None = None, batch_size: int = 256) -> dict:
    """n decoded samples, as `evaluate_model` draws them with the same seed.

    source "prior": `model.generate(n, seed)`. "gmm": a mixture fitted on
    z_mean of `test_images` (`sampling.fit_gmm`, `gmm_components` or the
    model's), then `sampling.gmm_generate` with the seed. Returns a dict of
    numpy arrays: x_hat, z, and for a split model its maps and parts
    (sigma, x1, x2 or sigma1..sigmaK, x1..xK) and mix.
    """
    n = checks.integer(n, "n")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, received {source!r}")
    if source == "prior":
        out = model.generate(n, seed=seed, batch_size=batch_size, progress=True,
                             desc="decode prior")
    else:
        if test_images is None:
            raise ValueError("source 'gmm' fits the mixture on test images: pass them")
        test_images = checks.images(test_images, "test images", image_shape=model.image_shape)
        # evaluate's GMM column: fitted on z_mean with the seed, drawn with it.
        out = sampling.gmm_generate(model, test_images, n=n, n_components=gmm_components,
                                    seed=seed, batch_size=batch_size)
        out.pop("gmm")
    if components_of(out):
        out["mix"] = mix_images(*images_of(out))
    return {k: np.asarray(v) for k, v in out.items()}


def _png_writer(image: np.ndarray):
    from PIL import Image

    pixels = checks.to_pixels(image)
    pil = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    return lambda tmp: pil.save(tmp, format="PNG")


def write_samples(samples: dict, parts, out_dir: str, overwrite: bool = False,
                  progress: bool = True) -> dict:
    """OUT/<part>/<index:05d>.png for each part, and OUT/samples.npz; the paths.

    A part folder that already holds PNG files is refused (ValueError) unless
    `overwrite`, which removes them first: a tool reading the folder must see
    these samples and no others. Every file is written atomically.
    """
    parts = parse_parts(",".join(parts)) if not isinstance(parts, str) else parse_parts(parts)
    missing = [p for p in parts if p not in samples]
    if missing:
        have = ",".join(k for k in samples if k != "z")
        raise ValueError(f"the samples have no {', '.join(missing)} (this model's are {have}; "
                         "a vanilla model has x_hat only)")
    folders = {p: os.path.join(out_dir, p) for p in parts}
    for part, folder in folders.items():
        old = sorted(f for f in os.listdir(folder) if f.endswith(".png")) \
            if os.path.isdir(folder) else []
        if old and not overwrite:
            raise ValueError(f"{folder} already holds {len(old)} PNG files; choose another "
                             "--out or pass --overwrite (a folder must hold one set of "
                             "samples)")
    for folder in folders.values():
        if os.path.isdir(folder):
            for f in os.listdir(folder):
                if f.endswith(".png"):
                    os.remove(os.path.join(folder, f))
        os.makedirs(folder, exist_ok=True)
    n = len(samples[parts[0]])
    with tqdm(total=n * len(parts), desc="writing PNG files", unit="img",
              disable=not progress) as bar:
        for part in parts:
            for i, image in enumerate(samples[part]):
                atomic_write(os.path.join(folders[part], f"{i:05d}.png"), _png_writer(image))
                bar.update(1)
    npz = os.path.join(out_dir, NPZ_FILE)
    arrays = {p: np.asarray(samples[p], np.float32) for p in parts}
    if "z" in samples:
        arrays["z"] = np.asarray(samples["z"], np.float32)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(npz, write)
    return {"folders": folders, "npz": npz, "n": n}
