"""`python -m split_vae train`: train a preset, checkpoint every epoch, draw figures."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys

from ..config import PRECISIONS, PRESETS, SplitVAEConfig, get_preset
from ..watchdog import FACTOR, FLOOR, SAMPLE
from .inputs import check_existing

# The default start-up bound, without importing the library (see run).
STARTUP_TIMEOUT = 300.0

logger = logging.getLogger(__name__)

NAME = "train"
HELP = "train a Split VAE and write checkpoints, history and figures"
DESCRIPTION = ("Train a Split VAE preset with the paper's loss and KL balance. "
               "Writes OUT/checkpoint.keras after every epoch (atomically, and "
               "only with a finite loss; the one before is kept as "
               "OUT/checkpoint.prev.keras, which a resume falls back to when the "
               "newest is damaged), OUT/history.csv (and .json), OUT/config.json, "
               "OUT/model.keras at the end, and the figures OUT/generated.png "
               "and OUT/reconstructed.png (rows: sigma, x1, x2, x_hat). Run it "
               "again with the same --out to resume where it stopped.")


def add_arguments(p) -> None:
    p.add_argument("--preset", default="digits", choices=sorted(PRESETS),
                   help="hyperparameters to start from")
    p.add_argument("--dataset", default=None,
                   help="mnist, fashion_mnist, cifar10, celeba, digits, or idx / array / "
                        "folder with --data-dir (default: the preset's)")
    p.add_argument("--data-dir", default=None,
                   help="offline data: a tfds data dir, IDX files, .npy/.npz, CIFAR-10 "
                        "batches, img_align_celeba or an image folder")
    p.add_argument("--out", default=None, help="output directory (default: runs/PRESET)")
    p.add_argument("--epochs", type=int, default=None,
                   help="total epochs (default: the preset's; the paper's for paper presets)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--learning-rate", type=float, default=None, help="default: the preset's")
    p.add_argument("--beta", type=float, default=None, help="KL weight; default: the preset's")
    p.add_argument("--latent-dim", type=int, default=None, help="default: the preset's")
    p.add_argument("--vanilla", action="store_true",
                   help="the paper's ablation: last layer with C channels, no split")
    add_component_arguments(p)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any SplitVAEConfig field, e.g. --set base_dim=32 "
                        "(repeatable; VALUE is read as JSON when it parses)")
    p.add_argument("--limit", type=int, default=None,
                   help="train on the first N training images only (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, shuffling, sampling")
    p.add_argument("--no-resume", action="store_true",
                   help="start afresh even if OUT/checkpoint.keras exists (it is overwritten)")
    p.add_argument("--no-balance", action="store_true",
                   help="keep gamma fixed (no GammaBalance callback)")
    p.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="float32 (default), mixed_bfloat16 (CPUs with AVX512-BF16/AMX, "
                        "recent GPUs) or mixed_float16 (GPUs, with loss scaling); the "
                        "loss and gamma stay float32")
    p.add_argument("--distribute", action="store_true",
                   help="data parallel over every device: tf.distribute.MirroredStrategy "
                        "(MultiWorkerMirroredStrategy when TF_CONFIG names several "
                        "workers) under TensorFlow, keras.distribution.DataParallel "
                        "under JAX; the batch size is the global one")
    p.add_argument("--startup-timeout", type=float, default=STARTUP_TIMEOUT, metavar="SECONDS",
                   help="several machines (TF_CONFIG): how long to wait for every worker to "
                        "come up before stopping")
    p.add_argument("--step-timeout", type=step_timeout, default=None, metavar="SECONDS",
                   help="several machines (TF_CONFIG): the longest a training step may take "
                        "before every live worker stops (exit status 4, naming the last "
                        "complete checkpoint), as when a worker is lost; a frozen worker "
                        f"would otherwise hang the job. Default: {FACTOR:g} x the slowest of "
                        f"the {SAMPLE} steps after the first, at least {FLOOR:g} s; the first "
                        "step (compilation) and epoch ends are not bounded; 0: no bound")
    p.add_argument("--samples", type=int, default=10, help="columns of the figures")
    p.add_argument("--validation", default="none", metavar="test|FRACTION|none",
                   help="held-out images whose loss and MSE are logged each epoch "
                        "(val_loss, val_mse): 'test' (the dataset's test split), a "
                        "fraction such as 0.1 (the end of the training split, kept out "
                        "of training; loads the split into memory) or 'none'")
    p.add_argument("--grid-every", type=int, default=None, metavar="N",
                   help="every N epochs, draw OUT/grids/epoch_EEEE_generated.png (fixed "
                        "latent codes) and ..._reconstructed.png (fixed test images), "
                        "rows sigma, x1, x2, x_hat (default: off; every epoch with "
                        "--tensorboard)")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="TensorBoard logs: loss, mse, kl, gamma, kl_weight (beta*gamma) "
                        "per epoch and the grids as images (tensorboard --logdir DIR)")
    p.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2],
                   help="Keras verbosity (default: progress bar on a terminal, a line "
                        "per epoch otherwise)")


def add_component_arguments(p) -> None:
    """--components, --specialized, --map-entropy (train and reproduce)."""
    p.add_argument("--components", type=int, default=None, metavar="K",
                   help="images the decoder composes with softmax maps (default 2: the "
                        "paper's sigma, x1, x2); docs/components.md")
    p.add_argument("--specialized", action="store_true",
                   help="each component gets its own last scale block and output layer")
    p.add_argument("--map-entropy", type=float, default=None, metavar="WEIGHT",
                   help="weight of the maps' entropy in the loss (default 0, the paper's; "
                        "> 0 pushes each pixel to one component, < 0 to an even blend)")


def component_changes(args) -> dict:
    """The SplitVAEConfig fields of --components, --specialized, --map-entropy."""
    changes = {}
    if args.components is not None:
        changes["components"] = args.components
    if args.specialized:
        changes["specialized"] = True
    if args.map_entropy is not None:
        changes["map_entropy"] = args.map_entropy
    return changes


def step_timeout(text: str) -> float:
    """--step-timeout: seconds >= 0 (0: no bound); argparse names the option otherwise."""
    import argparse
    import math

    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds >= 0 (0: no bound), received {text!r}")
    return seconds


def build_config(args) -> SplitVAEConfig:
    """The preset, with the command line's overrides applied and checked."""
    cfg = get_preset(args.preset)
    changes = {}
    for flag, field in (("epochs", "epochs"), ("batch_size", "batch_size"),
                        ("learning_rate", "learning_rate"), ("beta", "beta"),
                        ("latent_dim", "latent_dim")):
        value = getattr(args, flag)
        if value is not None:
            changes[field] = value
    changes.update(component_changes(args))
    if args.vanilla:
        if set(component_changes(args)):
            raise ValueError("--vanilla has no components: --components, --specialized "
                             "and --map-entropy describe a split model")
        changes["split"] = False
    if args.dataset:
        changes["dataset"] = args.dataset
    if args.precision:
        changes["precision"] = args.precision
    fields = {f.name for f in dataclasses.fields(SplitVAEConfig)}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(
                f"--set expects FIELD=VALUE with FIELD one of {sorted(fields)}, "
                f"received {item!r}")
        try:
            changes[key] = json.loads(raw)
        except json.JSONDecodeError:
            changes[key] = raw
    return cfg.replace(**changes)


