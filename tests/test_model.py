"""The network: shapes, channel layout, composition, loss, parameter counts."""

import ast
import os

import keras
import numpy as np
import pytest
from keras import ops

from helpers import tiny_config, tiny_images
from split_vae import (PRESETS, SplitVAE, SplitVAEConfig, get_preset, split_output,
                       vae_loss_terms)


@pytest.fixture(scope="module")
def model():
    return SplitVAE(tiny_config(), seed=1)


def test_paper_parameter_counts_equal_the_originals():
    # The counts of the authors' code (asperti/Split-VAE; docs/weights.md, "The presets")
    # include BatchNorm moving statistics; gamma, the running MSE and the
    # sampling seed are state, not counted.
    expected = {"mnist": 12_799_299, "cifar10": 13_061_143, "celeba": 28_989_363,
                "fashion_mnist": 12_799_299}
    for name, count in expected.items():
        assert SplitVAE.from_preset(name).count_params() == count, name


def test_state_variables_are_left_out_of_count(model):
    everything = sum(int(np.prod(w.shape)) for w in model.weights)
    assert everything - model.count_params() == 2  # gamma and mse_running


def test_three_sub_models_in_the_originals_order(model):
    assert [layer.name for layer in model.layers[:3]] == ["encoder", "latent", "decoder"]
    assert [v.name for v in model.latent.weights] == [
        "kernel", "bias", "kernel", "bias", "kernel", "bias"]
    assert [layer.name for layer in model.latent.layers if layer.weights] == [
        "z_mean", "z_log_var", "to_embedding"]


@pytest.mark.parametrize("shape", [(16, 16, 1), (32, 32, 3)])
def test_output_shapes_and_channel_layout(shape):
    cfg = tiny_config(image_shape=shape)
    m = SplitVAE(cfg)
    c = shape[2]
    assert m.image_shape == shape
    assert m.decoder.output.shape[-1] == 2 * c + 1
    x = tiny_images(3, shape)
    assert tuple(m(x).shape) == (3,) + shape
    z_mean, z_log_var = m.encode(x)
    assert z_mean.shape == z_log_var.shape == (3, cfg.latent_dim)
    parts = m.decode(z_mean)
    assert set(parts) == {"sigma", "x1", "x2", "x_hat"}
    assert parts["sigma"].shape == (3,) + shape[:2] + (1,)
    for k in ("x1", "x2", "x_hat"):
        assert parts[k].shape == (3,) + shape
    # decode() goes through the Dense back to the embedding and the decoder:
    raw = ops.convert_to_numpy(m.decoder(m.embed_latent(ops.convert_to_tensor(z_mean))))
    np.testing.assert_allclose(parts["sigma"], raw[..., :1], atol=1e-6)
    np.testing.assert_allclose(parts["x1"], raw[..., 1:1 + c], atol=1e-6)
    np.testing.assert_allclose(parts["x2"], raw[..., 1 + c:], atol=1e-6)


def test_vanilla_has_c_channels_and_no_split():
    m = SplitVAE(tiny_config(split=False, image_shape=(16, 16, 3)))
    assert m.decoder.output.shape[-1] == 3
    parts = m.generate(2, seed=0)
    assert set(parts) == {"x_hat", "z"}
    assert parts["x_hat"].shape == (2, 16, 16, 3)
    # Same network except the last layer.
    split = SplitVAE(tiny_config(image_shape=(16, 16, 3)))
    last_diff = split.count_params() - m.count_params()
    k = 3 * 3 * split.config.base_dim
    assert last_diff == (7 - 3) * (k + 1)


def test_composition_is_sigma_x1_plus_one_minus_sigma_x2():
    rng = np.random.default_rng(0)
    dec = rng.uniform(size=(2, 4, 4, 7)).astype("float32")
    out = {k: ops.convert_to_numpy(v) for k, v in split_output(dec, 3).items()}
    sigma, x1, x2 = dec[..., :1], dec[..., 1:4], dec[..., 4:7]
    np.testing.assert_allclose(out["x_hat"], sigma * x1 + (1 - sigma) * x2, rtol=1e-6)
    np.testing.assert_array_equal(out["sigma"], sigma)
    np.testing.assert_array_equal(out["x2"], x2)


