"""Figures laid out as the paper's: rows sigma, x1, x2, x_hat (Figures 1-4).

A model of K > 2 components draws its K maps, its K images, then x_hat
(`parts.row_names`), and its maps as one colour picture (`maps_rgb`).

No backend is forced: in a notebook the figures show inline, and without a
display matplotlib falls back to Agg by itself. A figure written to a path is
closed; one returned without a path stays open for the notebook to show.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from .fileio import atomic_write
from .parts import components_of, maps_of, row_label, row_names
from .split_kind import SPLIT_KIND_THRESHOLD

# The colour of each component in `maps_rgb` (matplotlib's tab10, then cycled).
MAP_COLOURS = ((0.84, 0.15, 0.16), (0.17, 0.63, 0.17), (0.12, 0.47, 0.71),
               (1.0, 0.5, 0.05), (0.58, 0.4, 0.74), (0.55, 0.34, 0.29),
               (0.89, 0.47, 0.76), (0.5, 0.5, 0.5), (0.74, 0.74, 0.13), (0.09, 0.75, 0.81))


def maps_rgb(parts: dict) -> np.ndarray:
    """The maps of a parts dict as colour images (N, H, W, 3): each pixel the
    blend of the components' colours (`MAP_COLOURS`) weighted by their maps,
    so a pixel one component takes has that component's colour."""
    maps = maps_of(parts)
    if maps is None:
        raise ValueError("a vanilla model's dict has no maps")
    k = maps.shape[-1]
    colours = np.array([MAP_COLOURS[i % len(MAP_COLOURS)] for i in range(k)])
    return np.clip(maps @ colours, 0.0, 1.0).astype("float32")


def _as_image(a: np.ndarray) -> np.ndarray:
    a = np.clip(np.asarray(a, dtype="float32"), 0.0, 1.0)
    return a[..., 0] if a.shape[-1] == 1 else a


def plot_split_grid(parts: dict, path: str | None = None, n: int = 10,
                    inputs: np.ndarray | None = None, title: str | None = None):
    """One column per sample; rows (input), sigma, x1, x2, x_hat.

    Args:
        parts: dict from `SplitVAE.decode` / `generate` / `reconstruct`; a
            vanilla model's dict has x_hat only, and only that row is drawn.
        path: PNG to write (atomically); None returns the figure unsaved.
        n: number of columns (samples).
        inputs: the original images, drawn as a first row (reconstructions).
        title: figure title.
    Returns:
        the matplotlib Figure.
    """
    rows = [("input", inputs)] if inputs is not None else []
    rows += [(k, parts[k]) for k in row_names(parts) if k in parts]
    if not rows:
        raise ValueError(f"nothing to plot: parts has keys {sorted(parts)}")
    n = min(n, len(rows[-1][1]))
    if n < 1:
        raise ValueError("nothing to plot: zero samples")
    fig, axes = _image_rows([(row_label(k), images) for k, images in rows], n)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_maps_grid(parts: dict, path: str | None = None, n: int = 10,
                   inputs: np.ndarray | None = None, title: str | None = None):
    """One column per sample; rows (input), the maps in colour (`maps_rgb`), x_hat.

    The picture of K maps at once: each pixel has the colour of the
    component that takes it (`MAP_COLOURS`: red, green, blue, ...), blends
    where they share it. Returns the Figure (written atomically to path)."""
    rows = [("x", inputs)] if inputs is not None else []
    rows += [("maps", maps_rgb(parts)), (row_label("x_hat"), parts["x_hat"])]
    n = min(n, len(parts["x_hat"]))
    if n < 1:
        raise ValueError("nothing to plot: zero samples")
    fig, _ = _image_rows(rows, n)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def _image_rows(rows, n: int, cell: float = 1.1, left: float = 0.6, top: float = 0.4):
    """A figure of len(rows) x n images; rows are (label, images), label left of column 0.

    cell, left and top are inches: an image's side, the room for the labels
    and the room above the images."""
    fig, axes = plt.subplots(len(rows), n, figsize=(cell * n + left, cell * len(rows) + top),
                             squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            _show(ax, _as_image(images[c]))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, labelpad=14, fontsize=12, va="center")
    return fig, axes