def check_inputs(args) -> None:
    """The files and directories the arguments name exist (before any import)."""
    check_existing("--data-dir", args.data_dir)


def run(args) -> int:
    # The library is imported here, not at the top: parsing and --help must not
    # wait seconds for Keras and TensorFlow.
    from .. import distribute
    from ..precision import check_device_supports

    config = build_config(args)
    # A precision this machine cannot run is refused before anything is written.
    check_device_supports(config.precision)
    # Devices before data: a wrong --distribute or TF_CONFIG fails at once.
    try:
        scope, devices = (distribute.data_parallel(config.batch_size, args.startup_timeout)
                          if args.distribute else (contextlib.nullcontext, None))
    except distribute.ClusterError as e:
        logger.error("%s", e)
        return distribute.EXIT_CLUSTER
    if devices:
        logger.info("data parallel: %s", devices)
    out = args.out or os.path.join("runs", args.preset)
    # Every worker reads the run's directory (to resume from the chief's
    # checkpoint); only the chief writes there (distribute.output_dir).
    write = distribute.output_dir(out) if args.distribute else out
    os.makedirs(write, exist_ok=True)
    several = bool(devices) and _workers(distribute) > 1
    try:
        return _train(args, config, scope, out, write,
                      _step_timeout(args, distribute, out, write) if several else None)
    except distribute.lost_worker_errors() as e:
        if not several or not distribute.is_lost_worker(e):
            raise
        message = distribute.lost_worker_message(
            e, _last_checkpoint(os.path.join(out, "checkpoint.keras")))
        import keras

        if keras.backend.backend() == "jax":
            # A normal exit would leave JAX's runtime waiting, at its shutdown
            # barrier, for the lost process, then end this one with SIGABRT.
            from ..watchdog import end_process

            end_process(message, distribute.EXIT_CLUSTER, _scratch_cleanup(out, write))
        logger.error("%s", message)
        return distribute.EXIT_CLUSTER


