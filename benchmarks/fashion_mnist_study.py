"""Split VAE vs vanilla VAE on real Fashion-MNIST: does splitting help?

The paper (Asperti, Bugo, Filippini, IEEE Access 2022, arXiv 2202.02738)
reports that the Split VAE generates better than the "vanilla" VAE with the
same layers, and that its parts x1, x2 often beat x_hat itself. This script
tests that claim on the real Fashion-MNIST test set with a reduced network
that trains on two CPU cores, several seeds, paired models.

    python benchmarks/fashion_mnist_study.py --train            # resumable
    python benchmarks/fashion_mnist_study.py --evaluate-only    # the table
    python benchmarks/fashion_mnist_study.py --evaluate-only --subset   # CI size

--train trains every model of the study (split and vanilla for each seed) with
`split_vae.reproduce` (the study is a plan of it: fmnist_study/training.py) and
saves each as a preset directory under weights/fashion_mnist/<name>/. Running
it again skips finished models and resumes a partial one from its last
checkpoint (runs/fashion_mnist_study/<name>/checkpoint.keras, written after
every third of an epoch, with the progress inside). Each model's numbers are
reproduce's evaluation of it, and the paired analysis is reproduce's; the
study adds its calibration rows, its report and figures
(benchmarks/fmnist_study/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # split_vae, then fmnist_study

from fmnist_study import ROOT, SEEDS, STUDY_JSON, SUBSET_JSON  # noqa: E402
from fmnist_study.analysis import ATOL, RTOL, compare, largest_deviation  # noqa: E402


def evaluate_only(subset: bool, write: bool, progress: bool = False, wait: bool = False) -> int:
    """Recompute the table, print it, and write it or compare it with the committed one."""
    from fmnist_study.evaluation import evaluate_models
    from fmnist_study.report import format_table
    from split_vae.fileio import atomic_write_text

    path = SUBSET_JSON if subset else STUDY_JSON
    result = evaluate_models(subset=subset, progress=progress, wait=wait)
    print(format_table(result))
    status = 0
    if write:
        atomic_write_text(path, json.dumps(result, indent=1) + "\n")
        print(f"[study] wrote {path}", file=sys.stderr)
    elif os.path.exists(path):
        with open(path) as f:
            committed = json.load(f)
        bad = compare(result, committed)
        if bad:
            print(f"MISMATCH with {os.path.relpath(path, ROOT)} (tolerance "
                  f"{RTOL:.0%} relative + {ATOL} absolute):\n  " + "\n  ".join(bad[:20]))
            status = 1
        else:
            print(f"every number matches {os.path.relpath(path, ROOT)} within {RTOL:.0%} "
                  f"relative + {ATOL} absolute (largest relative deviation "
                  f"{largest_deviation(result, committed):.1e}; {result['seconds']:.0f} s)")
    else:
        print(f"no committed numbers at {path} to compare with (use --write)")
    print(f"table: {result['table']} (FD-FMNIST, split vs vanilla VAE on Fashion-MNIST)")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true",
                        help="train every model of the study (resumes, skips finished ones)")
    parser.add_argument("--train-classifier", action="store_true",
                        help="(re)train the FD-FMNIST classifier shipped in split_vae/assets/")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="recompute the table from the shipped weights, print it and "
                             "compare it with the committed numbers")
    parser.add_argument("--subset", action="store_true",
                        help="with --evaluate-only: one seed and 1,000 images (CI size)")
    parser.add_argument("--write", action="store_true",
                        help="with --evaluate-only: write the numbers as the committed ones")
    parser.add_argument("--figures", action="store_true",
                        help="draw the figures of docs/fashion_mnist_study/ from the "
                             "committed study.json and the shipped weights")
    parser.add_argument("--figure-seed", type=int, default=0,
                        help="seed of the models drawn in the grids")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.add_argument("--wait", action="store_true",
                        help="with --evaluate-only: wait for models still training")
    parser.add_argument("--runs", type=int, default=len(SEEDS),
                        help="with --train: pairs of models, seeds 0..RUNS-1")
    args = parser.parse_args(argv)
    if not args.progress:  # before tqdm is imported: it reads the variable then
        os.environ.setdefault("TQDM_DISABLE", "1")
    if args.train_classifier:
        from fmnist_study.training import train_fd_fmnist_classifier

        train_fd_fmnist_classifier()
    if args.train:
        from fmnist_study.training import train_all

        train_all(args.runs)
    status = 0
    if args.evaluate_only:
        status = evaluate_only(args.subset, args.write, args.progress, args.wait)
    if args.figures:
        from fmnist_study.figures import make_figures

        with open(STUDY_JSON) as f:
            for path in make_figures(json.load(f), args.figure_seed):
                print(f"[study] wrote {os.path.relpath(path, ROOT)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
