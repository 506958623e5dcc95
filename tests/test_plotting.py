"""Figures: each row shows the array it should, read back from the rendered pixels."""

import matplotlib

matplotlib.use("Agg")  # render off-screen; the library forces no backend

import numpy as np
import pytest

from split_vae.plotting import plot_split_grid, plot_square_grid

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
