"""K components (the paper's Section VII; docs/components.md): the composition
against numpy, the paper's K = 2 against the outputs recorded before K existed,
the pairing of shared layers, the prior on the maps, and every reader of parts
(mix, split kind, figures, export, tables) at K = 3."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from helpers import ROOT, tiny_config, tiny_images, tiny_model
import split_vae
from split_vae import SplitVAE, SplitVAEConfig
from split_vae import parts as parts_lib
from split_vae.split_kind import one_against_the_rest, split_kind, split_kind_of_parts

GOLDEN = os.path.join(ROOT, "tests", "data", "paper_model_golden.json")


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _raw(model, layer_names, z):
    """The decoder's named layers' outputs (before PartsActivation) for latent z."""
    dec = model.decoder
    probe = keras.Model(dec.input, [dec.get_layer(n).output for n in layer_names])
    out = probe(model.embed_latent(ops.convert_to_tensor(z)))
    return [np.asarray(ops.convert_to_numpy(o), dtype=np.float64)
            for o in (out if isinstance(out, (list, tuple)) else [out])]


# --- the configuration ------------------------------------------------------
@pytest.mark.parametrize("changes, channels", [
    ({}, 3), ({"components": 3}, 6), ({"components": 4}, 8),
    ({"components": 3, "image_shape": (16, 16, 3)}, 12), ({"specialized": True}, 4),
    ({"split": False}, 1)])
def test_the_decoder_has_k_maps_and_k_images(changes, channels):
    config = tiny_config(**changes)
    assert config.output_channels == channels
    assert SplitVAE(config).decoder.output.shape[-1] == channels


@pytest.mark.parametrize("changes, message", [
    ({"components": 1}, "components must be an integer >= 2"),
    ({"components": 2.5}, "components must be"),
    ({"components": True}, "components must be"),
    ({"split": False, "components": 3}, "a vanilla model"),
    ({"split": False, "specialized": True}, "a vanilla model"),
    ({"split": False, "map_entropy": 0.1}, "a vanilla model"),
    ({"map_entropy": float("nan")}, "map_entropy must be a finite number"),
    ({"specialized": "yes"}, "specialized must be True or False")])
def test_a_wrong_component_field_is_named(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**changes)


def test_with_split_false_is_the_vanilla_ablation_of_any_k():
    k3 = tiny_config(components=3, specialized=True, map_entropy=0.2)
    vanilla = k3.with_split(False)
    assert vanilla == tiny_config(split=False)
    assert k3.with_split(True) == k3
    assert tiny_config(components=2).paper_layout and not k3.paper_layout


# --- the composition ----------------------------------------------------------
def test_k3_composition_is_the_softmax_mix_of_its_images():
    model = tiny_model(components=3, compile=False)
    c = model.image_shape[-1]
    z = np.random.default_rng(1).standard_normal((5, model.latent_dim)).astype("float32")
    (raw,) = _raw(model, ["dec_out"], z)
    maps = _softmax(raw[..., :3])
    images = [_sigmoid(raw[..., 3 + k * c:3 + (k + 1) * c]) for k in range(3)]
    expected = sum(maps[..., k:k + 1] * images[k] for k in range(3))
    out = model.decode(z)
    assert sorted(out) == ["sigma1", "sigma2", "sigma3", "x1", "x2", "x3", "x_hat"]
    np.testing.assert_allclose(out["x_hat"], expected, atol=2e-6)
    for k in range(3):
        np.testing.assert_allclose(out[f"sigma{k + 1}"][..., 0], maps[..., k], atol=2e-6)
        np.testing.assert_allclose(out[f"x{k + 1}"], images[k], atol=2e-6)
    np.testing.assert_allclose(parts_lib.maps_of(out).sum(-1), 1.0, atol=1e-5)
    # the model's call is the same composition
    x = tiny_images(3, model.image_shape)
    np.testing.assert_allclose(ops.convert_to_numpy(model(x)),
                               model.reconstruct(x)["x_hat"], atol=1e-6)


def test_specialised_branches_each_give_a_logit_and_an_image():
    model = tiny_model(components=3, specialized=True, image_shape=(16, 16, 3), compile=False)
    names = [f"dec_out_part{k}" for k in (1, 2, 3)]
    z = np.random.default_rng(2).standard_normal((4, model.latent_dim)).astype("float32")
    heads = _raw(model, names, z)
    maps = _softmax(np.concatenate([h[..., :1] for h in heads], axis=-1))
    out = model.decode(z)
    expected = sum(maps[..., k:k + 1] * _sigmoid(heads[k][..., 1:]) for k in range(3))
    np.testing.assert_allclose(out["x_hat"], expected, atol=2e-6)
    np.testing.assert_allclose(out["x2"], _sigmoid(heads[1][..., 1:]), atol=2e-6)
    # each branch has its own last scale block
    blocks = {layer.name for layer in model.decoder.layers if "_part" in layer.name}
    assert {f"dec_scale1_part{k}_block0_conv0" for k in (1, 2, 3)} <= blocks


def test_k2_is_the_paper_model_recorded_before_components_existed():
    with open(GOLDEN) as f:
        golden = json.load(f)
    fresh = SplitVAE(split_vae.get_preset("digits"), seed=0)
    assert [[w.path, list(w.shape)] for w in fresh.weights] == golden["weights"]
    model = SplitVAE.from_pretrained("digits")
    z = np.random.default_rng(golden["z_seed"]).standard_normal(
        (3, model.latent_dim)).astype("float32")
    out = model.decode(z)
    assert sorted(out) == ["sigma", "x1", "x2", "x_hat"]
    for key, values in golden["decode"].items():
        np.testing.assert_allclose(out[key], np.asarray(values), atol=2e-5, err_msg=key)
    assert float(np.sum(out["x_hat"], dtype=np.float64)) == pytest.approx(
        golden["x_hat_sum"], abs=1e-3)


@pytest.mark.parametrize("changes", [{"components": 3},
                                     {"components": 3, "specialized": True}])
def test_a_seed_initialises_every_shared_layer_as_the_paper_model(changes):
    def weights(seed, **kw):
        keras.utils.set_random_seed(seed)
        m = SplitVAE(tiny_config(**kw), seed=seed)
        return {w.path: np.asarray(ops.convert_to_numpy(w)) for w in m.weights}

    paper, variant, other = weights(3), weights(3, **changes), weights(4)
    shared = [p for p in paper if p in variant and "dec_out" not in p]
    kernels = [p for p in shared if p.endswith("kernel")]
    assert len(kernels) >= 8
    for p in shared:
        np.testing.assert_array_equal(paper[p], variant[p], err_msg=p)
    # not equal by construction: another seed differs
    assert any(not np.array_equal(paper[p], other[p]) for p in kernels)


def test_a_specialised_k2_model_round_trips_untrained(tmp_path):
    from helpers import assert_keras_round_trip

    model = tiny_model(specialized=True, map_entropy=0.05)
    loaded = assert_keras_round_trip(model, tmp_path / "k2s.keras")
    assert sorted(loaded.decode(np.zeros((1, 4), "float32"))) == ["sigma", "x1", "x2", "x_hat"]


# --- the prior on the maps ----------------------------------------------------
@pytest.mark.parametrize("weight", [0.0, 0.3, -0.2])
def test_the_map_prior_adds_its_weight_times_the_maps_entropy(weight):
    model = tiny_model(components=3, map_entropy=weight, compile=False)
    x = tiny_images(4, model.image_shape)
    y_pred = model(x)  # x_hat alone: the loss recomputes the rest, without sampling
    terms, _ = model._terms(ops.convert_to_tensor(x), y_pred)
    plain = tiny_model(components=3, compile=False)
    plain_terms, _ = plain._terms(ops.convert_to_tensor(x), ops.convert_to_numpy(plain(x)))
    maps = parts_lib.maps_of(model.reconstruct(x))
    entropy = -np.sum(maps * np.log(np.maximum(maps, 1e-12)), axis=-1).reshape(4, -1).sum(1)
    np.testing.assert_allclose(float(terms["loss"]),
                               float(plain_terms["loss"]) + weight * entropy.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(terms["map_entropy"]), entropy.mean() / 256, rtol=1e-5)


def test_the_paper_model_logs_what_it_logged():
    assert tiny_model(compile=False).entropy_tracker is None
    assert tiny_model(components=3, compile=False).entropy_tracker is not None
    assert tiny_model(map_entropy=0.1, compile=False).entropy_tracker is not None


# --- the readers of parts ------------------------------------------------------
def test_mix_of_k_parts_takes_equal_consecutive_slices():
    a, b, c = (np.full((7, 2), v) for v in (1.0, 2.0, 3.0))
    np.testing.assert_array_equal(parts_lib.mix_images(a, b, c)[:, 0], [1, 1, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(parts_lib.mix_images(a, b)[:, 0], [1, 1, 1, 2, 2, 2, 2])
    with pytest.raises(ValueError, match="same shape"):
        parts_lib.mix_images(a, b[:-1])


def _checker_parts(k=3, n=4, side=16, smooth=False, seed=0):
    """K maps, one of which is a checkerboard (or a smooth blob) on an image
    where the parts differ."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    if smooth:
        pattern = np.exp(-((yy - side / 2) ** 2 + (xx - side / 2) ** 2) / (side / 3) ** 2)
    else:
        pattern = ((yy + xx) % 2).astype(float)
    first = 0.1 + 0.8 * pattern
    maps = [np.broadcast_to(first, (n, side, side))[..., None]]
    rest = (1 - maps[0]) / (k - 1)
    maps += [rest] * (k - 1)
    images = [rng.random((n, side, side, 1)) for _ in range(k)]
    return {**{f"sigma{i + 1}": m for i, m in enumerate(maps)},
            **{f"x{i + 1}": x for i, x in enumerate(images)}}


