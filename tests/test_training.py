"""fit(), the gamma balance, saving and resuming, bad input."""

import os

import keras
import numpy as np
import pytest

from helpers import tiny_config, tiny_images
from split_vae import AtomicCheckpoint, GammaBalance, SplitVAE, StopOnNonFinite
from split_vae.training import atomic_write, read_checkpoint_state


class RecordBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batch_mse, self.gamma, self.loss = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batch_mse.append(float(logs["batch_mse"]))
        self.gamma.append(float(self.model.gamma.numpy()))
        self.loss.append(float(logs["loss"]))


def fresh(seed=0, **changes):
    keras.utils.set_random_seed(seed)
    m = SplitVAE(tiny_config(**changes), seed=seed)
    m.compile()
    return m


def test_gamma_follows_the_balance_rule_batch_by_batch():
    m = fresh()
    rec = RecordBatches()
    m.fit(tiny_images(160), epochs=2, batch_size=32, verbose=0,
          callbacks=[GammaBalance(), rec])
    assert len(rec.batch_mse) == 10
    running, gamma = 1.0, 1.0
    for mse, got in zip(rec.batch_mse, rec.gamma):
        running = 0.99 * running + 0.01 * mse
        gamma = min(gamma, running)
        assert got == pytest.approx(gamma, rel=1e-6)
    assert float(m.mse_running.numpy()) == pytest.approx(running, rel=1e-6)
    assert gamma < 1.0


def test_without_the_callback_gamma_stays_fixed():
    m = fresh()
    m.gamma.assign(0.5)
    m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0)
    assert float(m.gamma.numpy()) == 0.5


def test_logs_hold_loss_mse_kl_gamma_and_kl_weight():
    m = fresh(beta=3.0)
    h = m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0, callbacks=[GammaBalance()])
    assert {"loss", "mse", "kl", "gamma", "kl_weight", "batch_mse"} <= set(h.history)
    assert h.history["kl_weight"][0] == pytest.approx(3.0 * h.history["gamma"][0], rel=1e-6)


def test_a_short_fit_lowers_the_loss():
    m = fresh()
    x = tiny_images(256)
    h = m.fit(x, epochs=6, batch_size=32, verbose=0)  # gamma fixed: comparable losses
    losses = h.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


def test_fit_accepts_a_tf_data_dataset_and_uint8(capsys):
    import tensorflow as tf

    m = fresh()
    x8 = (tiny_images(64) * 255).astype("uint8")
    m.fit(tf.data.Dataset.from_tensor_slices(x8).batch(32), epochs=1, verbose=0)
    assert "uint8" in capsys.readouterr().out
    m.fit(x8, epochs=1, batch_size=32, verbose=0)
    assert "scaled to [0, 1]" in capsys.readouterr().out


@pytest.mark.parametrize("images, message", [
    (np.zeros((4, 28, 28, 1), "float32"), "4 \\* 2\\*\\*k"),
    (np.zeros((4, 32, 32, 1), "float32"), "expects 16x16"),
    (np.zeros((4, 16, 16, 3), "float32"), "3 channel"),
    (np.full((4, 16, 16, 1), 2.0, "float32"), "\\[0, 1\\]"),
    (np.full((4, 16, 16, 1), -0.5, "float32"), "\\[0, 1\\]"),
    (np.zeros((4, 16), "float32"), "shape"),
])
def test_bad_images_are_named_before_training(images, message):
    m = fresh()
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match=message):
        m.fit(images, epochs=1, verbose=0)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images_are_named(bad):
    x = tiny_images(8)
    x[3, 2, 1, 0] = bad
    with pytest.raises(ValueError, match=r"NaN/inf.*\(3, 2, 1, 0\)"):
        fresh().fit(x, epochs=1, verbose=0)


def test_bad_dataset_is_named():
    import tensorflow as tf

    m = fresh()
    with pytest.raises(ValueError, match="expects"):
        m.fit(tf.data.Dataset.from_tensor_slices(np.zeros((8, 32, 32, 1), "float32")).batch(4))
    with pytest.raises(ValueError, match="batch"):
        m.fit(tf.data.Dataset.from_tensor_slices(np.zeros((8, 16, 16, 1), "float32")))
    x = tiny_images(8)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(tf.data.Dataset.from_tensor_slices(x).batch(4))


