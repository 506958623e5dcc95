"""The shared test harness: tiny configurations and data, a small feature
extractor, a command-line runner, and the round trips every model variant
goes through (configuration <-> JSON, .keras save/load, a preset directory,
one fit step), and the condition of the tests that read the real Fashion-MNIST
(conftest.py turns it into the `fashion_mnist` marker)."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from split_vae import SplitVAE, SplitVAEConfig, data
from split_vae.metrics import FeatureExtractor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Flags of a `train` run that takes seconds: digits, 96 images, a narrow network.
TINY_TRAIN_FLAGS = ["--preset", "digits", "--limit", "96", "--batch-size", "32",
                    "--samples", "4", "--set", "base_dim=8", "--set", "emb_dim=16",
                    "--set", "latent_dim=4"]


# ---------------------------------------------------------------------------
# Configurations, models, data
# ---------------------------------------------------------------------------
def tiny_config(**changes) -> SplitVAEConfig:
    """16x16x1, two scales, 4 latents: builds and trains in seconds."""
    base = dict(image_shape=(16, 16, 1), latent_dim=4, base_dim=8, emb_dim=16,
                num_scale=2, bn_momentum=0.9, batch_size=32, epochs=2,
                learning_rate=1e-3, beta=1.0, gmm_components=2)
    base.update(changes)
    return SplitVAEConfig(**base)


def tiny_model(config=None, seed=0, compile=True, **changes) -> SplitVAE:
    """A SplitVAE of tiny_config(**changes) (or config), seeded, compiled."""
    keras.utils.set_random_seed(seed)
    model = SplitVAE(config if config is not None else tiny_config(**changes), seed=seed)
    if compile:
        model.compile()
    return model


def _unnumbered(path: str) -> str:
    return re.sub(r"_\d+(?=/|$)", "", path)


def _traces(fn, seen=None) -> int:
    """How many times the tf.functions behind a trainer's function (reached
    through its closures) were traced; 0 under JAX and PyTorch."""
    seen = set() if seen is None else seen
    if fn is None or id(fn) in seen:
        return 0
    seen.add(id(fn))
    count = getattr(fn, "experimental_get_tracing_count", None)
    total = count() if callable(count) else 0
    for inner in [getattr(fn, "python_function", None)] + [
            c.cell_contents for c in (getattr(fn, "__closure__", None) or ())
            if _has_contents(c)]:
        if callable(inner):
            total += _traces(inner, seen)
    return total


def _has_contents(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a cell not yet assigned
        return False
    return True


def _trace_count(model) -> int:
    return sum(_traces(getattr(model, name, None))
               for name in ("train_function", "test_function", "predict_function"))


class ModelPool:
    """Compiled tiny models whose training step Keras traces once per session.

    Tracing the training step of a new model takes seconds (most of a
    short test's time); `take(seed, **changes)` hands out a model that
    computes exactly what `tiny_model(seed=seed, **changes)` gives. Every
    variable (weights, BatchNorm statistics, gamma, the running MSE, the
    sampling noise's seed state) is copied from a model just built with that
    seed (building traces nothing), the optimizer's state is set back to the
    state it had when first built, and the global random state is left
    where building that model leaves it. test_harness.py checks that a
    reused model trains bit for bit as a new one. `release()` takes back
    every model handed out (a fixture calls it after each test), so a fixture
    that outlives a test builds its model with tiny_model instead; one whose
    optimizer a test replaced (compile again) is dropped, not reused.

    Under TensorFlow a step traced for a second input signature (another
    batch size, a tf.data dataset after arrays) is traced again with relaxed
    shapes, whose float sums may round otherwise than a new model's: a model
    whose trace count grew after its first test is dropped at release, and a
    test that fits on a tf.data dataset takes tiny_model, not the pool.
    """

    def __init__(self):
        self._free, self._out = {}, []

    def take(self, seed=0, **changes) -> SplitVAE:
        config = tiny_config(**changes)
        keras.utils.set_random_seed(seed)
        new = SplitVAE(config, seed=seed)
        free = self._free.get(config)
        if not free:
            new.compile()
            new.optimizer.build(new.trainable_variables)   # what fit would do first
            entry = [config, new, new.optimizer,
                     [ops.convert_to_numpy(v) for v in new.optimizer.variables], None]
        else:
            entry = free.pop()
            model = entry[1]
            for target, source in zip(model.variables, new.variables, strict=True):
                # the same variable (auto-numbered names such as seed_generator_1 aside)
                assert _unnumbered(target.path) == _unnumbered(source.path) and \
                    target.shape == source.shape, (target.path, source.path)
                target.assign(source)
            for var, value in zip(model.optimizer.variables, entry[3], strict=True):
                var.assign(value)
            model.stop_training = False
            model.reset_metrics()
        self._out.append(entry)
        return entry[1]

    def release(self) -> None:
        for entry in self._out:
            config, model, optimizer, _, traced = entry
            count = _trace_count(model)
            if traced is None and count:
                entry[4] = traced = count  # the traces of its first signature
            if model.optimizer is optimizer and model.config == config and \
                    (traced is None or count == traced):
                self._free.setdefault(config, []).append(entry)
        self._out = []


# The session's pool (conftest.py gives every model back after each test).
POOL = ModelPool()


def pooled_model(seed=0, **changes) -> SplitVAE:
    """What tiny_model(seed=seed, **changes) gives, traced once per session (`POOL`)."""
    return POOL.take(seed, **changes)


def tiny_images(n=64, shape=(16, 16, 1), seed=0) -> np.ndarray:
    """Blurry blobs in [0, 1]: structured enough for a VAE to learn quickly."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy = rng.uniform(3, h - 3, size=(n, 1, 1))
    cx = rng.uniform(3, w - 3, size=(n, 1, 1))
    r = rng.uniform(2, 4, size=(n, 1, 1))
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
    img = np.repeat(blob[..., None], c, axis=-1) * rng.uniform(0.5, 1.0, size=(n, 1, 1, c))
    return img.astype("float32")


def perturbed_weights(model, seed=0, gamma=0.0123) -> SplitVAE:
    """Give every weight (BatchNorm statistics too) a random value, so that a
    loader that reads the wrong variable, or none, shows."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        value = rng.normal(0, 0.2, var.shape).astype("float32")
        if "variance" in var.path:
            value = np.abs(value) + 0.5
        var.assign(value)
    model.gamma.assign(gamma)
    return model


def small_extractor(seed=0, side=8, channels=3, features=6, name="small") -> FeatureExtractor:
    """A random conv net mapping side x side x channels images to `features` numbers."""
    keras.utils.set_random_seed(seed)
    net = keras.Sequential([keras.Input((side, side, channels)),
                            keras.layers.Conv2D(features, 3, activation="tanh"),
                            keras.layers.GlobalAveragePooling2D()], name=name)
    return FeatureExtractor(net, name=name)


# ---------------------------------------------------------------------------
# Data a machine may lack
# ---------------------------------------------------------------------------
REQUIRE_FASHION_MNIST = "SPLIT_VAE_REQUIRE_FASHION_MNIST"


def require_fashion_mnist(path=None, environ=None) -> None:
    """Skip the calling test when Debian's Fashion-MNIST (`path`) is absent.

    With SPLIT_VAE_REQUIRE_FASHION_MNIST=1 in the environment (CI sets it,
    after installing the data) its absence fails the test instead: there a
    skip would hide that the data's tests did not run.
    """
    path = path or data.DEBIAN_FASHION_MNIST
    environ = os.environ if environ is None else environ
    if os.path.isdir(path):
        return
    if environ.get(REQUIRE_FASHION_MNIST) == "1":
        pytest.fail(f"{path} is absent but {REQUIRE_FASHION_MNIST}=1 requires it "
                    "(apt install dataset-fashion-mnist)", pytrace=False)
    pytest.skip(f"{path} absent (apt install dataset-fashion-mnist)")


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------
def run_python(argv, env=None, check=False, timeout=900) -> subprocess.CompletedProcess:
    """`python ARGV` in a fresh process from the repository root, quiet TensorFlow.

    env adds to (or, with None values, removes from) this process's
    environment (e.g. KERAS_BACKEND); check=True raises with the end of both
    streams on a non-zero exit.
    """
    full = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    proc = subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def run_cli(*args, env=None, check=False, timeout=900) -> subprocess.CompletedProcess:
    """`python -m split_vae ARGS` in a fresh process (see run_python)."""
    return run_python(["-m", "split_vae", *args], env=env, check=check, timeout=timeout)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------
def model_outputs(model, n=4, seed=5) -> dict:
    """Everything a model computes, deterministically, as numpy arrays: the
    call on images, z_mean, z_log_var, the decoded parts, gamma."""
    x = tiny_images(n, model.image_shape, seed=seed)
    z_mean, z_log_var = model.encode(x)
    out = {"call": ops.convert_to_numpy(model(x)), "z_mean": z_mean,
           "z_log_var": z_log_var, "gamma": np.float32(model.gamma.numpy())}
    out.update({f"decode_{k}": v for k, v in model.decode(z_mean).items()})
    return out


def assert_same_outputs(a, b, atol=0.0):
    """Two models compute the same (to atol; 0 means bit for bit)."""
    oa, ob = model_outputs(a), model_outputs(b)
    assert sorted(oa) == sorted(ob)
    for key in oa:
        np.testing.assert_allclose(oa[key], ob[key], rtol=0, atol=atol, err_msg=key)


def assert_config_round_trip(config: SplitVAEConfig):
    """to_dict, to_json and the model's get_config all give the config back."""
    assert SplitVAEConfig.from_dict(config.to_dict()) == config
    assert SplitVAEConfig.from_dict(json.loads(config.to_json())) == config
    model = SplitVAE(config)
    clone = SplitVAE.from_config(model.get_config())
    assert clone.config == config
    assert clone.count_params() == model.count_params()


def fit_one_step(model, images) -> float:
    """One optimizer step on one batch of images; returns its loss and checks
    that it is finite and that the step changed the trainable weights."""
    before = [ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(images, epochs=1, batch_size=len(images), verbose=0)
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), loss
    after = [ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), \
        "a fit step changed no weight"
    return float(loss)


def assert_keras_round_trip(model, path) -> SplitVAE:
    """model.save(path) then load_model: same config, same outputs bit for bit."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SplitVAE)
    assert loaded.config == model.config
    assert_same_outputs(loaded, model)
    return loaded


class RecordSteps(keras.callbacks.Callback):
    """gamma and the logged loss after every batch (the multi-process tests)."""

    def __init__(self):
        super().__init__()
        self.gammas, self.losses = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.gammas.append(float(self.model.gamma.numpy()))
        self.losses.append(float(logs["loss"]))
