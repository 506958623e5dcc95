"""Latent walks: the paths (linear, spherical, traversal), inactive variables, the
figure and the `explore` command."""

import os

import matplotlib

matplotlib.use("Agg")  # render off-screen; the library forces no backend

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import run_cli, tiny_images, tiny_model  # noqa: E402
from split_vae import explore  # noqa: E402
from split_vae.split_kind import split_kind_of_parts  # noqa: E402
from split_vae.plotting import plot_walks, walk_title  # noqa: E402


def responsive_model():
    """A tiny untrained model whose decoder responds to z as a trained one does.

    Untrained, x_hat moves by about 0.02 over a +-3 traversal (below
    INACTIVE_CHANGE); the Dense from z to the embedding scaled by 10 makes
    that 0.16-0.20, the size a trained model's active variables show."""
    model = tiny_model(latent_dim=4)
    kernel = model.latent.get_layer("to_embedding").kernel
    kernel.assign(keras.ops.convert_to_numpy(kernel) * 10.0)
    return model


@pytest.fixture(scope="module")
def model():
    return responsive_model()


def silence(model, dim):
    """Zero the row of `dim` in the Dense from z to the embedding: the decoder
    then ignores that variable exactly (an inactive variable)."""
    kernel = model.latent.get_layer("to_embedding").kernel
    value = keras.ops.convert_to_numpy(kernel).copy()
    value[dim] = 0.0
    kernel.assign(value)


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------
def test_linear_path_has_both_ends_and_even_steps():
    a, b = np.array([1.0, -2.0, 0.5]), np.array([3.0, 2.0, -0.5])
    z = explore.interpolation_path(a, b, steps=5, method="linear")
    assert z.shape == (5, 3) and z.dtype == np.float32
    np.testing.assert_allclose(z[0], a)
    np.testing.assert_allclose(z[-1], b)
    np.testing.assert_allclose(z[2], [2.0, 0.0, 0.0])             # the midpoint
    np.testing.assert_allclose(np.diff(z, axis=0), np.tile((b - a) / 4, (4, 1)), rtol=1e-6)