def test_model_output_is_the_composition_of_its_parts(model):
    x = tiny_images(4)
    parts = model.reconstruct(x)
    np.testing.assert_allclose(
        parts["x_hat"], parts["sigma"] * parts["x1"] + (1 - parts["sigma"]) * parts["x2"],
        atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(model(x)), parts["x_hat"], atol=1e-6)


def test_loss_equals_numpy():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(5, 8, 8, 3)).astype("float32")
    x_hat = rng.uniform(size=(5, 8, 8, 3)).astype("float32")
    mu = rng.normal(size=(5, 6)).astype("float32")
    lv = rng.normal(size=(5, 6)).astype("float32")
    gamma, beta = 0.037, 3.0
    terms = {k: float(v) for k, v in vae_loss_terms(x, x_hat, mu, lv, gamma, beta).items()}
    rec = 0.5 * np.sum((x - x_hat) ** 2, axis=(1, 2, 3)).astype("float64")
    kl = 0.5 * np.sum(mu ** 2 + np.exp(lv) - 1 - lv, axis=1).astype("float64")
    assert terms["loss"] == pytest.approx(np.mean(rec / gamma + beta * kl), rel=1e-5)
    assert terms["mse"] == pytest.approx(np.mean((x - x_hat) ** 2), rel=1e-5)
    assert terms["kl"] == pytest.approx(np.mean(kl), rel=1e-5)


def test_model_loss_uses_gamma_and_beta_of_the_model():
    m = SplitVAE(tiny_config(beta=2.5))
    m.gamma.assign(0.2)
    x = tiny_images(6)
    out = m(x, training=True)
    assert set(out) >= {"x_hat", "z_mean", "z_log_var", "sigma", "x1", "x2", "z"}
    loss = float(m.compute_loss(x=x, y_pred=out))
    xh = ops.convert_to_numpy(out["x_hat"]).astype("float64")
    mu = ops.convert_to_numpy(out["z_mean"]).astype("float64")
    lv = ops.convert_to_numpy(out["z_log_var"]).astype("float64")
    rec = 0.5 * np.sum((x - xh) ** 2, axis=(1, 2, 3))
    kl = 0.5 * np.sum(mu ** 2 + np.exp(lv) - 1 - lv, axis=1)
    assert loss == pytest.approx(np.mean(rec / 0.2 + 2.5 * kl), rel=1e-5)


def test_training_samples_z_and_inference_does_not(model):
    x = tiny_images(4)
    out = model(x, training=True)
    z, mu = ops.convert_to_numpy(out["z"]), ops.convert_to_numpy(out["z_mean"])
    assert not np.allclose(z, mu)
    np.testing.assert_allclose(ops.convert_to_numpy(model(x)), ops.convert_to_numpy(model(x)))


def test_generate_is_reproducible_under_a_seed(model):
    a, b, c = model.generate(3, seed=7), model.generate(3, seed=7), model.generate(3, seed=8)
    np.testing.assert_array_equal(a["x_hat"], b["x_hat"])
    assert not np.allclose(a["z"], c["z"])
    # Batches and a progress bar change nothing of the draw or the images.
    d = model.generate(3, seed=7, batch_size=2, progress=True)
    np.testing.assert_array_equal(a["z"], d["z"])
    for k in ("sigma", "x1", "x2", "x_hat"):
        np.testing.assert_allclose(a[k], d[k], atol=1e-6)
    assert model.generate(0)["x_hat"].shape == (0, 16, 16, 1)


def test_presets():
    assert {"mnist", "cifar10", "celeba", "fashion_mnist", "digits"} <= set(PRESETS)
    assert get_preset("mnist").image_shape == (32, 32, 1)
    assert get_preset("celeba").latent_dim == 150
    assert get_preset("cifar10").latent_dim == 200
    assert get_preset("mnist").learning_rate == 1e-4  # the code's, not the paper's text
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        get_preset("nope")


