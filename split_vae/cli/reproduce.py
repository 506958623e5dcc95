"""`python -m split_vae reproduce`: the paper's tables and figures for one dataset.

Several GPUs: `--gpus 0,1,2,3` runs one process per GPU (CUDA_VISIBLE_DEVICES
set to it), each training and evaluating its share of the independent runs;
this process waits for them and writes the tables. One run per GPU rather
than `--distribute` over all of them: the runs need no communication, so they
scale with the number of GPUs, and each keeps its batch size of 100, its
batches and its result bit for bit as on one GPU.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

from .inputs import check_existing, check_extractor_path

logger = logging.getLogger(__name__)

NAME = "reproduce"
HELP = "train N split and N vanilla models, evaluate them, write the paper's tables"
DATASETS = ("mnist", "fashion_mnist", "cifar10", "celeba", "digits")
DESCRIPTION = (
    "Reproduce the paper's tables and figures for one dataset: trains N Split VAEs "
    "and N vanilla VAEs (seeds 0..N-1, paired), follows the ablation curves (FID after "
    "GMM resampling every few epochs, as Figures 14 and 15), evaluates every model "
    "with the paper's protocol and writes OUT/table.md, OUT/table.json and "
    "OUT/figures/. Resumable: run the same command again after any interruption. "
    "--scale paper trains the presets as the authors' code does (learning rate 1e-4; "
    "--learning-rate text for the paper's 1e-3); --scale smoke is a CPU-sized check "
    "of the whole pipeline (fashion_mnist or digits).")


def add_arguments(p) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--scale", default="paper", choices=("paper", "smoke"),
                   help="paper: the presets at the paper's size (needs a GPU); smoke: "
                        "a small network on a few hundred images, minutes on a CPU")
    p.add_argument("--runs", type=int, default=None,
                   help="trainings of each kind (default: 5 at the paper's scale, as its "
                        "ablation; 2 at the smoke scale)")
    p.add_argument("--out", default=None,
                   help="output directory (default: runs/reproduce/DATASET_SCALE)")
    p.add_argument("--extractor", default=None,
                   help="features of every distance (default: 'inception', the paper's "
                        "FID, at the paper's scale; 'fd-fmnist' or 'inception-random' at "
                        "the smoke scale); 'fid-inception' gives the literature's FID; "
                        "see `evaluate --help`")
    p.add_argument("--data-dir", default=None, help="directory of offline data")
    p.add_argument("--learning-rate", default=None, metavar="code|text|VALUE",
                   help="'code': 1e-4, the authors' code and our presets (default at the "
                        "paper's scale); 'text': 1e-3, the paper's text; or a number")
    p.add_argument("--beta", type=float, default=None,
                   help="KL weight (default: the preset's; --beta 3 --gmm 20,100 on mnist "
                        "is Table 1's best row, the preset has beta 8)")
    p.add_argument("--epochs", type=int, default=None, help="default: the paper's")
    p.add_argument("--gmm", default=None, metavar="K[,K...]",
                   help="GMM components of the evaluation, comma-separated (default: "
                        "20,100 on mnist, as Table 1; 100 on cifar10 and celeba)")
    p.add_argument("--history-every", type=int, default=None, metavar="EPOCHS",
                   help="measure the ablation curves every EPOCHS epochs (default: 10)")
    p.add_argument("--train-images", type=int, default=None,
                   help="train on the first N training images (default: all)")
    p.add_argument("--eval-images", type=int, default=None,
                   help="reference images and samples per source (default: 10,000)")
    p.add_argument("--gpus", default=None, metavar="ID[,ID...]",
                   help="spread the runs over these GPUs, one process per GPU")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # I/N, set by --gpus
    from .train import add_component_arguments

    add_component_arguments(p)  # of the split runs; the vanilla ones are the paper's
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (log lines only)")


def _plan(args):
    from ..reproduce.plan import make_plan
    from .train import component_changes

    gmm = None
    if args.gmm:
        try:
            gmm = tuple(int(k) for k in args.gmm.split(","))
        except ValueError:
            raise ValueError(f"--gmm takes comma-separated integers, received {args.gmm!r}") \
                from None
    return make_plan(args.dataset, args.scale, runs=args.runs,
                     learning_rate=args.learning_rate, beta=args.beta, epochs=args.epochs,
                     gmm=gmm, extractor=args.extractor, history_every=args.history_every,
                     train_images=args.train_images, eval_images=args.eval_images,
                     **component_changes(args))


def check_inputs(args) -> None:
    """The files and directories the arguments name exist (before any import)."""
    check_existing("--data-dir", args.data_dir)
    check_extractor_path(args.extractor)


def run(args) -> int:
    plan = _plan(args)  # a wrong option fails before anything is imported or written
    if args.no_progress:  # before tqdm is imported: it reads the variable then
        os.environ.setdefault("TQDM_DISABLE", "1")
    out = args.out or os.path.join("runs", "reproduce", f"{args.dataset}_{args.scale}")
    worker = None
    if args.worker:
        i, n = (int(v) for v in args.worker.split("/"))
        worker = (i, n)
    if args.gpus and worker is None:
        gpus = [g.strip() for g in args.gpus.split(",") if g.strip()]
        if not gpus:
            raise ValueError(f"--gpus takes comma-separated GPU ids, received {args.gpus!r}")
        status = spread(gpus, out, args.argv)
        if status:
            return status
    from ..reproduce.pipeline import reproduce

    result = reproduce(plan, out, data_dir=args.data_dir, progress=not args.no_progress,
                       worker=worker)
    if result is not None:
        print(os.path.join(out, "table.md"))
    return 0


def spread(gpus: list[str], out: str, argv: list[str]) -> int:
    """Run this command (argv) once per GPU as a worker; 0 when every worker succeeded."""
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    argv = _argv_without_gpus(argv)
    procs = []
    for i, gpu in enumerate(gpus):
        log_path = os.path.join(out, "logs", f"worker{i}.log")
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu)
        cmd = [sys.executable, "-m", "split_vae", *argv, "--worker", f"{i}/{len(gpus)}",
               "--no-progress"]
        log = open(log_path, "w")
        procs.append((gpu, log_path, log, subprocess.Popen(cmd, env=env, stdout=log,
                                                           stderr=subprocess.STDOUT)))
        logger.info("reproduce: worker %d on GPU %s (log %s)", i, gpu, log_path)
    failed = []
    for gpu, log_path, log, proc in procs:
        code = proc.wait()
        log.close()
        if code:
            failed.append(f"GPU {gpu} exited with status {code} (see {log_path})")
    if failed:
        logger.error("reproduce: %s; rerun the same command to continue",
                     "; ".join(failed))
        return 1
    return 0


def _argv_without_gpus(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--gpus":
            skip = True
            continue
        if a.startswith("--gpus="):
            continue
        out.append(a)
    return out
