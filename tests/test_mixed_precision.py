"""Mixed precision: 16-bit compute with the loss, gamma and KL in float32."""

import keras
import numpy as np
import pytest
from keras import ops

from helpers import (assert_keras_round_trip, pooled_model, run_cli, tiny_config, tiny_images,
                     tiny_model)
from split_vae import GammaBalance, SplitVAE, SplitVAEConfig, precision

MIXED = ("mixed_bfloat16", "mixed_float16")
# Relative agreement of the loss with float32 on the same (trained) weights
# and batch. bfloat16 keeps 8 significant bits, float16 11; measured under
# TensorFlow on 2 CPU cores: 2.5e-4 (bfloat16) and 3.4e-5 (float16). The
# bounds leave about 10x for other backends' kernels.
LOSS_RTOL = {"mixed_bfloat16": 3e-3, "mixed_float16": 5e-4}


@pytest.fixture
def fp16_capable(monkeypatch):
    """Let mixed_float16 run on this CPU: it has no float16 arithmetic, so
    the framework emulates it (slowly, correctly); the numerics are what is
    tested here. The refusal itself is tested below."""
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_fp16"})


def model(prec, seed=0, **changes):
    """A compiled tiny model of that precision, as new (helpers.POOL: traced once)."""
    return pooled_model(seed=seed, precision=prec, **changes)


@pytest.fixture(scope="module")
def trained():
    """A float32 model after 3 epochs with the balance, and a batch it did not see
    (not from the pool: the pool takes its models back after each test)."""
    ref = tiny_model(precision="float32")
    ref.fit(tiny_images(256), epochs=3, batch_size=32, verbose=0, callbacks=[GammaBalance()])
    return ref, tiny_images(32, seed=4)


@pytest.mark.parametrize("prec", MIXED)
def test_mixed_loss_agrees_with_float32(prec, trained):
    ref, x = trained
    m = model(prec)
    m.set_weights(ref.get_weights())  # gamma and the running MSE included
    assert float(m.gamma.numpy()) == float(ref.gamma.numpy()) < 1.0
    # Inference mode (z = z_mean): the same computation but for the dtype.
    lr = float(ref.compute_loss(x=x, y_pred=ref(x)))
    out = m(x)
    lm = m.compute_loss(x=x, y_pred=out)
    assert keras.backend.standardize_dtype(lm.dtype) == "float32"
    assert float(lm) == pytest.approx(lr, rel=LOSS_RTOL[prec])
    # 16-bit layers, float32 weights (the files do not change), float32 output.
    compute = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[prec]
    assert keras.backend.standardize_dtype(m.encoder(x).dtype) == compute
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in m.weights)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize("prec", MIXED)
def test_training_terms_stay_float32_and_z_is_sampled_in_16_bits(prec):
    m = model(prec)
    out = m(tiny_images(8), training=True)
    compute = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[prec]
    assert keras.backend.standardize_dtype(out["z"].dtype) == compute
    assert not np.allclose(ops.convert_to_numpy(ops.cast(out["z"], "float32")),
                           ops.convert_to_numpy(ops.cast(out["z_mean"], "float32")))
    for key in ("x_hat", "sigma", "x1", "x2"):
        assert keras.backend.standardize_dtype(out[key].dtype) == "float32", key
    assert keras.backend.standardize_dtype(m.gamma.dtype) == "float32"


@pytest.mark.parametrize("prec", ("float32",) + MIXED)
def test_a_short_fit_lowers_the_loss_under_each_policy(prec, fp16_capable):
    m = model(prec)
    h = m.fit(tiny_images(256), epochs=6, batch_size=32, verbose=0)  # gamma fixed
    losses = h.history["loss"]
    assert np.isfinite(losses).all(), losses
    assert losses[-1] < 0.8 * losses[0], losses


def test_mixed_float16_trains_with_loss_scaling_and_the_balance(fp16_capable):
    m = model("mixed_float16")
    assert isinstance(m.optimizer, keras.optimizers.LossScaleOptimizer)
    h = m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0, callbacks=[GammaBalance()])
    assert float(m.gamma.numpy()) < 1.0
    assert np.isfinite(h.history["loss"]).all()


