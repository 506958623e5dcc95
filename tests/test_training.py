"""fit(), the gamma balance, saving and resuming, bad input."""

import os

import keras
import numpy as np
import pytest

from helpers import pooled_model, tiny_config, tiny_images, tiny_model
from split_vae import AtomicCheckpoint, GammaBalance, SplitVAE, StopOnNonFinite
from split_vae.fileio import atomic_write
from split_vae.checkpoint import (DamagedCheckpointError, check_resumable, config_differences,
                                  load_checkpoint, previous_path, read_checkpoint_state,
                                  resume_or_create)


class RecordBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batch_mse, self.gamma, self.loss = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batch_mse.append(float(logs["batch_mse"]))
        self.gamma.append(float(self.model.gamma.numpy()))
        self.loss.append(float(logs["loss"]))


def fresh(seed=0, **changes):
    """A compiled tiny model of that seed, as new (helpers.POOL: traced once)."""
    return pooled_model(seed, **changes)


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


def test_fit_accepts_a_tf_data_dataset_and_uint8(caplog):
    import tensorflow as tf

    m = tiny_model()  # a tf.data dataset: not the pool's arrays (helpers.ModelPool)
    x8 = (tiny_images(64) * 255).astype("uint8")
    caplog.set_level("INFO", logger="split_vae")
    m.fit(tf.data.Dataset.from_tensor_slices(x8).batch(32), epochs=1, verbose=0)
    assert "dataset: uint8 batches scaled" in caplog.text
    caplog.clear()
    m.fit(x8, epochs=1, batch_size=32, verbose=0)
    assert "images: uint8 data scaled to [0, 1]" in caplog.text


@pytest.mark.parametrize("images, message", [
    (np.zeros((4, 28, 28, 1), "float32"), "4 \\* 2\\*\\*k"),
    (np.zeros((4, 32, 32, 1), "float32"), "expects images of shape \\(N, 16, 16, 1\\).*32x32, not 16x16"),
    (np.zeros((4, 16, 16, 3), "float32"), "3 channel\\(s\\), not 1"),
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

    m = tiny_model()  # a tf.data dataset: not the pool's arrays (helpers.ModelPool)
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


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, caplog):
    ckpt = str(tmp_path / "ck.keras")
    m = fresh()
    stop = StopOnNonFinite()
    caplog.set_level("ERROR", logger="split_vae")
    m.fit(tiny_images(64), epochs=4, batch_size=32, verbose=0,
          callbacks=[GammaBalance(), stop, AtomicCheckpoint(ckpt), PoisonWeights(1)])
    assert stop.stopped_at == 0
    assert "non-finite loss" in caplog.text and "batch 0" in caplog.text
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


# ---------------------------------------------------------------------------
# The balance against an independent recomputation of every batch
# ---------------------------------------------------------------------------
def frozen(seed=0, **changes):
    """A model whose training step changes nothing that the loss reads.

    Learning rate 0 keeps the weights; a z_log_var layer fixed at -40 makes
    the sampling noise exp(-20) ~ 2e-9, so a batch's training-mode forward
    pass (BatchNorm on batch statistics) can be recomputed exactly outside
    fit.
    """
    keras.utils.set_random_seed(seed)
    m = SplitVAE(tiny_config(**changes), seed=seed)
    zlv = m.latent.get_layer("z_log_var")
    zlv.kernel.assign(np.zeros(zlv.kernel.shape, "float32"))
    zlv.bias.assign(np.full(zlv.bias.shape, -40.0, "float32"))
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    return m


def batch_terms(m, x):
    """(mse, mean KL) of one batch, numpy, from a training-mode forward pass."""
    out = m(x, training=True)
    xh = keras.ops.convert_to_numpy(out["x_hat"]).astype("float64")
    mu = keras.ops.convert_to_numpy(out["z_mean"]).astype("float64")
    lv = keras.ops.convert_to_numpy(out["z_log_var"]).astype("float64")
    kl = 0.5 * np.sum(mu ** 2 + np.exp(lv) - 1 - lv, axis=1)
    return float(np.mean((x - xh) ** 2)), float(np.mean(kl))


class LogsPerBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs, model_gamma=float(self.model.gamma.numpy()),
                              model_running=float(self.model.mse_running.numpy())))