def plot_walks(walks, path: str | None = None, parts=None, title: str | None = None,
               step_format: str = "{:.3g}"):
    """Latent walks (`explore.interpolate` / `traverse`): one column per step.

    Each walk is a block of rows sigma, x1, x2, x_hat (or the keys in
    `parts`), headed by its label; a walk that changes nothing
    (`walk.active` False: an inactive variable) has its label in red and
    marked "inactive". The columns are headed by the step values of the
    first walk. Returns the Figure (written atomically to path if given).
    """
    walks = list(walks)
    if not walks:
        raise ValueError("nothing to plot: no walks")
    keys = [k for k in (parts or row_names(walks[0].parts)) if k in walks[0].parts]
    if not keys:
        raise ValueError(f"nothing to plot: the walks have parts {sorted(walks[0].parts)}, "
                         f"asked for {list(parts)}")
    rows = [(row_label(k), w.parts[k]) for w in walks for k in keys]
    n = len(walks[0].steps)
    cell = 1.1 if len(rows) <= 8 else 0.75
    title_room = 0.55 if title else 0.0
    fig, axes = _image_rows(rows, n, cell=cell, left=1.6, top=0.7 + title_room)
    for c, value in enumerate(walks[0].steps):
        axes[0][c].set_title(step_format.format(value), fontsize=10)
    for i, w in enumerate(walks):
        text = f"{w.label}\nchange {w.change:.2f}" + ("" if w.active else "\ninactive")
        axes[i * len(keys)][0].annotate(
            text, xy=(0, 1), xycoords="axes fraction", xytext=(-3.2, 0),
            textcoords="offset fontsize", ha="right", va="top", fontsize=10,
            color="black" if w.active else "tab:red", fontweight="bold")
    if title:
        fig.suptitle(title)
    # Room above the step headers for the title, whatever the figure's height.
    fig.tight_layout(rect=(0, 0, 1, 1 - title_room / fig.get_figheight()))
    if path is not None:
        save_figure(fig, path)
    return fig


def walk_title(what: str, split: dict | None) -> str:
    """A walk figure's title: what it shows, and the split kind along it."""
    if split is None:
        return f"{what} (vanilla VAE: no split)"
    return (f"{what}\nsplit along the path: {split['kind']} (high-frequency share of "
            f"σ {split['high_frequency_fraction']:.2f})")