def test_building_a_mixed_model_leaves_the_global_policy_alone():
    before = keras.config.dtype_policy().name
    model("mixed_bfloat16")
    assert keras.config.dtype_policy().name == before == "float32"
    assert keras.layers.Dense(2).compute_dtype == "float32"


def test_a_mixed_model_saves_and_loads_with_its_policy(tmp_path):
    m = model("mixed_bfloat16")
    m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0, callbacks=[GammaBalance()])
    loaded = assert_keras_round_trip(m, tmp_path / "m.keras")  # outputs bit for bit
    assert loaded.encoder.get_layer("enc_conv_in").compute_dtype == "bfloat16"
    x = tiny_images(4, seed=5)
    # The weights are float32: a float32 model of the same config reads them.
    m.save_weights(tmp_path / "m.weights.h5")
    f32 = SplitVAE(m.config.replace(precision="float32"))
    f32.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(ops.convert_to_numpy(f32(x)), ops.convert_to_numpy(m(x)),
                               atol=5e-2)


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="unknown precision 'float16'.*mixed_bfloat16"):
        SplitVAEConfig(precision="float16")


def test_mixed_float16_on_a_cpu_without_float16_is_refused_before_training(monkeypatch):
    if precision.accelerators():
        pytest.skip("a GPU runs mixed_float16")
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    m = model("mixed_float16")
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match="mixed_float16 needs a GPU.*use mixed_bfloat16"):
        m.fit(tiny_images(32), epochs=1, verbose=0)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    with pytest.raises(ValueError, match="use float32"):
        precision.check_device_supports("mixed_float16")
    precision.check_device_supports("mixed_bfloat16")  # bfloat16 is not refused


def test_the_cli_names_a_bad_precision_before_training(tmp_path):
    proc = run_cli("train", "--precision", "float16", "--out", str(tmp_path / "a"))
    assert proc.returncode == 2
    assert "invalid choice: 'float16'" in proc.stderr and "mixed_bfloat16" in proc.stderr


def test_the_cli_refuses_mixed_float16_on_a_cpu_without_float16(tmp_path, monkeypatch, capsys):
    # In-process, with the CPU's flags faked, so that it runs on any CPU.
    if precision.accelerators():
        pytest.skip(f"this machine has an accelerator ({precision.accelerators()[0]}), "
                    "which runs mixed_float16")
    from split_vae.cli import main

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "f16c"})
    status = main(["train", "--precision", "mixed_float16", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert status == 2
    assert "mixed_float16 needs a GPU" in err and "use float32" in err
    assert "Traceback" not in err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("flags,warns", [
    ({"avx2", "avx512f", "avx512_fp16"}, True),   # float16 arithmetic, no bfloat16
    ({"avx2"}, True),
    ({"avx2", "avx512_bf16"}, False),
    ({"amx_bf16"}, False),
    ({"bf16"}, False),                              # Arm's
])
def test_mixed_bfloat16_without_bfloat16_arithmetic_warns_once_before_training(
        flags, warns, monkeypatch, caplog):
    if precision.accelerators():
        pytest.skip("this machine has an accelerator: the CPU's flags do not matter")
    monkeypatch.setattr(precision, "cpu_flags", lambda: set(flags))
    monkeypatch.setattr(precision, "_warned", set())
    seen_at_start = []

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen_at_start.append([r.getMessage() for r in caplog.records
                                  if r.name == "split_vae.precision"])

    m = model("mixed_bfloat16")
    with caplog.at_level("WARNING", logger="split_vae.precision"):
        for _ in range(2):  # a script that calls fit again is warned once
            m.fit(tiny_images(32), epochs=1, batch_size=32, verbose=0, callbacks=[Record()])
    expected = ["emulated: it runs many times slower than float32"] if warns else []
    for messages in seen_at_start:
        assert [e for e in expected if any(e in msg for msg in messages)] == expected
        assert len(messages) == len(expected), messages