def test_the_split_kind_of_k_maps_tells_a_checkerboard_from_a_shape():
    assert split_kind_of_parts(_checker_parts())["kind"] == "syntactic"
    assert split_kind_of_parts(_checker_parts(smooth=True))["kind"] == "semantic"
    same = _checker_parts()
    for k in ("x2", "x3"):
        same[k] = same["x1"]  # the maps act on nothing: no split
    assert split_kind_of_parts(same)["kind"] == "none"
    assert split_kind_of_parts(_checker_parts())["components"] == 3


def test_the_split_kind_of_k_maps_at_k_2_is_the_papers():
    rng = np.random.default_rng(5)
    sigma = rng.random((6, 16, 16, 1))
    x1, x2 = rng.random((6, 16, 16, 1)), rng.random((6, 16, 16, 1))
    m, x, r = one_against_the_rest([sigma, 1 - sigma], [x1, x2])
    np.testing.assert_allclose(r[:6], x2, atol=1e-12)
    np.testing.assert_allclose(r[6:], x1, atol=1e-12)
    pooled = split_kind(m, x1=x, x2=r)
    paper = split_kind(sigma, x1=x1, x2=x2)
    assert pooled["high_frequency_fraction"] == pytest.approx(
        paper["high_frequency_fraction"], abs=1e-12)
    assert pooled["sigma_variance"] == pytest.approx(paper["sigma_variance"], rel=1e-12)


