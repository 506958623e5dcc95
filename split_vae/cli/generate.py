"""`python -m split_vae generate`: samples written as PNG folders and one .npz.

OUT/<part>/00000.png ... (uint8) for each of --parts, and OUT/samples.npz;
the draw is `evaluate`'s with the same --seed (--source prior: the GEN
column, --source gmm: the GMM column, fitted on the first --n test images).
pytorch-fid reads such a folder as it is:

    python -m pytorch_fid OUT_A/x_hat OUT_B/x_hat
"""

from __future__ import annotations

import logging

from .arguments import add_model_argument
from .inputs import check_existing, check_model_spec

logger = logging.getLogger(__name__)

NAME = "generate"
HELP = "samples as numbered PNG files per part and one .npz, for any FID tool"
DESCRIPTION = ("Draw N samples from the prior (--source prior, the GEN column) or "
               "from a Gaussian mixture fitted on z_mean of the first N test images "
               "(--source gmm, the GMM column), as `evaluate` draws them with the "
               "same --seed, and write OUT/<part>/00000.png ... (uint8) for each part "
               "and OUT/samples.npz (float32 arrays). pytorch-fid, torch-fidelity "
               "and clean-fid read the folders as they are.")


def add_arguments(p) -> None:
    add_model_argument(p)
    p.add_argument("--n", type=int, required=True, help="samples to draw")
    p.add_argument("--source", default="prior", choices=["prior", "gmm"],
                   help="prior: z ~ N(0, I); gmm: the mixture fitted on z_mean of the "
                        "first N test images")
    p.add_argument("--parts", default="x_hat",
                   help="comma-separated, from x_hat,x1,x2,sigma,mix (a model of K > 2 "
                        "components: x1..xK and sigma1..sigmaK)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw (and the fit)")
    p.add_argument("--gmm-components", type=int, default=None,
                   help="mixture components (default: the model's config)")
    p.add_argument("--dataset", default=None,
                   help="test images of --source gmm (default: the model's config)")
    p.add_argument("--data-dir", default=None, help="directory of offline data")
    p.add_argument("--batch-size", type=int, default=256, help="images per decoder pass")
    p.add_argument("--overwrite", action="store_true",
                   help="replace PNG files already in the part folders")


def check_inputs(args) -> None:
    """The files and directories the arguments name exist (before any import)."""
    check_model_spec(args.model)
    check_existing("--data-dir", args.data_dir)


def run(args) -> int:
    # The library is imported here, not at the top: parsing and --help must not
    # wait seconds for Keras and TensorFlow.
    import keras

    from .. import checks, data, export, loader
    from ..model import SplitVAE

    for flag, value in (("--n", args.n), ("--batch-size", args.batch_size),
                        ("--gmm-components", args.gmm_components)):
        if value is not None:
            checks.integer(value, flag)
    parts = export.parse_parts(args.parts)
    # Seeded before the model exists, as `evaluate` does: an untrained preset is
    # then the same network as evaluate's with this seed.
    keras.utils.set_random_seed(args.seed)
    model, source = loader.for_evaluation(SplitVAE, args.model)
    test = None
    if args.source == "gmm":
        dataset = args.dataset or model.config.dataset
        if not dataset:
            raise ValueError("the model's config names no dataset: pass --dataset")
        test = data.load(dataset, "test", as_numpy=True, limit=args.n,
                         data_dir=args.data_dir, image_shape=model.image_shape)
    samples = export.draw_samples(model, args.n, args.source, seed=args.seed,
                                  test_images=test, gmm_components=args.gmm_components,
                                  batch_size=args.batch_size)
    written = export.write_samples(samples, parts, args.out, overwrite=args.overwrite)
    logger.info("%d samples of %s (%s, seed %d) -> %s", args.n, source, args.source,
                args.seed, args.out)
    for part, folder in written["folders"].items():
        print(f"{part}: {folder} ({written['n']} PNG files)")
    print(f"arrays: {written['npz']}")
    return 0