def per_batch_losses(logged, batches_per_epoch):
    """Keras logs the epoch's running mean of the loss: undo the mean."""
    out = []
    for e in range(len(logged) // batches_per_epoch):
        means = [r["loss"] for r in logged[e * batches_per_epoch:(e + 1) * batches_per_epoch]]
        out += [means[0]] + [(t + 1) * means[t] - t * means[t - 1] for t in range(1, len(means))]
    return out


@pytest.mark.parametrize("decay", [0.99, 0.9])
def test_balance_min_clips_gamma_and_loss_of_batch_t_uses_gamma_after_t_minus_1(decay):
    # Images sorted by brightness: every batch has its own MSE, so the last
    # batch's value and the epoch's mean differ.
    x = tiny_images(80, seed=3)
    x = x[np.argsort(x.reshape(len(x), -1).sum(axis=1))]
    bs, nb, beta = 16, 5, 1.5
    probe = frozen(beta=beta)
    mse, kl = zip(*(batch_terms(probe, x[i * bs:(i + 1) * bs]) for i in range(nb)))
    mse, kl = np.array(mse * 2), np.array(kl * 2)          # two epochs, same batches
    assert mse.max() - mse.min() > 0.1 * mse.mean()        # batches do differ
    # The running mean from 1.0 only falls here; gamma0 is chosen between its
    # values, so the min clips gamma for the first batches and then lets go.
    running = [1.0]
    for v in mse:
        running.append(decay * running[-1] + (1 - decay) * v)
    gamma0 = running[4]
    gammas = [gamma0]
    for r in running[1:]:
        gammas.append(min(gammas[-1], r))
    assert gammas[1] == gamma0 and gammas[-1] < gamma0      # both sides of the min act

    m = frozen(beta=beta)
    m.gamma.assign(gamma0)
    logs = LogsPerBatch()
    m.fit(x, epochs=2, batch_size=bs, shuffle=False, verbose=0,
          callbacks=[GammaBalance(decay=decay), logs])
    assert len(logs.logs) == 2 * nb
    got_mse = [r["batch_mse"] for r in logs.logs]
    np.testing.assert_allclose(got_mse, mse, rtol=1e-4)     # the last batch's, not a mean
    np.testing.assert_allclose([r["model_running"] for r in logs.logs], running[1:], rtol=1e-5)
    np.testing.assert_allclose([r["model_gamma"] for r in logs.logs], gammas[1:], rtol=1e-5)
    # Batch t is trained with the gamma left by batch t-1, and logs it.
    np.testing.assert_allclose([r["gamma"] for r in logs.logs], gammas[:-1], rtol=1e-5)
    n_pix = np.prod(x.shape[1:])
    expected = 0.5 * n_pix * mse / np.array(gammas[:-1]) + beta * kl
    np.testing.assert_allclose(per_batch_losses(logs.logs, nb), expected, rtol=2e-4)


def test_balance_decay_range_is_checked():
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="decay"):
            GammaBalance(decay=bad)
    GammaBalance(decay=0.0)


def balanced_once():
    """A model with gamma 0.3 and running MSE 0.4, then one batch of MSE 0.1
    through GammaBalance(decay=0.5): running 0.25, gamma 0.25."""
    m = fresh()
    m.gamma.assign(0.3)
    m.mse_running.assign(0.4)
    cb = GammaBalance(decay=0.5)
    cb.set_model(m)
    cb.on_train_begin()
    cb.on_train_batch_end(0, {"batch_mse": 0.1})
    return m, cb