def test_figures_draw_the_k_maps_the_k_images_then_x_hat():
    from split_vae.plotting import maps_rgb, plot_split_grid

    parts = _checker_parts(n=3)
    parts["x_hat"] = sum(parts[f"sigma{i}"] * parts[f"x{i}"] for i in (1, 2, 3))
    fig = plot_split_grid(parts, n=3)
    labels = [ax.get_ylabel() for ax in fig.axes[::3]]
    assert labels == ["σ₁", "σ₂", "σ₃", "x̂₁", "x̂₂", "x̂₃", "x̂"]
    rgb = maps_rgb(parts)
    assert rgb.shape == (3, 16, 16, 3)
    # a pixel taken by one component has its colour
    one = {"sigma1": np.zeros((1, 2, 2, 1)), "sigma2": np.ones((1, 2, 2, 1)),
           "sigma3": np.zeros((1, 2, 2, 1))}
    np.testing.assert_allclose(maps_rgb(one)[0, 0, 0], (0.17, 0.63, 0.17), atol=1e-6)


def test_export_names_k_parts_and_refuses_what_the_model_lacks(tmp_path):
    from split_vae import export

    assert export.parse_parts("x3,sigma2,mix") == ("x3", "sigma2", "mix")
    for bad in ("x0", "y1", "sigma0", "x_3"):
        with pytest.raises(ValueError, match="distinct names"):
            export.parse_parts(bad)
    samples = {"x_hat": np.zeros((2, 4, 4, 1)), "x1": np.zeros((2, 4, 4, 1)),
               "x2": np.zeros((2, 4, 4, 1)), "sigma": np.zeros((2, 4, 4, 1))}
    with pytest.raises(ValueError, match=r"no x3 \(this model's are x_hat,x1,x2,sigma;"):
        export.write_samples(samples, "x3", str(tmp_path))
    assert not os.listdir(tmp_path)


