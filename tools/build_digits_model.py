"""Rebuild the trained digits model that ships in the package (split_vae/assets/digits).

`SplitVAE.from_pretrained("digits")` reads it, offline. This script trains it
with the command line, seeded, on scikit-learn's bundled digits (no
download), narrowed so that the weights stay small, then writes the preset
directory (weights without the optimizer's state) and measures it on the 359
test digits:

    python tools/build_digits_model.py            # about 1-2 minutes on 2 CPU cores

What it measures (reconstruction MSE of the test digits, the split kind of
their sigma, inactive latent variables by the encoder's and the decoder's
criteria) is printed as a table and recorded in the preset's metadata.json
("source"), beside the command that trained it. Weights trained on another
machine or TensorFlow version differ in their last digits; the numbers
should agree to about 10%.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "split_vae", "assets", "digits")
TRAIN_FLAGS = ["--preset", "digits", "--seed", "0", "--set", "base_dim=8",
               "--set", "emb_dim=32", "--no-resume", "--verbose", "2"]


def train(out: str) -> None:
    command = [sys.executable, "-m", "split_vae", "train", *TRAIN_FLAGS, "--out", out]
    print("+", " ".join(["python", *command[1:]]), file=sys.stderr)
    subprocess.run(command, cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))


def measure(model) -> dict:
    import numpy as np

    from split_vae import data, explore
    from split_vae.evaluation import latent_statistics
    from split_vae.split_kind import split_kind_of_parts

    test = data.load("digits", "test", as_numpy=True)
    parts = model.reconstruct(test)
    stats = latent_statistics(*model.encode(test))
    walks = explore.traverse(model, "all")
    return {
        "test_images": int(len(test)),
        "test_reconstruction_mse": float(np.mean((parts["x_hat"] - test) ** 2)),
        "split_kind": split_kind_of_parts(parts)["kind"],
        "sigma_high_frequency_fraction": split_kind_of_parts(parts)[
            "high_frequency_fraction"],
        "inactive_by_encoder_variance": stats["inactive_by_variance"],
        "inactive_by_traversal": int(sum(not w.active for w in walks)),
        "latent_dim": model.latent_dim,
        "parameters": model.count_params(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=TARGET, help="the preset directory to write")
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    import keras

    from split_vae.model import SplitVAE

    with tempfile.TemporaryDirectory() as run:
        train(run)
        model = keras.saving.load_model(os.path.join(run, "model.keras"), compile=False)
    assert isinstance(model, SplitVAE)
    measured = measure(model)
    source = {"command": "python -m split_vae train " + " ".join(TRAIN_FLAGS),
              "rebuild": "python tools/build_digits_model.py", "measured": measured}
    model.save_to_preset(args.out, dataset="digits", source=source)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"{'wrote':<32} {args.out} ({size / 1024:.0f} KiB)")
    for key, value in measured.items():
        print(f"{key:<32} {value:.4g}" if isinstance(value, float) else f"{key:<32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