def test_keras_file_round_trip_keeps_outputs_and_gamma(tmp_path):
    m = fresh()
    m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0, callbacks=[GammaBalance()])
    path = str(tmp_path / "m.keras")
    m.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, SplitVAE)
    assert loaded.config == m.config
    assert float(loaded.gamma.numpy()) == float(m.gamma.numpy()) < 1.0
    x = tiny_images(5, seed=9)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)),
                                  keras.ops.convert_to_numpy(m(x)))
    np.testing.assert_array_equal(loaded.generate(3, seed=1)["x2"], m.generate(3, seed=1)["x2"])


def test_weights_file_round_trip(tmp_path):
    m = fresh()
    m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0, callbacks=[GammaBalance()])
    path = str(tmp_path / "m.weights.h5")
    m.save_weights(path)
    other = SplitVAE(m.config)
    other.load_weights(path)
    assert float(other.gamma.numpy()) == float(m.gamma.numpy())
    x = tiny_images(5, seed=9)
    np.testing.assert_array_equal(other.reconstruct(x)["x_hat"], m.reconstruct(x)["x_hat"])


def test_resume_continues_weights_optimizer_epoch_and_gamma(tmp_path):
    x = tiny_images(96)
    ckpt = str(tmp_path / "ck.keras")
    # One run of 3 epochs ...
    a = fresh(seed=5)
    a.fit(x, epochs=3, batch_size=32, shuffle=False, verbose=0, callbacks=[GammaBalance()])
    # ... against 2 epochs, a checkpoint, and 1 more epoch from the file.
    b = fresh(seed=5)
    b.fit(x, epochs=2, batch_size=32, shuffle=False, verbose=0,
          callbacks=[GammaBalance(), AtomicCheckpoint(ckpt)])
    assert read_checkpoint_state(ckpt)["epoch"] == 2
    c = keras.saving.load_model(ckpt)
    assert int(c.optimizer.iterations.numpy()) == 6
    assert float(c.gamma.numpy()) == float(b.gamma.numpy())
    for w1, w2 in zip(b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(w1, w2)
    c.fit(x, epochs=3, initial_epoch=2, batch_size=32, shuffle=False, verbose=0,
          callbacks=[GammaBalance()])
    assert int(c.optimizer.iterations.numpy()) == 9
    assert float(c.gamma.numpy()) == pytest.approx(float(a.gamma.numpy()), rel=1e-5)
    for w1, w2 in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_allclose(w1, w2, rtol=1e-4, atol=1e-5)


class PoisonWeights(keras.callbacks.Callback):
    """Puts a NaN into a kernel at the start of a given epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            w = self.model.decoder.get_layer("dec_out")
            k = w.kernel.numpy()
            k[0, 0, 0, 0] = np.nan
            w.kernel.assign(k)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    ckpt = str(tmp_path / "ck.keras")
    m = fresh()
    stop = StopOnNonFinite()
    m.fit(tiny_images(64), epochs=4, batch_size=32, verbose=0,
          callbacks=[GammaBalance(), stop, AtomicCheckpoint(ckpt), PoisonWeights(1)])
    assert stop.stopped_at == 0
    assert "non-finite loss" in capsys.readouterr().out
    assert read_checkpoint_state(ckpt)["epoch"] == 1
    good = keras.saving.load_model(ckpt)
    assert all(np.isfinite(w).all() for w in good.get_weights())
    assert np.isfinite(float(good.gamma.numpy()))


def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path):
    path = tmp_path / "f.keras"
    path.write_text("good")

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(str(path), broken)
    assert path.read_text() == "good"
    assert os.listdir(tmp_path) == ["f.keras"]
    atomic_write(str(path), lambda tmp: open(tmp, "w").write("new"))
    assert path.read_text() == "new"


def test_compile_rejects_a_loss_and_defaults_to_adam_at_config_lr():
    m = SplitVAE(tiny_config(learning_rate=3e-4))
    with pytest.raises(ValueError, match="own loss"):
        m.compile(loss="mse")
    m.compile()
    assert isinstance(m.optimizer, keras.optimizers.Adam)
    assert float(m.optimizer.learning_rate) == pytest.approx(3e-4)


def test_fit_rejects_targets():
    x = tiny_images(8)
    with pytest.raises(ValueError, match="images alone"):
        fresh().fit(x, x, epochs=1, verbose=0)