def test_the_tables_of_a_k3_reproduction_have_every_part():
    from split_vae.reproduce.analysis import analyse, part_keys

    def row(seed, split, x3):
        fd = {"x_hat": 10.0 + seed, "x1": 12.0, "x2": 11.0, "x3": x3, "mix": 9.0}
        r = {"fd_gen": dict(fd) if split else {"x_hat": 11.0 + seed},
             "fd_gmm": dict(fd) if split else {"x_hat": 11.0 + seed},
             "fd_reconstruction": 1.0, "reconstruction_mse": 0.01,
             "inactive_by_variance": 1, "inactive_by_posterior_variance": 1}
        if split:
            r["split_kind"] = {"kind": "semantic"}
        return r

    rows = {f"split_seed{s}": row(s, True, 5.0 + s) for s in range(3)}
    rows.update({f"vanilla_seed{s}": row(s, False, None) for s in range(3)})
    assert part_keys(rows["split_seed0"]) == ["x1", "x2", "x3"]
    claims = analyse(rows, [0, 1, 2])["claims"]
    best = claims["split's better part (min of x1, x2, x3) beats its x_hat (GEN)"]
    # the best part is x3 (5, 6, 7) against x_hat (10, 11, 12)
    assert best["values"] == [-5.0, -5.0, -5.0]


# --- the command line -----------------------------------------------------------
def test_the_command_line_sets_the_components_of_train_and_reproduce():
    from split_vae.cli.main import build_parser
    from split_vae.cli.reproduce import _plan
    from split_vae.cli.train import build_config
    from split_vae.reproduce.plan import Run

    parser = build_parser()
    args = parser.parse_args(["train", "--components", "3", "--specialized",
                              "--map-entropy", "0.1"])
    config = build_config(args)
    assert (config.components, config.specialized, config.map_entropy) == (3, True, 0.1)
    assert build_config(parser.parse_args(["train"])) == split_vae.get_preset("digits")
    with pytest.raises(ValueError, match="--vanilla has no components"):
        build_config(parser.parse_args(["train", "--vanilla", "--components", "3"]))
    with pytest.raises(ValueError, match="components must be an integer >= 2"):
        build_config(parser.parse_args(["train", "--components", "1"]))
    plan = _plan(parser.parse_args(["reproduce", "--dataset", "digits", "--scale", "smoke",
                                    "--components", "3"]))
    assert plan.config_of(Run("split_seed0", True, 0)).components == 3
    assert plan.config_of(Run("vanilla_seed0", False, 0)) == plan.config.with_split(False)