def _workers(distribute) -> int:
    cluster = distribute.read_tf_config()
    return 1 if cluster is None else cluster.num_workers


def _scratch_cleanup(out, write) -> list:
    # The scratch directory of a worker other than the chief, which os._exit
    # would leave behind (the atexit handler that removes it does not run).
    return [] if write == out else [lambda: shutil.rmtree(write, ignore_errors=True)]


def _step_timeout(args, distribute, out, write):
    """The StepTimeout callback of a run on several workers (None elsewhere, or with 0)."""
    from .. import watchdog

    if args.step_timeout == 0:
        return None
    bound = watchdog.StepBound(args.step_timeout)
    ckpt = os.path.join(out, "checkpoint.keras")

    def on_expire(seconds):
        watchdog.end_process(watchdog.timeout_message(seconds, _last_checkpoint(ckpt)),
                             distribute.EXIT_CLUSTER, _scratch_cleanup(out, write))

    logger.info("step timeout: %s", f"{args.step_timeout:g}s" if args.step_timeout else
                f"{FACTOR:g} x the slowest of the {SAMPLE} steps after the first, "
                f"at least {FLOOR:g}s")
    return watchdog.step_timeout_callback(bound, on_expire)


def _train(args, config, scope, out, write, step_timeout=None) -> int:
    import keras

    from .. import data
    from ..checkpoint import resume_or_create
    from ..distribute import check_same_on_workers
    from ..fileio import atomic_write, atomic_write_text
    from ..plotting import write_training_figures
    from ..training import AtomicCheckpoint, GammaBalance, HistoryWriter, StopOnNonFinite

    dataset = config.dataset or args.preset
    ckpt = os.path.join(out, "checkpoint.keras")
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)

    # Data first: a wrong path or name fails before any model is built. On
    # several workers each one reads the same shuffled batches (same seed) and
    # tf.distribute gives each its share of every batch.
    train, validation = load_training_data(args, config, dataset)
    test = data.load(dataset, "test", data_dir=args.data_dir, as_numpy=True,
                     limit=max(args.samples, 1), image_shape=config.image_shape)

    keras.utils.set_random_seed(args.seed)
    with scope():  # several devices: the model is built (or loaded) on all of them
        model, initial_epoch = resume_or_create(config, ckpt, seed=args.seed,
                                                resume=not args.no_resume)
        check_same_on_workers(initial_epoch, "the epoch to resume from")
    atomic_write_text(os.path.join(write, "config.json"), config.to_json())
    logger.info("%s: %s parameters, dataset %s, %d epochs, %s -> %s", args.preset,
                f"{model.count_params():,}", dataset, config.epochs, config.precision, write)

    stop = StopOnNonFinite()
    callbacks = [stop, AtomicCheckpoint(os.path.join(write, "checkpoint.keras")),
                 HistoryWriter(os.path.join(write, "history.csv"))]
    if not args.no_balance:
        callbacks.insert(0, GammaBalance())
    callbacks += monitors(args, write, test, dataset)
    if step_timeout is not None:
        callbacks.insert(0, step_timeout)
    if initial_epoch < config.epochs:
        with scope():
            model.fit(train, epochs=config.epochs, initial_epoch=initial_epoch,
                      callbacks=callbacks, verbose=verbose, validation_data=validation)
    if stop.stopped_at is not None:
        logger.error("training diverged; %s holds the last good epoch", ckpt)
        return 3

    atomic_write(os.path.join(write, "model.keras"), model.save)
    write_training_figures(model, write, test, n=args.samples, seed=args.seed, dataset=dataset)
    logger.info("wrote %s/model.keras, generated.png, reconstructed.png, history.csv", write)
    return 0


