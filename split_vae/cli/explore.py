"""`python -m split_vae explore`: latent walks of a model, drawn as the paper's rows.

--interpolate A,B walks from test image A to test image B (their z_mean; with
--prior, from the prior samples of seeds A and B); --traverse DIMS moves each
latent variable of DIMS over --range, the others held at the origin (or at
the z_mean of test image --base). The figure goes to --out; the result (the
split kind along the path, and for a traversal the change each variable
makes) is printed on stdout.
"""

from __future__ import annotations

import logging

from .inputs import check_existing, check_model_spec

logger = logging.getLogger(__name__)

NAME = "explore"
HELP = "latent walks: interpolation and traversal, rows sigma, x1, x2, x_hat"
DESCRIPTION = ("Draw latent walks of a model, one column per step, rows sigma, x1, "
               "x2, x_hat (the paper's layout), with the split kind (syntactic or "
               "semantic) along the path. --interpolate A,B: between test images A "
               "and B (linear or spherical). --traverse DIMS: each latent variable "
               "of DIMS over --range, the others fixed; variables that change "
               "nothing (inactive) are marked in the figure and listed on stdout.")

# Above this many walks, a traversal figure draws only x_hat (unless --parts):
# four rows per variable of a 32-dimensional latent space is a 128-row figure.
MAX_FULL_WALKS = 8


def add_arguments(p) -> None:
    p.add_argument("--model", required=True,
                   help="a trained model: a published name, a preset directory, a .keras "
                        "file or a legacy .h5/.hdf5 file")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--interpolate", metavar="A,B",
                      help="two test-image indices to walk between (seeds with --prior)")
    what.add_argument("--traverse", metavar="DIMS",
                      help="latent variables to traverse: 'all' or indices like 0,3,5")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--method", default="linear", choices=["linear", "spherical"],
                   help="interpolation path (spherical: slerp, keeps the norm of prior "
                        "samples)")
    p.add_argument("--prior", action="store_true",
                   help="--interpolate A,B are seeds of z ~ N(0, I), not test images")
    p.add_argument("--range", type=float, nargs=2, default=[-3.0, 3.0],
                   metavar=("LOW", "HIGH"),
                   help="values a traversed variable takes (prior standard deviations), "
                        "e.g. --range -2 2; default -3 3")
    p.add_argument("--steps", type=int, default=9, help="columns (both ends included)")
    p.add_argument("--base", type=int, default=None, metavar="INDEX",
                   help="traverse around the z_mean of this test image (default: the "
                        "origin, the prior's mean)")
    p.add_argument("--parts", default=None,
                   help="rows to draw, from sigma,x1,x2,x_hat (sigma1..sigmaK, x1..xK, "
                        "x_hat for a model of K > 2 components; default: all; x_hat "
                        f"alone for a traversal of more than {MAX_FULL_WALKS} variables)")
    p.add_argument("--dataset", default=None,
                   help="where test images come from (default: the model's config)")
    p.add_argument("--data-dir", default=None, help="directory of offline data")


def _pair(text: str, flag: str) -> tuple:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} expects two numbers separated by a comma, received "
                         f"{text!r}") from None
    return a, b


def _test_images(args, model, needed: int):
    from .. import data

    dataset = args.dataset or model.config.dataset
    if not dataset:
        raise ValueError("the model's config names no dataset: pass --dataset")
    images = data.load(dataset, "test", as_numpy=True, limit=needed,
                       data_dir=args.data_dir, image_shape=model.image_shape)
    if len(images) < needed:
        raise ValueError(f"{dataset} has {len(images)} test images: index {needed - 1} "
                         "is out of range")
    return images, dataset


def _walks(args, model) -> tuple[list, str, str]:
    import numpy as np

    from .. import explore

    if args.interpolate:
        a, b = _pair(args.interpolate, "--interpolate")
        if args.prior:
            za, zb = (np.random.default_rng(s).standard_normal(model.latent_dim) for s in (a, b))
            label = f"prior seed {a}\n-> seed {b}"
        else:
            if min(a, b) < 0:
                raise ValueError(f"test-image indices must be >= 0, received {a},{b}")
            images, dataset = _test_images(args, model, max(a, b) + 1)
            za, zb, label = images[a], images[b], f"{dataset} test {a}\n-> test {b}"
        walk = explore.interpolate(model, za, zb, steps=args.steps, method=args.method,
                                   label=label)
        return [walk], f"{args.method} interpolation", "t={:.2f}"
    low, high = args.range
    base, where = None, "the origin"
    if args.base is not None:
        images, dataset = _test_images(args, model, args.base + 1)
        base, where = images[args.base], f"{dataset} test image {args.base}"
    walks = explore.traverse(model, args.traverse, np.linspace(low, high, args.steps),
                             base=base)
    return walks, f"traversal around {where}", "{:.3g}"


def check_inputs(args) -> None:
    """The files and directories the arguments name exist (before any import)."""
    check_model_spec(args.model)
    check_existing("--data-dir", args.data_dir)


def run(args) -> int:
    # The library is imported here, not at the top: parsing and --help must not
    # wait seconds for Keras and TensorFlow.
    from .. import explore, loader
    from ..model import SplitVAE
    from ..parts import row_names
    from ..plotting import plot_walks, walk_title

    if args.steps < 2:
        raise ValueError(f"--steps must be at least 2, received {args.steps}")
    parts = args.parts.split(",") if args.parts else None
    if parts:
        from ..export import PART_NAME

        wrong = [p for p in parts if not PART_NAME.fullmatch(p) or p == "mix"]
        if wrong:
            raise ValueError(f"--parts takes names from sigma,x1,x2,x_hat (sigma1..sigmaK, "
                             f"x1..xK for K > 2 components), received {args.parts!r}")
    model, source = loader.from_pretrained(SplitVAE, args.model)
    if parts:
        import numpy as np

        # The rows this model has: the paper's four, or those of K components.
        known = row_names(model.decode(np.zeros((1, model.latent_dim), "float32")))
        if set(parts) - set(known):
            raise ValueError(f"--parts takes names from {','.join(known)} for this model, "
                             f"received {args.parts!r}")
    walks, what, step_format = _walks(args, model)
    if parts is None and len(walks) > MAX_FULL_WALKS:
        parts = ["x_hat"]
        logger.info("%d variables: drawing x_hat alone (--parts sigma,x1,x2,x_hat for "
                    "every row)", len(walks))
    split = explore.overall_split(walks)
    plot_walks(walks, args.out, parts=parts, title=walk_title(what, split),
               step_format=step_format)
    logger.info("%s of %s -> %s", what, source, args.out)
    if split is not None:
        print(f"split kind along the path: {split['kind']} (high-frequency share of "
              f"sigma {split['high_frequency_fraction']:.3f})")
    if args.traverse:
        print(explore.format_traversal(walks))
    return 0
