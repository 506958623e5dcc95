"""Write the per-dataset notebooks (thin drivers of the library, no model code).

    python notebooks/make_notebooks.py          # rewrites notebooks/*.ipynb, no outputs
    python notebooks/make_notebooks.py --keep-outputs   # new sources, outputs kept

The notebooks share one skeleton; what differs per dataset is in DATASETS.
Each has three modes, picked by SPLIT_VAE_NOTEBOOK_MODE or by the hardware:
"paper" (the paper's configuration: a GPU), "cpu" (a smaller network, minutes
on a CPU) and "smoke" (seconds: what the test suite runs).
"""

from __future__ import annotations

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

DATASETS = {
    "mnist": dict(
        title="MNIST",
        data_note="tensorflow-datasets downloads MNIST on first use; offline, pass "
                  "`data_dir=` a folder with the IDX files (see `split_vae.data.load`). "
                  "The 28x28 digits are zero-padded to 32x32, as in the paper.",
        paper="Paper: latent 32, beta 8 (also 3), GMM with 20 or 100 components, 300 epochs. "
              "The authors' README reports FID 7.47."),
    "fashion_mnist": dict(
        title="Fashion-MNIST",
        data_note="Read from Debian's `dataset-fashion-mnist` IDX files "
                  "(/usr/share/datasets/fashion-mnist) when they are installed, else "
                  "downloaded by Keras. Padded from 28x28 to 32x32 like MNIST. This is the "
                  "dataset of the suite that runs without any network.",
        paper="Not in the paper: the mnist preset's network and schedule on Fashion-MNIST.",
        # In cpu mode, FD-FMNIST (our Fashion-MNIST classifier, shipped with the
        # library) on the whole test split replaces an InceptionV3 whose ImageNet
        # weights cannot be downloaded offline.
        cpu_eval=("fd-fmnist", 10_000)),
    "cifar10": dict(
        title="CIFAR-10",
        data_note="tensorflow-datasets downloads CIFAR-10 on first use; offline, pass "
                  "`data_dir=` the folder of CIFAR-10's own batches (cifar-10-batches-py).",
        paper="Paper: latent 200, beta 3, GMM with 100 components, 110 epochs."),
    "celeba": dict(
        title="CelebA",
        data_note="tensorflow-datasets' `celeb_a` (a large manual download); offline, pass "
                  "`data_dir=` the folder holding `img_align_celeba/`. Images are cropped "
                  "to rows 45:173, columns 25:153 and resized bilinearly to 64x64. The "
                  "folder is decoded once into a cached array.",
        paper="Paper: latent 150, beta 3, GMM with 100 components, 160 epochs. The authors' "
              "README reports FID 35.1.",
        pretrained=True),
}