def test_spherical_path_keeps_the_norm_and_turns_at_constant_speed():
    a = np.array([2.0, 0.0, 0.0])
    b = np.array([0.0, 4.0, 0.0])                                  # 90 degrees apart
    z = explore.interpolation_path(a, b, steps=7, method="spherical").astype("float64")
    np.testing.assert_allclose(z[0], a, atol=1e-6)
    np.testing.assert_allclose(z[-1], b, atol=1e-6)
    # the norm goes linearly from 2 to 4 (a linear path would dip to sqrt(5) = 2.24 mid-way)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), np.linspace(2, 4, 7), rtol=1e-6)
    angles = np.arctan2(z[:, 1], z[:, 0])
    np.testing.assert_allclose(angles, np.linspace(0, np.pi / 2, 7), atol=1e-6)
    np.testing.assert_allclose(z[:, 2], 0.0)
    # parallel ends: no great circle, the linear path
    par = explore.interpolation_path(a, 3 * a, steps=3, method="spherical")
    np.testing.assert_allclose(par, [[2, 0, 0], [4, 0, 0], [6, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize("a, b, kwargs, match", [
    ([0.0, 1.0], [1.0, 2.0, 3.0], {}, "one length"),
    ([[0.0, 1.0]], [[1.0, 2.0]], {}, "one length"),
    ([0.0, np.nan], [1.0, 2.0], {}, "NaN"),
    ([0.0, 1.0], [1.0, 2.0], {"method": "cubic"}, "method"),
    ([0.0, 1.0], [1.0, 2.0], {"steps": 1}, "steps"),
    ([0.0, 1.0], [1.0, 2.0], {"steps": 2.5}, "steps"),
])
def test_bad_interpolations_are_refused(a, b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        explore.interpolation_path(np.array(a), np.array(b), **kwargs)


def test_dimensions_are_parsed_and_checked():
    assert explore.parse_dims("all", 3) == [0, 1, 2]
    assert explore.parse_dims("2,0", 3) == [2, 0]
    assert explore.parse_dims(1, 3) == [1]
    assert explore.parse_dims([0, 2], 3) == [0, 2]
    for bad in ("3", "-1", "x", [], "0,7"):
        with pytest.raises(ValueError, match="dimensions"):
            explore.parse_dims(bad, 3)


# ---------------------------------------------------------------------------
# Change and inactive variables
# ---------------------------------------------------------------------------
def test_path_change_is_the_mean_pixel_range():
    x = np.zeros((3, 2, 2, 1))
    x[1, 0, 0, 0] = 0.4           # one pixel of four moves by 0.4, then back
    x[2, 1, 1, 0] = -0.2
    assert explore.path_change(x) == pytest.approx((0.4 + 0.2) / 4)
    with pytest.raises(ValueError, match="2 steps"):
        explore.path_change(x[:1])


def test_the_inactive_cutoff_sits_at_inactive_change():
    assert explore.INACTIVE_CHANGE == 0.05

    def walk(change):
        return explore.Walk("z[0]", np.zeros((2, 1)), np.zeros(2), {}, None, change)

    assert not walk(0.0499).active
    assert walk(0.0501).active


def test_traversal_moves_one_variable_and_finds_the_silenced_one(model):
    silence(model, 2)
    values = np.linspace(-2, 2, 5)
    base = np.array([0.3, -0.1, 0.2, 0.5], "float32")
    walks = explore.traverse(model, "all", values, base=base)
    assert [w.label for w in walks] == ["z[0]", "z[1]", "z[2]", "z[3]"]
    for d, w in enumerate(walks):
        expected = np.tile(base, (5, 1))
        expected[:, d] = values
        np.testing.assert_allclose(w.z, expected)
        np.testing.assert_allclose(w.steps, values)
        # each walk is what decode gives for its own latent vectors
        direct = model.decode(expected)
        for k in ("sigma", "x1", "x2", "x_hat"):
            np.testing.assert_allclose(w.parts[k], direct[k], atol=1e-6)
        assert w.change == pytest.approx(explore.path_change(direct["x_hat"]), abs=1e-6)
        # the same kind and numbers; decoded in other batches, the floats of
        # sigma may differ in their last bits (the batched path pads its last batch)
        expected_split = split_kind_of_parts(direct)
        assert set(w.split) == set(expected_split)
        for key, value in expected_split.items():
            if isinstance(value, float):
                assert w.split[key] == pytest.approx(value, rel=1e-6), key
            else:
                assert w.split[key] == value, key
    assert walks[2].change == 0.0 and not walks[2].active
    assert all(w.active for i, w in enumerate(walks) if i != 2), [w.change for w in walks]
    table = explore.format_traversal(walks)
    assert "z[2]" in table and "INACTIVE" in table.splitlines()[3]
    assert "3 active, 1 inactive of 4" in table


def test_traversal_around_an_image_starts_from_its_z_mean(model):
    x = tiny_images(1, seed=3)[0]
    (w,) = explore.traverse(model, [1], values=[-1.0, 1.0], base=x)
    z_mean = model.encode(x[None])[0][0]
    np.testing.assert_allclose(w.z[:, [0, 2, 3]], np.tile(z_mean[[0, 2, 3]], (2, 1)),
                               atol=1e-6)
    with pytest.raises(ValueError, match="latent vector of shape"):
        explore.traverse(model, [1], base=np.zeros(5))
    with pytest.raises(ValueError, match="values"):
        explore.traverse(model, [1], values=[1.0])


def test_interpolating_images_walks_between_their_z_means(model):
    x = tiny_images(2, seed=4)
    walk = explore.interpolate(model, x[0], x[1], steps=4, method="spherical")
    z_mean = model.encode(x)[0]
    np.testing.assert_allclose(walk.z[0], z_mean[0], atol=1e-5)
    np.testing.assert_allclose(walk.z[-1], z_mean[1], atol=1e-5)
    np.testing.assert_allclose(walk.parts["x_hat"][0], model.reconstruct(x[:1])["x_hat"][0],
                               atol=1e-5)
    np.testing.assert_allclose(walk.steps, [0, 1 / 3, 2 / 3, 1])
    assert walk.split["kind"] in ("syntactic", "semantic", "none")


def test_a_vanilla_model_has_no_split_kind():
    vanilla = tiny_model(latent_dim=4, split=False)
    walk = explore.interpolate(vanilla, np.zeros(4), np.ones(4), steps=3)
    assert walk.split is None and set(walk.parts) == {"x_hat"}
    assert explore.overall_split([walk]) is None
    assert "no split" in walk_title("walk", None)


# ---------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------
def test_walk_figure_has_a_block_per_walk_and_marks_inactive_ones(model, tmp_path):
    silence(model, 2)
    walks = explore.traverse(model, [1, 2], values=np.linspace(-3, 3, 3))
    assert walks[0].active and not walks[1].active
    path = tmp_path / "walk.png"
    fig = plot_walks(walks, str(path), title="t")
    assert path.stat().st_size > 0
    axes = np.array(fig.axes).reshape(8, 3)                        # 2 walks x 4 rows, 3 steps
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["σ", "x̂₁", "x̂₂", "x̂"] * 2
    assert [axes[0, c].get_title() for c in range(3)] == ["-3", "0", "3"]
    labels = {ax: [t.get_text() for t in ax.texts] for ax in axes[:, 0] if ax.texts}
    assert list(labels.values()) == [[f"z[1]\nchange {walks[0].change:.2f}"],
                                     ["z[2]\nchange 0.00\ninactive"]]
    # the image drawn is the walk's, row by row (sigma of z[2] in row 4)
    drawn = axes[4, 1].get_images()[0].get_array()
    np.testing.assert_allclose(drawn, walks[1].parts["sigma"][1, ..., 0], atol=1e-6)
    only = plot_walks(walks, parts=["x_hat"])
    assert len(only.axes) == 6
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_walks([])


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_explore_command_draws_an_interpolation_and_a_traversal(tmp_path):
    model = responsive_model()          # its own: the others silence variables
    silence(model, 0)
    saved = str(tmp_path / "m.keras")
    model.save(saved)
    walk = str(tmp_path / "walk.png")
    proc = run_cli("explore", "--model", saved, "--interpolate", "3,17", "--method",
               "spherical", "--steps", "5", "--dataset", "digits", "--out", walk,
               check=True)
    assert os.path.getsize(walk) > 0
    assert proc.stdout.startswith("split kind along the path: ")
    trav = str(tmp_path / "trav.png")
    proc = run_cli("explore", "--model", saved, "--traverse", "all", "--range", "-2", "2",
               "--dataset", "digits", "--base", "4", "--out", trav, check=True)
    lines = proc.stdout.splitlines()
    assert lines[2].startswith("z[0]") and lines[2].endswith("INACTIVE")
    assert "3 active, 1 inactive of 4 traversed" in proc.stdout
    assert os.path.getsize(trav) > 0
    bad = run_cli("explore", "--model", saved, "--interpolate", "3", "--out", walk)
    assert bad.returncode == 2 and "--interpolate expects two numbers" in bad.stderr
    bad = run_cli("explore", "--model", saved, "--traverse", "9", "--out", walk)
    assert bad.returncode == 2 and "latent dimensions must be in 0..3" in bad.stderr