def test_balance_sets_gamma_again_at_the_end_of_the_epoch():
    # Under JAX, Keras's trainer may put back a previous step's variables
    # after the last batch (a dataset of unknown length); the callback's own
    # gamma and running MSE win at the end of the epoch.
    m, cb = balanced_once()
    m.gamma.assign(0.3)                                     # the stale state put back
    m.mse_running.assign(0.4)
    cb.on_epoch_end(0)
    assert float(m.gamma.numpy()) == pytest.approx(0.25)
    assert float(m.mse_running.numpy()) == pytest.approx(0.25)


def test_balance_keeps_the_last_gamma_on_a_non_finite_mse():
    m, cb = balanced_once()
    for bad in (float("nan"), float("inf")):
        cb.on_train_batch_end(1, {"batch_mse": bad})
        assert float(m.gamma.numpy()) == pytest.approx(0.25)
        assert float(m.mse_running.numpy()) == pytest.approx(0.25)
    cb.on_train_batch_end(2, {"batch_mse": 0.05})           # continues from 0.25
    assert float(m.mse_running.numpy()) == pytest.approx(0.15)
    assert float(m.gamma.numpy()) == pytest.approx(0.15)
    with pytest.raises(RuntimeError, match="batch_mse"):
        cb.on_train_batch_end(3, {"loss": 1.0})


def numpy_eval_loss(m, x):
    """The loss of model.evaluate, from inference-mode outputs (no sampling)."""
    xh = keras.ops.convert_to_numpy(m(x)).astype("float64")
    mu, lv = (a.astype("float64") for a in m.encode(x))
    rec = 0.5 * np.sum((x - xh) ** 2, axis=(1, 2, 3))
    kl = 0.5 * np.sum(mu ** 2 + np.exp(lv) - 1 - lv, axis=1)
    g, beta = float(m.gamma.numpy()), m.config.beta
    return float(np.mean(rec / g + beta * kl)), float(np.mean((x - xh) ** 2)), float(np.mean(kl))


def test_evaluate_and_validation_compute_the_loss_without_sampling():
    m = fresh(beta=2.0)
    m.gamma.assign(0.07)
    x, v = tiny_images(64), tiny_images(24, seed=5)
    h = m.fit(x, epochs=1, batch_size=32, verbose=0, validation_data=v,
              validation_batch_size=24)
    loss, mse, kl = numpy_eval_loss(m, v)
    assert h.history["val_loss"][-1] == pytest.approx(loss, rel=1e-4)
    assert h.history["val_mse"][-1] == pytest.approx(mse, rel=1e-4)
    r = m.evaluate(v, batch_size=24, verbose=0, return_dict=True)
    assert r["loss"] == pytest.approx(loss, rel=1e-4)
    assert r["mse"] == pytest.approx(mse, rel=1e-4)
    assert r["kl"] == pytest.approx(kl, rel=1e-4)
    assert r["gamma"] == pytest.approx(0.07) and r["kl_weight"] == pytest.approx(0.14)
    # twice the same: no sampling noise in evaluation
    assert m.evaluate(v, batch_size=24, verbose=0)[0] == pytest.approx(r["loss"], rel=1e-6)


def test_estimate_gamma_sets_gamma_to_the_reconstruction_mse():
    m = fresh()
    m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0)
    x = tiny_images(40, seed=4)
    xh = keras.ops.convert_to_numpy(m(x)).astype("float64")
    expected = float(np.mean((x - xh) ** 2))
    assert 0 < expected < 0.5
    got = m.estimate_gamma(x, batch_size=16)
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(m.gamma.numpy()) == pytest.approx(expected, rel=1e-5)
    assert float(m.mse_running.numpy()) == pytest.approx(expected, rel=1e-5)
    # uint8 pixels are scaled by 1/255 first
    x8 = np.rint(x * 255).astype("uint8")
    xh8 = keras.ops.convert_to_numpy(m(x8.astype("float32") / 255)).astype("float64")
    assert m.estimate_gamma(x8) == pytest.approx(
        float(np.mean((x8 / 255.0 - xh8) ** 2)), rel=1e-5)


