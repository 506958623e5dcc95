"""`python -m split_vae evaluate`: the paper's evaluation of one model.

Writes OUT/report.json (Fréchet and kernel distances under "fd" and "kd",
GEN and GMM, for x_hat, x1, x2 and mix, real, reconstruction, latent
statistics, parameters, the protocol, the extractor chosen and why) and the
figures
OUT/generated.png (rows sigma, x1, x2, x_hat), OUT/samples_gen.png,
OUT/samples_gmm.png (square grids of x_hat) and OUT/sigma.png (sigma maps).
"""

from __future__ import annotations

import logging
import os

from .arguments import add_model_argument
from .inputs import check_existing, check_extractor_path, check_model_spec


logger = logging.getLogger(__name__)

NAME = "evaluate"
HELP = "FID and KID (GEN, GMM; x_hat, x1, x2, mix), latent statistics, figures"
DESCRIPTION = ("Evaluate a model as the paper's tables do: FID of samples from "
               "the prior (GEN) and from a Gaussian mixture fitted on z_mean of "
               "the test images (GMM), for x_hat, x1, x2 and mix; FID of test "
               "against training images (real) and of reconstructions; "
               "inactive latent variables; KID beside every FID. With "
               "--extractor inception the numbers are Keras InceptionV3 FIDs "
               "(the paper's protocol), NOT comparable with pytorch-fid, "
               "clean-fid or TTUR; --extractor fid-inception gives the "
               "literature's (pytorch-fid's protocol). The default, auto, is "
               "the paper's protocol where InceptionV3's ImageNet weights are "
               "in Keras's cache (never downloading them), and otherwise says so and measures "
               "offline (fd-fmnist on 32x32x1 images, random-conv on others): "
               "not FIDs, and the report says which.")


def add_arguments(p) -> None:
    add_model_argument(p)
    p.add_argument("--dataset", default=None,
                   help="dataset for split_vae.data.load (default: the model's config)")
    p.add_argument("--data-dir", default=None, help="directory of offline data")
    p.add_argument("--samples", type=int, default=None,
                   help="N: generated images per source, and the first N test "
                        "(reference) and N training (real) images (default: the "
                        "paper's 10,000, or all the test images when there are fewer)")
    p.add_argument("--gmm-components", type=int, default=None,
                   help="mixture components (default: the model's config)")
    p.add_argument("--extractor", default="auto",
                   help="'auto' (default: 'inception' when its weights are in Keras's "
                        "cache (it never downloads), else, said on stderr, 'fd-fmnist' "
                        "for 32x32x1 images and 'random-conv' for others), "
                        "'inception' (ImageNet weights, downloaded once: the paper's FID; fails offline), "
                        "'fid-inception' (pytorch-fid's network and weights, cached or "
                        "downloaded: the literature's FID) or the path of its .pth file, "
                        "'inception-random' (untrained InceptionV3: not an FID), "
                        "'random-conv' (a small untrained network: not an FID), "
                        "'fd-fmnist' (our Fashion-MNIST classifier, shipped: FD-FMNIST, "
                        "not an FID; 32x32x1 images) or the path of its .weights.h5, or "
                        "the path of a .keras model mapping images to vectors")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--cache-dir", default=None,
                   help="reference statistics cache (default: the fid folder of "
                        "$SPLIT_VAE_CACHE_DIR or ~/.cache/split_vae)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the reference statistics, write no cache")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and the GMM fit")
    p.add_argument("--batch-size", type=int, default=50,
                   help="images per extractor forward pass")
    p.add_argument("--grid", type=int, default=10,
                   help="columns of generated.png and side of the square grids")


def check_inputs(args) -> None:
    """The files and directories the arguments name exist (before any import)."""
    check_model_spec(args.model)
    check_existing("--data-dir", args.data_dir)
    check_extractor_path(args.extractor)


def run(args) -> int:
    # The library is imported here, not at the top: parsing and --help must not
    # wait seconds for Keras and TensorFlow.
    import keras

    from .. import data, loader
    from ..evaluation import PAPER_SAMPLES, default_samples, evaluate_model, format_report, \
        write_report
    from ..metrics import get_extractor
    from ..metrics.extractors import AUTO
    from ..model import SplitVAE
    from ..plotting import write_evaluation_figures

    if args.samples is not None and args.samples < 2:
        raise ValueError(f"--samples must be at least 2, received {args.samples}")
    if args.gmm_components is not None and args.gmm_components < 1:
        raise ValueError(f"--gmm-components must be positive, received {args.gmm_components}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, received {args.batch_size}")

    # A named extractor first: missing weights fail before anything else;
    # "auto" chooses by the model's image shape, so after the model. Seeded
    # before each: an extractor or an untrained preset drawn at random is then
    # reproducible, and neither draw moves the other.
    keras.utils.set_random_seed(args.seed)
    extractor = (None if args.extractor == AUTO
                 else get_extractor(args.extractor, batch_size=args.batch_size))
    keras.utils.set_random_seed(args.seed)
    model, source = loader.for_evaluation(SplitVAE, args.model)
    if extractor is None:
        keras.utils.set_random_seed(args.seed)
        extractor = get_extractor(AUTO, batch_size=args.batch_size,
                                  image_shape=model.image_shape)
    dataset = args.dataset or model.config.dataset
    if not dataset:
        raise ValueError("the model's config names no dataset: pass --dataset")
    test = data.load(dataset, "test", as_numpy=True, limit=args.samples or PAPER_SAMPLES,
                     data_dir=args.data_dir, image_shape=model.image_shape)
    train = data.load(dataset, "train", as_numpy=True, limit=len(test),
                      data_dir=args.data_dir, image_shape=model.image_shape)
    n_samples = args.samples
    if n_samples is None:
        n_samples = default_samples(len(test))
        samples_choice = (f"default: the paper's {PAPER_SAMPLES:,}" if n_samples == PAPER_SAMPLES
                          else f"default: the {len(test):,} {dataset} test images, fewer "
                               f"than the paper's {PAPER_SAMPLES:,}")
        logger.info("samples per source: %d (%s; --samples N to choose)", n_samples,
                    samples_choice)
    else:
        samples_choice = "--samples"
        if len(test) < n_samples:
            logger.info("%s has %d test images: using them all as reference (asked for %d)",
                        dataset, len(test), n_samples)
    logger.info("evaluating %s on %s: %d reference images, %d samples per source, "
                "extractor %s", source, dataset, len(test), n_samples, extractor.name)

    report, samples = evaluate_model(
        model, test, train, extractor=extractor, n_samples=n_samples,
        gmm_components=args.gmm_components, seed=args.seed, cache_dir=args.cache_dir,
        use_cache=not args.no_cache)
    report["model"]["source"] = source
    report["protocol"]["dataset"] = dataset
    report["protocol"]["reference"] = f"first {len(test)} {dataset} test images"
    report["protocol"]["n_samples_choice"] = samples_choice

    os.makedirs(args.out, exist_ok=True)
    write_report(report, os.path.join(args.out, "report.json"))
    write_evaluation_figures(model, samples, args.out, side=args.grid, dataset=dataset)
    # The result, on stdout: the numbers, named by their protocol, and the note
    # on what they can be compared with (once, in the table's last line).
    print(format_report(report))
    logger.info("wrote %s/report.json and figures", args.out)
    return 0