def _last_checkpoint(path: str) -> str:
    from ..checkpoint import read_checkpoint_state

    try:
        return f"{path} (epoch {int(read_checkpoint_state(path)['epoch'])})"
    except (OSError, ValueError):
        return None


def parse_validation(text: str):
    """--validation: "none" -> None, "test" -> "test", "0.1" -> 0.1 (checked)."""
    if text in ("none", "test"):
        return None if text == "none" else text
    try:
        fraction = float(text)
    except ValueError:
        fraction = float("nan")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--validation takes 'test', 'none' or a fraction in (0, 1), "
                         f"received {text!r}")
    return fraction


def load_training_data(args, config, dataset):
    """(training data, validation images or None) as --validation asks."""
    from .. import data

    held_out = parse_validation(args.validation)
    load = dict(data_dir=args.data_dir, limit=args.limit, image_shape=config.image_shape)
    if not isinstance(held_out, float):
        train = data.load(dataset, "train", batch_size=config.batch_size, seed=args.seed,
                          **load)
        if held_out is None:
            return train, None
        validation = data.load(dataset, "test", as_numpy=True, data_dir=args.data_dir,
                               image_shape=config.image_shape)
        logger.info("validation: the %d %s test images", len(validation), dataset)
        return train, validation
    images = data.load(dataset, "train", as_numpy=True, **load)
    n_val = int(round(held_out * len(images)))
    if not 0 < n_val < len(images):
        raise ValueError(f"--validation {args.validation} of {len(images)} training images "
                         "leaves no image on one side")
    logger.info("validation: the last %d of %d training images, held out", n_val,
                len(images))
    train = data.array_pipeline(images[:-n_val], batch_size=config.batch_size,
                                shuffle=True, seed=args.seed)
    return train, images[-n_val:]


def monitors(args, out, test, dataset) -> list:
    """The callbacks of --grid-every and --tensorboard."""
    import keras

    from ..monitor import SplitGrids, is_chief

    every = args.grid_every if args.grid_every is not None else (1 if args.tensorboard else 0)
    if every < 0:
        raise ValueError(f"--grid-every must be >= 0, received {every}")
    callbacks = []
    if args.tensorboard and is_chief():
        # Scalars: every log of the epoch (loss, mse, kl, batch_mse, gamma,
        # kl_weight = beta * gamma; val_* with --validation).
        callbacks.append(keras.callbacks.TensorBoard(args.tensorboard, write_graph=False))
    if every:
        callbacks.append(SplitGrids(
            os.path.join(out, "grids"), images=test[:args.samples], n=args.samples,
            every=every, seed=args.seed, dataset=dataset,
            tensorboard_dir=(os.path.join(args.tensorboard, "grids")
                             if args.tensorboard else None)))
    return callbacks