def cells_for(name: str, spec: dict):
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md(f"# Split VAE on {spec['title']}\n\n"
           "Asperti, Bugo, Filippini, *Enhancing Variational Generation Through "
           "Self-Decomposition*, IEEE Access 2022 "
           "([arXiv 2202.02738](https://arxiv.org/abs/2202.02738)).\n\n"
           "This notebook only drives the `split_vae` library: load the data, build the "
           "preset, train with `model.fit` and the gamma balance, draw the paper's figures "
           "(rows sigma, x1, x2, x_hat), resample the latent space with a Gaussian mixture "
           "and measure FID with the paper's protocol.\n\n" + spec["paper"]),
        code("import logging\n"
             "import os\n"
             "import warnings\n\n"
             "# tqdm's notebook bars need ipywidgets; without it tqdm falls back to text\n"
             "# bars, which work: its warning about that says nothing to act on.\n"
             "warnings.filterwarnings(\"ignore\", message=\"IProgress not found\")\n\n"
             "import keras\n"
             "import matplotlib.pyplot as plt\n"
             "import numpy as np\n"
             "import tensorflow as tf\n\n"
             "import split_vae\n"
             "from split_vae import GammaBalance, SplitVAE, data\n"
             "from split_vae.evaluation import FIDHistory, evaluate_model, format_report\n"
             "from split_vae.plotting import plot_split_grid, plot_square_grid\n\n"
             "# The library logs its messages (FIDHistory's measurements): show them.\n"
             "logging.basicConfig(format=\"%(message)s\")\n"
             "logging.getLogger(\"split_vae\").setLevel(logging.INFO)"),
        md("## Settings\n\n"
           "- `paper`: the paper's configuration. Needs a GPU (hours).\n"
           "- `cpu`: a smaller network for a few epochs: minutes on a CPU, to see the "
           "split appear.\n"
           "- `smoke`: seconds; what the test suite runs to check this notebook.\n\n"
           "FID uses Keras InceptionV3 with ImageNet weights (downloaded once). Set "
           "`SPLIT_VAE_EXTRACTOR=inception-random` where they cannot be downloaded: the "
           "numbers are then not FIDs, only the pipeline runs."),
        code(f'DATASET = "{name}"\n'
             'GPU = bool(tf.config.list_physical_devices("GPU"))\n'
             'MODE = os.environ.get("SPLIT_VAE_NOTEBOOK_MODE") or ("paper" if GPU else "cpu")\n'
             'EXTRACTOR = os.environ.get("SPLIT_VAE_EXTRACTOR", "inception")\n'
             'OUT = os.path.join("runs", f"{DATASET}_{MODE}")\n\n'
             'config = split_vae.get_preset(DATASET)\n'
             'LIMIT = None      # training images (None: the whole split)\n'
             'N_EVAL = 10_000   # the paper: 10,000 reference and 10,000 generated images\n'
             'if MODE == "cpu":\n'
             '    # A quarter of the width, 3 scales, a faster BatchNorm average and\n'
             '    # learning rate for a run of a few thousand steps.\n'
             '    config = config.replace(base_dim=16, emb_dim=128, num_scale=3, epochs=5,\n'
             '                            learning_rate=1e-3, bn_momentum=0.99)\n'
             '    LIMIT, N_EVAL = 20_000, 1_000\n'
             + (f'    # FD-FMNIST (a Fréchet distance in the features of our Fashion-MNIST\n'
                f'    # classifier, not an FID) is fast: the whole test split.\n'
                f'    EXTRACTOR = os.environ.get("SPLIT_VAE_EXTRACTOR", "{spec["cpu_eval"][0]}")\n'
                f'    N_EVAL = {spec["cpu_eval"][1]:_}\n' if "cpu_eval" in spec else '') +
             'elif MODE == "smoke":\n'
             '    config = config.replace(base_dim=8, emb_dim=16, latent_dim=4, num_scale=2,\n'
             '                            epochs=1, learning_rate=1e-3, bn_momentum=0.9,\n'
             '                            batch_size=32, gmm_components=2)\n'
             '    LIMIT, N_EVAL, EXTRACTOR = 128, 8, os.environ.get("SPLIT_VAE_EXTRACTOR", "inception-random")\n'
             '# Fewer evaluation images where Inception is slow (a CPU):\n'
             'N_EVAL = int(os.environ.get("SPLIT_VAE_N_EVAL", N_EVAL))\n'
             'print(MODE, EXTRACTOR, N_EVAL, config)'),
        md("## Data\n\n" + spec["data_note"]),
        code('train = data.load(DATASET, "train", batch_size=config.batch_size, limit=LIMIT, seed=0)\n'
             'test = data.load(DATASET, "test", as_numpy=True, limit=N_EVAL)\n'
             'train_ref = data.load(DATASET, "train", as_numpy=True, limit=N_EVAL)  # the "real" row\n'
             'print("test images:", test.shape, test.dtype, float(test.min()), float(test.max()))\n'
             'plot_square_grid(test, side=8, title=f"{DATASET}: test images");'),
        md("## Model\n\nThe preset mirrors the authors' network layer for layer "
           "(`count_params()` equals the original's for the paper presets)."),
        code('keras.utils.set_random_seed(0)\n'
             'model = SplitVAE(config, seed=0)\n'
             'model.compile()  # Adam at config.learning_rate\n'
             'print(f"{model.count_params():,} parameters")'),
        md("## Training\n\n`GammaBalance` lowers gamma, the running reconstruction MSE, after "
           "every batch: the effective KL weight beta*gamma shrinks as reconstruction "
           "improves. In paper mode `FIDHistory` follows the FID of x_hat, x1 and x2 along "
           "training (the paper's Figure 11).\n\n"
           "**The loss printed below rises, several-fold, while gamma falls: that is the "
           "balance working, not training going wrong.** The loss is "
           "rec/gamma + beta*KL: as gamma shrinks, the same reconstruction error counts for "
           "more, so the loss grows while `mse`, the reconstruction error itself, falls. "
           "Follow `mse` (and `kl`) to see progress, not `loss`."),
        code('callbacks = [GammaBalance()]\n'
             'if MODE == "paper":\n'
             '    callbacks.append(FIDHistory(test[:1000], every=10, extractor=EXTRACTOR,\n'
             '                                n_samples=1000, plot_path=os.path.join(OUT, "fid.png")))\n'
             '# loss rises as gamma falls (the balance, see above); mse is what falls.\n'
             'history = model.fit(train, epochs=config.epochs, callbacks=callbacks,\n'
             '                    verbose=1 if MODE == "paper" else 2)  # 2: a line per epoch'),
        code('fig, axes = plt.subplots(1, 3, figsize=(12, 3))\n'
             'for ax, key in zip(axes, ("loss", "mse", "gamma")):\n'
             '    ax.plot(history.history[key], marker="o")\n'
             '    ax.set_title(key)\n'
             '    ax.set_xlabel("epoch")\n'
             'axes[2].set_yscale("log")\n'
             'fig.tight_layout()'),
        md("## The paper's figures\n\nRows: the map sigma, x1, x2 and "
           "x_hat = sigma*x1 + (1-sigma)*x2."),
        code('plot_split_grid(model.generate(10, seed=0), title="generated, z ~ N(0, I)");'),
        code('plot_split_grid(model.reconstruct(test[:10]), inputs=test[:10],\n'
             '                title="reconstructed test images");'),
        md("## Evaluation: GMM resampling and FID\n\nOne call computes, from one set of "
           "samples per source, the FID of x_hat, x1, x2 and mix for samples from the prior "
           "(GEN) and from a Gaussian mixture fitted on z_mean of the test images (GMM), the "
           "FID of test against training images (real) and of reconstructions, and the "
           "inactive latent variables. Keras InceptionV3 FIDs are not comparable with "
           "pytorch-fid, clean-fid or TTUR."
           + (" In `cpu` mode the distance is FD-FMNIST: the same Fréchet distance in the "
              "128 penultimate features of our Fashion-MNIST classifier (shipped in "
              "`split_vae/assets/`), on the whole test split; it is not an FID and the "
              "table prints it under its own name." if "cpu_eval" in spec else "")),
        code('report, samples = evaluate_model(model, test, train_ref, extractor=EXTRACTOR,\n'
             '                                 n_samples=N_EVAL, seed=0)\n'
             'print(format_report(report))'),
        code('plot_square_grid(samples["gmm"]["x_hat"], side=8, title="x_hat, z ~ GMM")\n'
             'plot_square_grid(samples["gen"]["sigma"], side=8, title="sigma maps");'),
        md("## Save\n\nA preset directory (config.json, model.weights.h5, metadata.json) "
           "rebuilds the model from the files alone: `SplitVAE.from_preset(path)`."),
        code('model.save_to_preset(os.path.join(OUT, "preset"))\n'
             'again = SplitVAE.from_preset(os.path.join(OUT, "preset"))\n'
             'np.testing.assert_allclose(again.reconstruct(test[:4])["x_hat"],\n'
             '                           model.reconstruct(test[:4])["x_hat"], atol=1e-6)\n'
             'print("saved to", os.path.join(OUT, "preset"))'),
    ]
    if spec.get("pretrained"):
        cells += [
            md("## The authors' published weights\n\n`SplitVAE.from_pretrained` downloads a "
               "Keras 2 checkpoint of the original code once, infers its configuration from "
               "the weights and loads it (see weights/README.md). Without a network it says "
               "which URL to fetch and where to put the file."),
            code('if MODE != "smoke":\n'
                 '    try:\n'
                 '        pretrained = SplitVAE.from_pretrained("celeba_split_two")\n'
                 '        print(pretrained.config)\n'
                 '        plot_split_grid(pretrained.generate(10, seed=0),\n'
                 '                        title="published weights: generated")\n'
                 '    except FileNotFoundError as e:  # offline: what to download, and where\n'
                 '        print(e)'),
        ]
    return cells


