"""K components on real Fashion-MNIST: vanilla vs K = 2 (the paper) vs K = 3.

The paper closes (Section VII) with "add control over the splitting
operation, possibly segmenting the input image in other interesting and
meaningful components, and specializing subnets for their respective
processing". This script measures the first step of it with the protocol of
the Fashion-MNIST study (benchmarks/fashion_mnist_study.py): the same reduced
network and training plan of `reproduce` (seeds 0, 1, 2; every layer a model
shares with the paper's network starts from the same weights; the same
batches in the same order), FD-FMNIST and its kernel distance on the 10,000
test images, GEN and GMM (20 components) samples of x_hat, every part and the
mix. The vanilla and K = 2 models are the study's shipped ones; the K = 3
models (shared decoder, and a specialised last block per part) are trained
by --train into weights/fashion_mnist/k3*_seed<s>/.

    python benchmarks/components_study.py --train             # resumable, ~1 h on 2 cores
    python benchmarks/components_study.py --evaluate-only     # the table, ~40 min
    python benchmarks/components_study.py --evaluate-only --subset   # CI size
    python benchmarks/components_study.py --figures           # docs/fashion_mnist_study/components/
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # split_vae, then fmnist_study

from fmnist_study import ROOT, WEIGHTS_DIR  # noqa: E402
from fmnist_study.analysis import ATOL, RTOL, compare, largest_deviation  # noqa: E402

COMPONENTS_JSON = os.path.join(WEIGHTS_DIR, "components.json")
COMPONENTS_SUBSET_JSON = os.path.join(WEIGHTS_DIR, "components_subset.json")


def evaluate_only(subset: bool, write: bool, rows_dir: str | None) -> int:
    """Recompute the table, print it, and write it or compare it with the committed one."""
    from fmnist_study.components import evaluate_components, format_components
    from split_vae.fileio import atomic_write_text

    path = COMPONENTS_SUBSET_JSON if subset else COMPONENTS_JSON
    result = evaluate_components(subset=subset, rows_dir=rows_dir)
    print(format_components(result))
    status = 0
    if write:
        atomic_write_text(path, json.dumps(result, indent=1) + "\n")
        print(f"[components] wrote {path}", file=sys.stderr)
    elif os.path.exists(path):
        with open(path) as f:
            committed = json.load(f)
        bad = compare(result, committed, parts=("models",))
        if bad:
            print(f"MISMATCH with {os.path.relpath(path, ROOT)} (tolerance {RTOL:.0%} "
                  f"relative + {ATOL} absolute):\n  " + "\n  ".join(bad[:20]))
            status = 1
        else:
            print(f"every number matches {os.path.relpath(path, ROOT)} within {RTOL:.0%} "
                  f"relative + {ATOL} absolute (largest relative deviation "
                  f"{largest_deviation(result, committed, parts=('models',)):.1e}; {result['seconds']:.0f} s)")
    else:
        print(f"no committed numbers at {path} to compare with (use --write)")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true",
                        help="train the K = 3 models of every seed (resumes, skips finished)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="recompute the table from the shipped weights, print it and "
                             "compare it with the committed numbers")
    parser.add_argument("--subset", action="store_true",
                        help="with --evaluate-only: seed 0 and 1,000 images (CI size)")
    parser.add_argument("--write", action="store_true",
                        help="with --evaluate-only: write the numbers as the committed ones")
    parser.add_argument("--rows-dir", default=None,
                        help="with --evaluate-only: keep each model's row there, so that an "
                             "interrupted evaluation resumes")
    parser.add_argument("--figures", action="store_true",
                        help="draw docs/fashion_mnist_study/components/ from the committed "
                             "components.json and the shipped weights")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    args = parser.parse_args(argv)
    if not args.progress:  # before tqdm is imported: it reads the variable then
        os.environ.setdefault("TQDM_DISABLE", "1")
    if not (args.train or args.evaluate_only or args.figures):
        parser.error("nothing to do: pass --train, --evaluate-only or --figures")
    if args.train:
        from fmnist_study.components import train_variants

        train_variants()
    status = 0
    if args.evaluate_only:
        status = evaluate_only(args.subset, args.write, args.rows_dir)
    if args.figures:
        from fmnist_study.components import make_component_figures

        with open(COMPONENTS_JSON) as f:
            for path in make_component_figures(json.load(f)):
                print(f"[components] wrote {os.path.relpath(path, ROOT)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