def test_presets_hand_out_nothing_shared_that_can_change():
    import dataclasses

    before = {name: cfg.to_dict() for name, cfg in PRESETS.items()}
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["mnist"].beta = 100.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_preset("mnist").epochs = 1
    with pytest.raises(TypeError):
        PRESETS["mnist"] = tiny_config()                      # the table is read-only
    changed = get_preset("mnist").replace(beta=100.0, epochs=1)
    assert (changed.beta, changed.epochs, changed.latent_dim) == (100.0, 1, 32)
    with pytest.raises(ValueError, match="beta"):
        PRESETS["mnist"].replace(beta=-1.0)
    assert {name: cfg.to_dict() for name, cfg in PRESETS.items()} == before


@pytest.mark.parametrize("field, value", [
    ("image_shape", (28, 28, 1)), ("image_shape", "large"), ("latent_dim", 0),
    ("latent_dim", 2.5), ("base_dim", True), ("emb_dim", -1), ("kernel_size", "3"),
    ("num_scale", 6), ("block_per_scale", 0), ("depth_per_block", None),
    ("bn_momentum", 1.0), ("bn_momentum", "0.9"), ("split", "no"), ("beta", float("inf")),
    ("beta", "8"), ("learning_rate", 0.0), ("batch_size", 0), ("epochs", -3),
    ("gmm_components", 0), ("dataset", 3), ("precision", "float16"),
])
def test_an_invalid_replace_names_the_field_and_changes_nothing(field, value):
    cfg = tiny_config()
    before = cfg.to_dict()
    with pytest.raises(ValueError) as e:
        cfg.replace(**{field: value})
    assert field in str(e.value)
    assert cfg.to_dict() == before


def test_replace_accepts_each_field_just_inside_its_range():
    cfg = tiny_config()
    for field, value in [("bn_momentum", 0.0), ("bn_momentum", 0.999999), ("beta", 0.0),
                         ("learning_rate", 1e-12), ("latent_dim", 1), ("epochs", 1),
                         ("split", False), ("dataset", None), ("precision", "mixed_float16"),
                         ("image_shape", (4, 4, 3))]:
        changed = cfg.replace(**{field: value} if field != "image_shape"
                              else {field: value, "num_scale": 2})
        assert getattr(changed, field) == value
    with pytest.raises(ValueError, match=r"unknown SplitVAEConfig fields: \['latent'\]"):
        cfg.replace(latent=3)


@pytest.mark.parametrize("changes, message", [
    (dict(image_shape=(28, 28, 1)), "4 \\* 2\\*\\*k"),
    (dict(image_shape=(32, 16, 1)), "square"),
    (dict(latent_dim=0), "latent_dim"),
    (dict(num_scale=5), "num_scale"),
    (dict(beta=float("nan")), "beta"),
])
def test_bad_config_is_named(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**changes)


def test_config_round_trips_through_dict_and_json():
    import json

    cfg = tiny_config(split=False, beta=4.0)
    again = SplitVAEConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown SplitVAEConfig fields"):
        SplitVAEConfig.from_dict({"latent": 3})


def test_get_config_round_trip(model):
    clone = SplitVAE.from_config(model.get_config())
    assert clone.config == model.config
    assert clone.count_params() == model.count_params()


def test_decode_rejects_wrong_latent_shape(model):
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        model.decode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 16, 16, 1\); received \(2, 8, 8, 1\)"):
        model.encode(np.zeros((2, 8, 8, 1)))