def build(name: str, spec: dict):
    nb = new_notebook(cells=cells_for(name, spec))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def clean_outputs(nb):
    """Drop what a run leaves in outputs that a reader needs not see, in place.

    tqdm's "IProgress not found" warning, and the redraws of progress bars
    (stderr chunks starting with a carriage return: a terminal overwrites
    them, a saved notebook keeps every one); adjacent stream outputs of one
    name are joined. Everything else is kept as the run wrote it.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr" and (
                    "IProgress not found" in out.text or out.text.startswith("\r")):
                continue
            if (out.output_type == "stream" and kept and kept[-1].output_type == "stream"
                    and kept[-1].name == out.name):
                kept[-1].text += out.text
                continue
            kept.append(out)
        cell.outputs = kept
    return nb


def refresh(name: str, spec: dict, path: str) -> None:
    """Give the notebook at path the generator's cell sources, keeping its outputs
    (cleaned): for edits of text and comments that do not change what runs."""
    nb = nbformat.read(path, as_version=4)
    fresh = build(name, spec)
    if [c.cell_type for c in nb.cells] != [c.cell_type for c in fresh.cells]:
        raise ValueError(f"{path}: its cells are not the generator's; rewrite it instead")
    for cell, new in zip(nb.cells, fresh.cells):
        cell.source = new.source
    nbformat.write(clean_outputs(nb), path)


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description="Write the notebooks (without outputs).")
    p.add_argument("--keep-outputs", action="store_true",
                   help="update the sources of the notebooks on disk, keeping their "
                        "outputs (cleaned of progress-bar redraws and tqdm's warning)")
    args = p.parse_args(argv)
    for name, spec in DATASETS.items():
        path = os.path.join(HERE, f"{name}.ipynb")
        if args.keep_outputs:
            refresh(name, spec, path)
        else:
            nbformat.write(build(name, spec), path)
        print("wrote", path)


if __name__ == "__main__":
    main()