def test_dataset_of_image_label_tuples_trains_on_the_images():
    import tensorflow as tf

    x = tiny_images(64)
    labels = np.arange(64, dtype="float32")
    a, b = tiny_model(seed=2), tiny_model(seed=2)  # not pooled: see helpers.ModelPool
    a.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=1, verbose=0)
    b.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(32), epochs=1, verbose=0)
    for w1, w2 in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(w1, w2, rtol=1e-5, atol=1e-6)


def test_checkpoint_every_n_epochs_and_only_when_finite(tmp_path):
    ckpt = str(tmp_path / "ck.keras")
    m = fresh()
    cb = AtomicCheckpoint(ckpt, every=2)
    cb.set_model(m)
    cb.on_epoch_end(0, {"loss": 1.0})
    assert not os.path.exists(ckpt)
    m.gamma.assign(0.5)
    cb.on_epoch_end(1, {"loss": 2.0})
    assert read_checkpoint_state(ckpt) == {"epoch": 2, "gamma": 0.5, "loss": 2.0}
    m.gamma.assign(0.25)
    cb.on_epoch_end(2, {"loss": 3.0})                       # not a multiple of 2
    cb.on_epoch_end(3, {"loss": float("nan")})              # a multiple, but NaN
    assert read_checkpoint_state(ckpt)["epoch"] == 2
    assert float(keras.saving.load_model(ckpt).gamma.numpy()) == 0.5
    cb.on_epoch_end(5, {"loss": 4.0})
    assert read_checkpoint_state(ckpt)["epoch"] == 6
    with pytest.raises(ValueError, match=".keras"):
        AtomicCheckpoint(str(tmp_path / "ck.h5"))


def test_history_writer_rows_and_resume(tmp_path):
    import csv
    import json

    from split_vae.training import HistoryWriter

    path = str(tmp_path / "history.csv")
    first = HistoryWriter(path)
    for epoch in range(3):
        first.on_epoch_begin(epoch)
        first.on_epoch_end(epoch, {"loss": 10.0 - epoch, "gamma": 0.5 ** epoch})
    # Rows are numbered as Keras prints its epochs, from 1.
    assert [r["epoch"] for r in json.load(open(str(tmp_path / "history.json")))] == [1, 2, 3]
    # A run resumed after epoch 1 (Keras's 0-based index: it starts at 1)
    # replaces epochs 2 and 3.
    again = HistoryWriter(path)
    again.on_epoch_begin(1)
    again.on_epoch_end(1, {"loss": 42.0, "gamma": 0.125, "kl": 3.0})
    rows = json.load(open(str(tmp_path / "history.json")))
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0] == {"epoch": 1, "gamma": 1.0, "loss": 10.0}
    assert rows[1] == {"epoch": 2, "gamma": 0.125, "kl": 3.0, "loss": 42.0}
    with open(path) as f:
        table = list(csv.DictReader(f))
    assert [r["epoch"] for r in table] == ["1", "2"]
    assert float(table[1]["loss"]) == 42.0 and float(table[1]["kl"]) == 3.0
    assert table[0]["kl"] == ""                             # a missing value is empty


