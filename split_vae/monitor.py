"""Watching the split form while a model trains: grids every N epochs, TensorBoard.

`SplitGrids` decodes a fixed set of latent codes and reconstructs a fixed set
of test images every N epochs and draws both as the paper's rows sigma, x1,
x2, x_hat (Asperti, Bugo, Filippini, IEEE Access 2022, Figures 1-4), titled
with the split kind of the reconstructions (`split_kind.split_kind_of_parts`):
whether the model settles on a syntactic split (sigma a high-frequency
pattern) or a semantic one (sigma follows shapes) shows epoch by epoch. The
grids go to PNG files and, when asked, to TensorBoard as images.

On several workers every worker decodes (the computation is the same on all
of them) and only the chief writes.
"""

from __future__ import annotations

import logging
import os

import keras
import numpy as np

from . import checks
from .distribute import is_chief
from .split_kind import split_kind_of_parts
from .plotting import figure_rgb, plot_split_grid, save_figure

logger = logging.getLogger(__name__)


class SplitGrids(keras.callbacks.Callback):
    """Draw the sigma/x1/x2/x_hat grids of fixed codes and fixed images every N epochs.

    Writes DIR/epoch_EEEE_generated.png (the decoded latent codes) and
    DIR/epoch_EEEE_reconstructed.png (the images on top of their
    reconstructions), EEEE the epoch as Keras prints it (1 after the first
    epoch), after every `every`-th epoch and after the last one. With
    `tensorboard_dir`, the same figures go to TensorBoard as the images
    "generated" and "reconstructed" (step: the epoch), with the split's
    high-frequency share as the scalar "split/high_frequency_fraction".

    Args:
        directory: folder of the PNG files (created), or None for
            TensorBoard alone.
        images: the fixed test images (N, H, W, C) in [0, 1] to reconstruct,
            or None.
        n: how many latent codes (columns of the generated grid).
        every: draw after every N-th epoch.
        seed: the latent codes are `numpy.random.default_rng(seed)` draws
            from N(0, I), fixed for the whole run (and across resumes).
        tensorboard_dir: a TensorBoard log folder for the images, or None.
        dataset: a name for the titles.
    """

    def __init__(self, directory=None, images=None, n: int = 8, every: int = 1, seed: int = 0,
                 tensorboard_dir=None, dataset: str = ""):
        super().__init__()
        self.every = checks.integer(every, "every")
        self.n = checks.integer(n, "n")
        if directory is None and tensorboard_dir is None:
            raise ValueError("SplitGrids needs a directory, a tensorboard_dir, or both")
        self.directory = None if directory is None else os.fspath(directory)
        self.images = None if images is None else checks.images(images, "grid images")
        self.seed = seed
        self.tensorboard_dir = tensorboard_dir
        self.dataset = dataset
        self.written: list[str] = []
        self._writer = None

    def on_train_begin(self, logs=None):
        self.z = np.random.default_rng(self.seed).standard_normal(
            (self.n, self.model.latent_dim)).astype("float32")
        self._epochs = (self.params or {}).get("epochs")

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every and done != self._epochs:
            return
        # Every worker decodes; only the chief draws and writes.
        generated = self.model.decode(self.z)
        reconstructed = (None if self.images is None
                         else self.model.reconstruct(self.images))
        if is_chief():
            self._write(done, generated, reconstructed)

    def _write(self, epoch, generated, reconstructed):
        figures = {"generated": (generated, None, "z ~ N(0, I), fixed")}
        if reconstructed is not None:
            figures["reconstructed"] = (reconstructed, self.images, "fixed test images")
        kind = split_kind_of_parts(reconstructed if reconstructed is not None else generated)
        what = "no split (vanilla)" if kind is None else (
            f"split: {kind['kind']} (σ high-freq. {kind['high_frequency_fraction']:.2f})")
        logger.info("epoch %d: %s", epoch, what)
        images = {}
        for name, (parts, inputs, about) in figures.items():
            fig = plot_split_grid(parts, n=self.n, inputs=inputs,
                                  title=f"{self.dataset}, epoch {epoch}: {about}\n{what}")
            if self.tensorboard_dir is not None:
                images[name] = figure_rgb(fig)
            path = None
            if self.directory is not None:
                os.makedirs(self.directory, exist_ok=True)
                path = os.path.join(self.directory, f"epoch_{epoch:04d}_{name}.png")
                self.written.append(path)
            save_figure(fig, path)
        if self.tensorboard_dir is not None:
            self._to_tensorboard(epoch, images, kind)

    def _to_tensorboard(self, epoch, images, kind):
        # TensorFlow's summary writer: the event files TensorBoard reads (the
        # same writer keras.callbacks.TensorBoard uses for the scalars).
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.fspath(self.tensorboard_dir))
        with self._writer.as_default(step=epoch):
            for name, rgb in images.items():
                tf.summary.image(name, rgb[None], step=epoch)
            if kind is not None:
                tf.summary.scalar("split/high_frequency_fraction",
                                  kind["high_frequency_fraction"], step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