def test_batched_inference_does_not_depend_on_batch_size_or_progress(model):
    x = tiny_images(7)
    a = model.encode(x, batch_size=7)
    b = model.encode(x, batch_size=3, progress=True)
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)
    d1 = model.decode(a[0], batch_size=2, progress=True)
    d2 = model.decode(a[0])
    np.testing.assert_allclose(d1["x_hat"], d2["x_hat"], atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        model.encode(x, batch_size=0)


def test_sampling_noise_has_scale_exp_half_log_var():
    # Statistics of 20,000 draws per variable against the closed form:
    # z ~ N(z_mean, exp(z_log_var)), i.e. standard deviation exp(z_log_var / 2).
    from split_vae.networks import Sampling

    n = 20000
    mean = np.array([3.0, -1.0, 0.0, 0.5], "float32")
    log_var = np.array([-2.0, 0.0, 1.0, 2.0], "float32")
    layer = Sampling(seed=4)
    z = ops.convert_to_numpy(layer([ops.convert_to_tensor(np.tile(mean, (n, 1))),
                                    ops.convert_to_tensor(np.tile(log_var, (n, 1)))],
                                   training=True)).astype("float64")
    std = np.exp(0.5 * log_var)
    np.testing.assert_allclose(z.std(axis=0), std, rtol=0.03)
    assert np.all(np.abs(z.mean(axis=0) - mean) < 4 * std / np.sqrt(n))
    from scipy import stats
    for j in range(4):  # normal, not merely of the right variance
        assert stats.kstest((z[:, j] - mean[j]) / std[j], "norm").pvalue > 1e-3
    # inference returns z_mean itself
    zi = layer([ops.convert_to_tensor(np.tile(mean, (3, 1))),
                ops.convert_to_tensor(np.tile(log_var, (3, 1)))], training=False)
    np.testing.assert_array_equal(ops.convert_to_numpy(zi), np.tile(mean, (3, 1)))


def test_generate_draws_the_documented_prior_sample(model):
    # GEN: z ~ N(0, I) from numpy's default_rng(seed), as documented; tested
    # by a statistic of the draw, not by calling the same code again.
    from scipy import stats

    n = 4000
    out = model.generate(n, seed=11)
    z = out["z"].astype("float64")
    np.testing.assert_array_equal(
        out["z"], np.random.default_rng(11).standard_normal((n, model.latent_dim)).astype("float32"))
    assert np.abs(z.mean(axis=0)).max() < 4 / np.sqrt(n)
    np.testing.assert_allclose(np.cov(z.T), np.eye(model.latent_dim), atol=0.08)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    for j in range(model.latent_dim):   # every variable normal, not only the pool
        assert stats.kstest(z[:, j], "norm").pvalue > 1e-4
    # the images are the decoding of that z
    np.testing.assert_allclose(model.decode(out["z"][:5])["x_hat"], out["x_hat"][:5],
                               atol=1e-6)


# ---------------------------------------------------------------------------
# The import graph
# ---------------------------------------------------------------------------
PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "split_vae")


def _package_imports() -> dict:
    """module -> the split_vae modules it imports anywhere (inside functions too)."""
    modules = {f[:-3] for f in os.listdir(PACKAGE_DIR) if f.endswith(".py")}
    graph = {}
    for m in modules:
        with open(os.path.join(PACKAGE_DIR, m + ".py"), encoding="utf8") as f:
            tree = ast.parse(f.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module
                            else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "split_vae."):
                deps.add(node.module.split(".")[1])
        graph[m] = deps & modules - {m}
    return graph


@pytest.mark.parametrize("module", ["model", "presets", "legacy", "config", "precision",
                                    "distribute", "blocks", "sampling", "evaluation"])
def test_no_module_of_the_model_is_imported_back(module):
    graph = _package_imports()
    seen, stack = set(), list(graph[module])
    while stack:
        m = stack.pop()
        assert m != module, f"{module} imports a module that imports it back"
        if m not in seen:
            seen.add(m)
            stack.extend(graph[m])


def test_the_readers_below_the_model_do_not_import_it():
    # As keras-hub's converters: the preset and legacy readers fill a model
    # they are given (or build the class passed in), never import model.py.
    graph = _package_imports()
    assert "model" not in graph["presets"] | graph["legacy"]
    assert "precision" not in graph["config"]     # a config is checked without Keras