def test_history_writer_renumbers_a_file_numbered_from_0(tmp_path):
    import json

    from split_vae.training import HistoryWriter

    path = tmp_path / "history.csv"
    old = [{"epoch": 0, "loss": 3.0}, {"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.5}]
    (tmp_path / "history.json").write_text(json.dumps(old))
    resumed = HistoryWriter(str(path))
    resumed.on_epoch_begin(2)                         # two epochs done: the third begins
    resumed.on_epoch_end(2, {"loss": 1.0})
    rows = json.loads((tmp_path / "history.json").read_text())
    assert rows == [{"epoch": 1, "loss": 3.0}, {"epoch": 2, "loss": 2.0},
                    {"epoch": 3, "loss": 1.0}]


def test_history_writer_during_fit_matches_the_history(tmp_path):
    import json

    from split_vae.training import HistoryWriter

    m = fresh()
    path = str(tmp_path / "h.csv")
    h = m.fit(tiny_images(64), epochs=2, batch_size=32, verbose=0,
              callbacks=[GammaBalance(), HistoryWriter(path)])
    rows = json.load(open(str(tmp_path / "h.json")))
    assert [r["epoch"] for r in rows] == [1, 2]
    for key, values in h.history.items():
        assert [r[key] for r in rows] == pytest.approx(values, rel=1e-6), key


# ---------------------------------------------------------------------------
# Checkpoint files: the state inside, the previous file kept, damaged files
# ---------------------------------------------------------------------------
def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for w1, w2 in zip(a, b):
        np.testing.assert_array_equal(w1, w2)


def checkpoint_two_epochs(tmp_path):
    """A model trained 2 epochs with AtomicCheckpoint; the weights after each epoch."""
    ckpt = str(tmp_path / "ck.keras")
    m = fresh()
    after = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            after.append(weights_of(self.model))

    m.fit(tiny_images(64), epochs=2, batch_size=32, verbose=0,
          callbacks=[GammaBalance(), AtomicCheckpoint(ckpt), Record()])
    return m, ckpt, after


def test_checkpoint_state_lives_in_the_file_and_keras_still_loads_it(tmp_path):
    import zipfile

    m, ckpt, after = checkpoint_two_epochs(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["ck.keras", "ck.prev.keras"]   # no other file
    with zipfile.ZipFile(ckpt) as z:
        assert "split_vae_state.json" in z.namelist()
    state = read_checkpoint_state(ckpt)
    assert state["epoch"] == 2 and state["gamma"] == float(m.gamma.numpy())
    assert_same_weights(keras.saving.load_model(ckpt).get_weights(), after[1])
    # the file it replaced is kept beside it, with its own state
    prev = previous_path(ckpt)
    assert prev == str(tmp_path / "ck.prev.keras")
    assert read_checkpoint_state(prev)["epoch"] == 1
    assert_same_weights(keras.saving.load_model(prev).get_weights(), after[0])


def test_a_kill_between_weights_and_state_cannot_make_them_disagree(tmp_path, monkeypatch):
    m, ckpt, after = checkpoint_two_epochs(tmp_path)
    # Epoch 3 trains, then the process is killed after the weights are written
    # and as the epoch count is about to be: nothing of epoch 3 may reach
    # ck.keras. (The kill comes when the checkpoint module serializes the
    # state, wherever that happens.)
    import json

    import split_vae.checkpoint

    m.fit(tiny_images(64), epochs=3, initial_epoch=2, batch_size=32, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(m.get_weights(), after[1]))

    class KilledJson:
        loads = staticmethod(json.loads)

        @staticmethod
        def dumps(*args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(split_vae.checkpoint, "json", KilledJson)
    cb = AtomicCheckpoint(ckpt)
    cb.set_model(m)
    with pytest.raises(KeyboardInterrupt):
        cb.on_epoch_end(2, {"loss": 1.0})
    monkeypatch.undo()
    assert read_checkpoint_state(ckpt)["epoch"] == 2
    assert_same_weights(keras.saving.load_model(ckpt).get_weights(), after[1])
    assert sorted(os.listdir(tmp_path)) == ["ck.keras", "ck.prev.keras"]   # no temporary


def test_a_keras_file_without_state_counts_no_completed_epoch(tmp_path):
    path = str(tmp_path / "saved.keras")
    fresh().save(path)                                         # no state entry inside
    assert read_checkpoint_state(path) == {"epoch": 0}


def truncate(path, keep=2000):
    with open(path, "rb") as f:
        head = f.read(keep)
    with open(path, "wb") as f:
        f.write(head)
    return head


def test_a_damaged_checkpoint_is_named_and_the_previous_one_resumes(tmp_path, caplog):
    m, ckpt, after = checkpoint_two_epochs(tmp_path)
    truncate(ckpt)
    with pytest.raises(DamagedCheckpointError, match=r"ck\.keras is damaged \(BadZipFile"):
        read_checkpoint_state(ckpt)
    caplog.set_level("INFO", logger="split_vae")
    model, epoch = resume_or_create(m.config, ckpt)
    assert epoch == 1
    assert_same_weights(model.get_weights(), after[0])
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warning) == 1
    assert "ck.keras is damaged" in warning[0] and "ck.prev.keras" in warning[0]
    assert "after epoch 1" in warning[0]
    # The next save replaces the damaged file and keeps the good previous one.
    cb = AtomicCheckpoint(ckpt)
    cb.set_model(model)
    cb.on_epoch_end(1, {"loss": 1.0})
    assert read_checkpoint_state(ckpt)["epoch"] == 2
    assert read_checkpoint_state(previous_path(ckpt))["epoch"] == 1
    keras.saving.load_model(previous_path(ckpt))


def test_both_checkpoints_damaged_is_an_error_that_deletes_nothing(tmp_path):
    m, ckpt, _ = checkpoint_two_epochs(tmp_path)
    heads = {p: truncate(p, keep) for p, keep in ((ckpt, 3000), (previous_path(ckpt), 10))}
    with pytest.raises(DamagedCheckpointError) as e:
        load_checkpoint(ckpt)
    assert "ck.keras is damaged" in str(e.value) and "ck.prev.keras is damaged" in str(e.value)
    assert "Nothing was deleted" in str(e.value)
    for path, head in heads.items():
        with open(path, "rb") as f:
            assert f.read() == head


def test_resume_or_create_builds_resumes_and_refuses_another_configuration(tmp_path):
    ckpt = str(tmp_path / "ck.keras")
    config = tiny_config()
    model, epoch = resume_or_create(config, ckpt, seed=3)     # nothing yet: a new model
    assert epoch == 0 and model.config == config and model.optimizer is not None
    model.fit(tiny_images(64), epochs=2, batch_size=32, verbose=0,
              callbacks=[AtomicCheckpoint(ckpt)])
    longer = config.replace(epochs=5)
    resumed, epoch = resume_or_create(longer, ckpt)
    assert epoch == 2 and resumed.config.epochs == 5
    assert int(resumed.optimizer.iterations.numpy()) == 4
    assert_same_weights(resumed.get_weights(), model.get_weights())
    fresh_model, epoch = resume_or_create(config, ckpt, seed=3, resume=False)
    assert epoch == 0 and int(fresh_model.optimizer.iterations.numpy()) == 0
    with pytest.raises(ValueError, match="another configuration.*base_dim"):
        resume_or_create(config.replace(base_dim=16), ckpt)


def test_config_differences_name_each_changed_field():
    a = tiny_config()
    assert config_differences(a, a) == {}
    assert config_differences(a, a.replace(beta=2.0, epochs=9)) == {
        "beta": (1.0, 2.0), "epochs": (2, 9)}
    check_resumable(a, a.replace(epochs=9), "x.keras")        # epochs alone may change
    with pytest.raises(ValueError, match="x.keras.*beta"):
        check_resumable(a, a.replace(beta=2.0), "x.keras")


def test_validation_keeps_the_training_value_of_last_value_metrics():
    # The epoch's batch_mse is the MSE of the last training batch; with
    # validation_data, evaluate() rewrites the tracker before the epoch's
    # logs are read, and the history showed val_batch_mse in its place.
    m = fresh()
    x, v = tiny_images(64), tiny_images(24, seed=5) * 0.3   # another MSE than training's
    rec = RecordBatches()
    h = m.fit(x, epochs=2, batch_size=32, verbose=0, validation_data=v,
              validation_batch_size=24, callbacks=[rec])
    last_train = [rec.batch_mse[1], rec.batch_mse[3]]        # 2 batches per epoch
    assert h.history["batch_mse"] == pytest.approx(last_train, rel=1e-6)
    assert h.history["val_batch_mse"][-1] != pytest.approx(last_train[-1], rel=1e-3)
    assert h.history["val_batch_mse"][-1] == pytest.approx(h.history["val_mse"][-1], rel=1e-5)
