"""Figures: each row shows the array it should, read back from the rendered pixels."""

import os

import matplotlib

matplotlib.use("Agg")  # render off-screen; the library forces no backend

import numpy as np
import pytest

import split_vae.plotting
from split_vae.plotting import (plot_split_grid, plot_square_grid, write_evaluation_figures,
                                write_training_figures)

H, W = 8, 8


def render(fig):
    """The figure as an (rows, cols, 4) uint8 array, origin at the top."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def drawn_image(fig, canvas, image_artist, h, w):
    """The h x w grid of pixel values drawn by an AxesImage, sampled at cell centres."""
    box = image_artist.get_window_extent()
    top = canvas.shape[0]
    xs = box.x0 + (np.arange(w) + 0.5) * box.width / w
    ys = box.y1 - (np.arange(h) + 0.5) * box.height / h    # display y grows upwards
    rows = np.round(top - ys).astype(int)
    cols = np.round(xs).astype(int)
    return canvas[rows[:, None], cols[None, :], :3].astype("float64") / 255.0


def distinct_parts(n, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(size=(n, H, W, c)).astype("float32")
            for k, c in (("sigma", 1), ("x1", channels), ("x2", channels),
                         ("x_hat", channels))}


def assert_rows_show(fig, expected_rows, n):
    import matplotlib.pyplot as plt

    canvas = render(fig)
    axes = np.array(fig.axes).reshape(len(expected_rows), -1)
    assert axes.shape[1] == n
    for r, images in enumerate(expected_rows):
        for c in range(n):
            (artist,) = axes[r, c].get_images()
            got = drawn_image(fig, canvas, artist, H, W)
            want = np.clip(images[c], 0, 1)
            want = np.repeat(want, 3, axis=-1) if want.shape[-1] == 1 else want
            np.testing.assert_allclose(got, want, atol=2.5 / 255,
                                       err_msg=f"row {r}, column {c}")
    plt.close(fig)


def test_split_grid_rows_are_sigma_x1_x2_x_hat():
    parts = distinct_parts(4)
    fig = plot_split_grid(dict(parts, z=np.zeros((4, 3))), n=3)
    assert_rows_show(fig, [parts[k] for k in ("sigma", "x1", "x2", "x_hat")], 3)


def test_reconstruction_grid_draws_the_input_on_top():
    parts = distinct_parts(5, seed=1)
    inputs = np.random.default_rng(9).uniform(size=(5, H, W, 1)).astype("float32")
    fig = plot_split_grid(parts, n=5, inputs=inputs)
    assert_rows_show(fig, [inputs] + [parts[k] for k in ("sigma", "x1", "x2", "x_hat")], 5)


def test_vanilla_grid_draws_x_hat_alone_in_colour():
    parts = distinct_parts(3, channels=3, seed=2)
    fig = plot_split_grid({"x_hat": parts["x_hat"]}, n=10)     # n clipped to 3
    assert_rows_show(fig, [parts["x_hat"]], 3)


def test_values_outside_0_1_are_clipped_and_nothing_to_plot_is_an_error():
    parts = distinct_parts(2)
    parts["x1"] = parts["x1"] * 3 - 1
    fig = plot_split_grid(parts, n=2)
    assert_rows_show(fig, [parts[k] for k in ("sigma", "x1", "x2", "x_hat")], 2)
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_split_grid({"z": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="zero samples"):
        plot_split_grid({"x_hat": np.zeros((0, H, W, 1))})


def test_square_grid_tiles_row_major():
    import matplotlib.pyplot as plt

    images = np.random.default_rng(3).uniform(size=(10, H, W, 1)).astype("float32")
    fig = plot_square_grid(images, side=3)                     # 3x3 of the first 9
    canvas = render(fig)
    (artist,) = fig.axes[0].get_images()
    mosaic = drawn_image(fig, canvas, artist, 3 * H, 3 * W)[..., 0]
    for i in range(9):
        r, c = divmod(i, 3)
        np.testing.assert_allclose(mosaic[r * H:(r + 1) * H, c * W:(c + 1) * W],
                                   images[i, ..., 0], atol=2.5 / 255, err_msg=f"tile {i}")
    plt.close(fig)


class FakeModel:
    """Stands in for a SplitVAE: known outputs, and the calls it received."""

    def __init__(self, split=True, n_max=6, seed=0):
        self.config = type("Config", (), {"split": split})()
        self.parts = distinct_parts(n_max, seed=seed)
        if not split:
            self.parts = {"x_hat": self.parts["x_hat"]}
        self.calls = []

    def generate(self, n, seed=None):
        self.calls.append(("generate", n, seed))
        return {k: v[:n] for k, v in self.parts.items()}

    def reconstruct(self, images):
        self.calls.append(("reconstruct", images))
        return {k: v[:len(images)] for k, v in self.parts.items()}


@pytest.fixture()
def drawn(monkeypatch):
    """What each figure writer asks the two plot functions to draw, by file name."""
    calls = {}
    for name in ("plot_split_grid", "plot_square_grid"):
        real = getattr(split_vae.plotting, name)

        def record(images, path=None, *args, _real=real, **kwargs):
            calls[os.path.basename(path)] = dict(kwargs, images=images)
            return _real(images, path, *args, **kwargs)

        monkeypatch.setattr(split_vae.plotting, name, record)
    return calls


def test_training_figures_show_prior_samples_and_test_reconstructions(tmp_path, drawn):
    model = FakeModel()
    test = np.random.default_rng(4).uniform(size=(6, H, W, 1)).astype("float32")
    paths = write_training_figures(model, str(tmp_path), test, n=3, seed=7, dataset="toy")
    assert paths == [str(tmp_path / "generated.png"), str(tmp_path / "reconstructed.png")]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert model.calls[0] == ("generate", 3, 7)
    np.testing.assert_array_equal(model.calls[1][1], test[:3])
    gen, rec = drawn["generated.png"], drawn["reconstructed.png"]
    assert gen.get("inputs") is None and gen["n"] == 3
    np.testing.assert_array_equal(rec["inputs"], test[:3])
    np.testing.assert_array_equal(rec["images"]["x2"], model.parts["x2"][:3])
    assert gen["title"].startswith("Split VAE, toy")
    write_training_figures(FakeModel(split=False), str(tmp_path), test, n=2)
    assert drawn["generated.png"]["title"].startswith("vanilla VAE")


def test_evaluation_figures_draw_each_source_and_sigma_only_when_split(tmp_path, drawn):
    model = FakeModel()
    rng = np.random.default_rng(5)
    samples = {src: {k: rng.uniform(size=(9, H, W, 1)).astype("float32")
                     for k in ("sigma", "x1", "x2", "x_hat")} for src in ("gen", "gmm")}
    paths = write_evaluation_figures(model, samples, str(tmp_path), side=3, dataset="toy")
    names = ["generated.png", "samples_gen.png", "samples_gmm.png", "sigma.png"]
    assert paths == [str(tmp_path / n) for n in names]
    assert all((tmp_path / n).stat().st_size > 0 for n in names)
    assert drawn["generated.png"]["images"] is samples["gen"]
    for src in ("gen", "gmm"):
        assert drawn[f"samples_{src}.png"]["images"] is samples[src]["x_hat"]
        assert drawn[f"samples_{src}.png"]["side"] == 3
    assert drawn["sigma.png"]["images"] is samples["gen"]["sigma"]
    vanilla = {src: {"x_hat": s["x_hat"]} for src, s in samples.items()}
    out = tmp_path / "vanilla"
    paths = write_evaluation_figures(FakeModel(split=False), vanilla, str(out), side=3)
    assert sorted(os.path.basename(p) for p in paths) == sorted(names[:3])
    assert not (out / "sigma.png").exists()
