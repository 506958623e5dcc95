"""`python -m split_vae convert-legacy IN.hdf5 OUT_DIR`: Keras 2 checkpoint -> preset directory."""

from __future__ import annotations

import os

from ..config import PRESETS
from .inputs import check_existing

NAME = "convert-legacy"
HELP = "convert a Keras 2 .hdf5 checkpoint of the original code to a preset directory"
DESCRIPTION = ("Read a checkpoint written by the authors' Keras 2 code "
               "(vae.save_weights('f.hdf5')), infer its configuration from the "
               "weights' shapes (or check it against --preset), and write OUT_DIR/"
               "config.json, model.weights.h5 and metadata.json, which "
               "SplitVAE.from_preset(OUT_DIR) loads. gamma is set to 1 (the file has "
               "none): call model.estimate_gamma(images) before training further.")


def add_arguments(p) -> None:
    p.add_argument("input", metavar="IN.hdf5", help="Keras 2 HDF5 checkpoint")
    p.add_argument("output", metavar="OUT_DIR", help="preset directory to write")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="configuration the file must match; its training fields (beta, "
                        "epochs, ...) are kept (default: infer everything from the file)")
    p.add_argument("--dataset", default=None,
                   help="training dataset to record in metadata.json and config.json")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a preset already in OUT_DIR")


def check_inputs(args) -> None:
    """The checkpoint to convert exists (before any import)."""
    check_existing("IN.hdf5", args.input, kind="file")


def run(args) -> int:
    # The library is imported here, not at the top: parsing and --help must not
    # wait seconds for Keras and TensorFlow.
    from ..fileio import sha256_file
    from ..model import load_legacy_h5
    from ..presets import CONFIG_FILE

    if os.path.exists(os.path.join(args.output, CONFIG_FILE)) and not args.overwrite:
        raise ValueError(
            f"{args.output} already holds a preset ({CONFIG_FILE}); pass --overwrite "
            "to replace it")
    model = load_legacy_h5(args.input, config=args.preset)
    if args.dataset is not None:
        model.config = model.config.replace(dataset=args.dataset)
    source = {"legacy_file": os.path.basename(args.input),
              "legacy_sha256": sha256_file(args.input)}
    model.save_to_preset(args.output, source=source)
    c = model.config
    print(f"{args.input} -> {args.output}")
    print(f"  image_shape={c.image_shape} latent_dim={c.latent_dim} base_dim={c.base_dim} "
          f"emb_dim={c.emb_dim} kernel_size={c.kernel_size} num_scale={c.num_scale} "
          f"block_per_scale={c.block_per_scale} depth_per_block={c.depth_per_block} "
          f"split={c.split}")
    print(f"  {model.count_params():,} parameters; source SHA-256 {source['legacy_sha256']}")
    return 0
