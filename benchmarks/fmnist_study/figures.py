"""The figures of docs/fashion_mnist_study/: the FD-FMNIST of every part by
seed, and the grids (sigma, x1, x2, x_hat) of the models of one seed."""

from __future__ import annotations

import os

from . import FIGURES_DIR, WEIGHTS_DIR
from .evaluation import EVAL_SEED, SAMPLE_PARTS


def plot_fd_by_seed(result: dict, path: str) -> None:
    """Dots: FD-FMNIST of every part, GEN and GMM, split and vanilla, by seed;
    dashed lines: the calibration rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from split_vae.plotting import save_figure

    seeds, models = result["seeds"], result["models"]
    columns = [(src, part) for src in ("gen", "gmm") for part in SAMPLE_PARTS]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    markers = "osD^v"
    for i, seed in enumerate(seeds):
        for kind, color, dx in (("split", "tab:blue", -0.12), ("vanilla", "tab:orange", 0.12)):
            row = models[f"{kind}_seed{seed}"]
            xs, ys = [], []
            for c, (src, part) in enumerate(columns):
                if part in row[f"fd_{src}"]:
                    xs.append(c + dx)
                    ys.append(row[f"fd_{src}"][part])
            label = f"{kind} s{seed}"
            if kind == "split":
                label += f" ({row['split_kind']['kind']})"
            ax.plot(xs, ys, linestyle="none", marker=markers[i % len(markers)], color=color,
                    label=label, alpha=0.8)
    cal = result["calibration"]
    ax.axhline(cal["real_test_vs_train"], color="green", linestyle="--",
               label=f"test vs train ({cal['real_test_vs_train']:.2f})")
    ax.axhline(cal["test_vs_blurred_test_1px"], color="gray", linestyle=":",
               label=f"test vs test blurred 1 px ({cal['test_vs_blurred_test_1px']:.2f})")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([f"{src.upper()}\n{part}" for src, part in columns])
    ax.set_yscale("log")
    ax.set_ylabel("FD-FMNIST (lower is better; log scale)")
    ax.set_title(f"Fashion-MNIST, split vs vanilla VAE, {len(seeds)} seeds "
                 f"({result['n_samples']:,} samples)")
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def make_figures(result: dict, seed: int = 0, weights_dir: str = WEIGHTS_DIR,
                 figures_dir: str = FIGURES_DIR) -> list[str]:
    """Grids (sigma, x1, x2, x_hat) of the split and vanilla models of one seed,
    generated and reconstructed, plus the FD plot. Returns the paths."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    import matplotlib

    matplotlib.use("Agg")
    from split_vae import data
    from split_vae.model import SplitVAE
    from split_vae.plotting import plot_split_grid

    os.makedirs(figures_dir, exist_ok=True)
    test = data.load("fashion_mnist", "test", as_numpy=True, limit=10)
    paths = []
    for kind in ("split", "vanilla"):
        name = f"{kind}_seed{seed}"
        model = SplitVAE.from_preset(os.path.join(weights_dir, name))
        label = "Split VAE" if kind == "split" else "vanilla VAE"
        if kind == "split":
            label += f" ({result['models'][name]['split_kind']['kind']} split)"
        for what, parts, inputs in (
                ("generated", model.generate(10, seed=EVAL_SEED), None),
                ("reconstructed", model.reconstruct(test), test)):
            path = os.path.join(figures_dir, f"{name}_{what}.png")
            plot_split_grid(parts, path, n=10, inputs=inputs,
                            title=f"{label}, seed {seed}: {what}")
            paths.append(path)
    path = os.path.join(figures_dir, "fd_by_seed.png")
    plot_fd_by_seed(result, path)
    return paths + [path]