def plot_square_grid(images: np.ndarray, path: str | None = None, side: int = 10,
                     title: str | None = None):
    """A side x side mosaic of images (e.g. samples, or sigma maps)."""
    images = np.asarray(images)
    side = int(min(side, np.floor(np.sqrt(len(images)))))
    if side < 1:
        raise ValueError("nothing to plot: zero images")
    h, w = images.shape[1:3]
    tiles = _as_image(images[: side * side])
    if tiles.ndim == 3:
        mosaic = tiles.reshape(side, side, h, w).transpose(0, 2, 1, 3).reshape(side * h, side * w)
    else:
        ch = tiles.shape[-1]
        mosaic = tiles.reshape(side, side, h, w, ch).transpose(0, 2, 1, 3, 4).reshape(
            side * h, side * w, ch)
    fig, ax = plt.subplots(figsize=(6, 6))
    _show(ax, mosaic)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def plot_mean_images(means: dict, path: str | None = None, cell: float = 2.6,
                     title: str | None = None):
    """Mean images side by side, each titled by its name (the paper's Figure 9:
    CIFAR-10's mean image beside CelebA's).

    Args:
        means: name -> (H, W, C) image in [0, 1] (`reproduce.categories.mean_images`),
            drawn left to right in the dict's order.
        path: PNG to write (atomically); None returns the figure unsaved.
        cell: inches of each image's side.
        title: figure title.
    """
    if not means:
        raise ValueError("nothing to plot: means is empty")
    for name, img in means.items():
        if np.ndim(img) != 3 or np.shape(img)[-1] not in (1, 3):
            raise ValueError(f"the mean image {name!r} must be (H, W, 1 or 3), received "
                             f"shape {np.shape(img)}")
    fig, axes = plt.subplots(1, len(means), figsize=(cell * len(means), cell + 0.3),
                             squeeze=False)
    for ax, (name, img) in zip(axes[0], means.items()):
        _show(ax, _as_image(img))
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_fid_history(history: dict, extractor_name: str, path: str | None = None):
    """Fréchet distance against epoch for x_hat, x1, x2 (the paper's Figure 11).

    Args:
        history: {"epoch": [...], "x_hat": [...], "x1": [...], "x2": [...]}, as
            `evaluation.FIDHistory.history` (x_hat alone for a vanilla model).
        extractor_name: "inception" labels the axis FID; any other name is
            shown as the extractor of a Fréchet distance.
        path: PNG to write (atomically); None returns the figure unsaved.
    Returns:
        the matplotlib Figure.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    styles = {"x_hat": "-o", "x1": "--s", "x2": ":^"}
    for k in [k for k in history if k != "epoch"]:   # x_hat, x1..xK
        if history.get(k):
            ax.plot(history["epoch"], history[k], styles.get(k, "-.d"), label=row_label(k))
    ax.set_xlabel("epoch")
    inception = extractor_name == "inception"
    ax.set_ylabel("FID" if inception else f"Fréchet distance ({extractor_name})")
    ax.set_title("Keras InceptionV3 FID (not comparable with pytorch-fid)" if inception
                 else f"Fréchet distance, extractor {extractor_name}", fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_ablation_curves(history: dict, metric: str, path: str | None = None,
                         title: str | None = None):
    """The paper's Figures 14 and 15: distance after GMM resampling against epoch,
    vanilla x_hat (dotted) against the split model's x_hat, x1 and x2, mean over
    runs, with the standard deviation shaded for split x_hat and x1 as the paper
    shades them.

    Args:
        history: {"split x_hat": {"epoch", "mean", "std"}, "split x1": ...,
            "vanilla x_hat": ...} (`reproduce.table.history_means`).
        metric: the y axis's name ("FID", "FD-FMNIST", ...).
    """
    if not history:
        raise ValueError("no ablation curve to plot: no run measured one")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"vanilla x_hat": ("k", ":", "vanilla x̂"), "split x_hat": ("C0", "-", "split x̂"),
              "split x1": ("C1", "-", "split x̂₁"), "split x2": ("C2", "-", "split x̂₂")}
    for key in history:  # the parts of K > 2 components
        part = key.split(" ", 1)[-1]
        if key not in styles and key.startswith("split x") and part[1:].isdigit():
            styles[key] = (f"C{int(part[1:]) % 10}", "-", f"split {row_label(part)}")
    for key, (color, line, label) in styles.items():
        if key not in history:
            continue
        h = history[key]
        epochs, mean, std = (np.asarray(h[k], dtype=float) for k in ("epoch", "mean", "std"))
        ax.plot(epochs, mean, linestyle=line, marker="o", markersize=3, color=color,
                label=label)
        if key in ("split x_hat", "split x1") and np.any(std > 0):
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{metric} after GMM resampling (lower is better)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def plot_split_kinds(kinds: dict, path: str | None = None, title: str | None = None):
    """The split kind of each run: the share of sigma's energy at high spatial
    frequencies, one bar per run, named syntactic / semantic / none.

    Args:
        kinds: {run name: `split_kind.split_kind` dict}.
    """
    if not kinds:
        raise ValueError("no split kind to plot")
    names = list(kinds)
    fractions = [kinds[n]["high_frequency_fraction"] for n in names]
    colors = {"syntactic": "C3", "semantic": "C0", "none": "0.6"}
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 3.5))
    ax.bar(range(len(names)), fractions,
           color=[colors.get(kinds[n]["kind"], "0.3") for n in names])
    ax.axhline(SPLIT_KIND_THRESHOLD, color="k", linestyle="--", linewidth=0.8,
               label=f"syntactic above {SPLIT_KIND_THRESHOLD:g}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n{kinds[n]['kind']}" for n in names], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("σ energy at high frequency")
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title, fontsize=9)
    return _finish(fig, path)


def _show(ax, img: np.ndarray) -> None:
    """Draw an image in [0, 1], grey when it has no channel axis, pixels unsmoothed."""
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path: str | None) -> None:
    """Write a figure to PNG atomically (unless path is None) and close it."""
    if path is not None:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def figure_rgb(fig) -> np.ndarray:
    """The figure rendered as an (H, W, 3) uint8 array, as a PNG of it would show."""
    fig.set_dpi(100)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _kind(model) -> str:
    c = model.config
    if not c.split:
        return "vanilla VAE"
    k, specialised = getattr(c, "components", 2), getattr(c, "specialized", False)
    if k == 2 and not specialised:
        return "Split VAE"
    return f"Split VAE, {k} components" + (", specialised" if specialised else "")


def write_training_figures(model, directory: str, test_images: np.ndarray, n: int = 10,
                           seed: int = 0, dataset: str = "") -> list[str]:
    """The figures of a trained model: DIR/generated.png and DIR/reconstructed.png.

    generated.png: n samples from the prior (`model.generate(n, seed=seed)`),
    rows sigma, x1, x2, x_hat; reconstructed.png: the first n test images on
    top of their reconstructions. Returns the paths written.
    """
    kind = _kind(model)
    paths = [os.path.join(directory, "generated.png"),
             os.path.join(directory, "reconstructed.png")]
    plot_split_grid(model.generate(n=n, seed=seed), paths[0], n=n,
                    title=f"{kind}, {dataset}: generated (z ~ N(0, I))")
    plot_split_grid(model.reconstruct(test_images[:n]), paths[1], n=n,
                    inputs=test_images[:n], title=f"{kind}, {dataset}: reconstructed (test)")
    return paths


def write_evaluation_figures(model, samples: dict, directory: str, side: int = 10,
                             dataset: str = "") -> list[str]:
    """The figures of an evaluation (`evaluation.evaluate_model`'s samples).

    DIR/generated.png (rows sigma, x1, x2, x_hat of prior samples),
    DIR/samples_gen.png and DIR/samples_gmm.png (side x side grids of x_hat
    from the prior and from the GMM) and, for a Split VAE, DIR/sigma.png
    (sigma maps of the prior samples). Returns the paths written.
    """
    kind = _kind(model)
    path = os.path.join(directory, "generated.png")
    plot_split_grid(samples["gen"], path, n=side,
                    title=f"{kind}, {dataset}: generated (z ~ N(0, I))")
    paths = [path]
    for src, what in (("gen", "z ~ N(0, I)"), ("gmm", "z ~ GMM")):
        paths.append(os.path.join(directory, f"samples_{src}.png"))
        plot_square_grid(samples[src]["x_hat"], paths[-1], side=side,
                         title=f"{kind}, {dataset}: x_hat, {what}")
    if "sigma" in samples["gen"]:
        paths.append(os.path.join(directory, "sigma.png"))
        plot_square_grid(samples["gen"]["sigma"], paths[-1], side=side,
                         title=f"{dataset}: sigma maps (z ~ N(0, I))")
    elif components_of(samples["gen"]):
        k = components_of(samples["gen"])
        paths.append(os.path.join(directory, "maps.png"))
        plot_square_grid(maps_rgb(samples["gen"]), paths[-1], side=side,
                         title=f"{dataset}: the {k} maps in colour (z ~ N(0, I))")
    return paths
