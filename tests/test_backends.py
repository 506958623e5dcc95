"""Every Keras 3 backend: the balance inside the step, and files that travel.

CI runs this file (with test_model, test_variants, test_training, test_cli and
test_mixed_precision) under KERAS_BACKEND=tensorflow, jax and torch. The cross-backend round trip starts
its own processes, one per backend, and runs once (under tensorflow).
"""

import json
import os

import keras
import numpy as np
import pytest

from helpers import run_python, tiny_config, tiny_images
from split_vae import GammaBalance, SplitVAE

BACKENDS = ("tensorflow", "jax", "torch")


class GammaSeen(keras.callbacks.Callback):
    """Per batch: the gamma the step's loss used (the 'gamma' log, read inside
    the step) and the gamma the model holds after the batch's callbacks."""

    def __init__(self):
        super().__init__()
        self.used, self.after = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.used.append(float(logs["gamma"]))
        self.after.append(float(self.model.gamma.numpy()))


def test_loss_of_each_batch_uses_the_gamma_set_after_the_previous_batch():
    keras.utils.set_random_seed(0)
    m = SplitVAE(tiny_config(), seed=0)
    m.compile()
    seen = GammaSeen()
    # GammaBalance first, so `after` is the gamma it set for the next batch.
    m.fit(tiny_images(192), epochs=2, batch_size=32, verbose=0,
          callbacks=[GammaBalance(), seen])
    assert len(seen.used) == 12
    assert seen.used[0] == 1.0
    np.testing.assert_allclose(seen.used[1:], seen.after[:-1], rtol=1e-6)
    assert seen.after[-1] < seen.after[0] < 1.0  # gamma moved every batch


def test_the_logged_loss_is_the_loss_at_the_gamma_of_the_step():
    # The loss and gamma of a step come from the same read: with gamma set
    # by hand before fit, one step on one batch logs the loss at that gamma.
    keras.utils.set_random_seed(0)
    m = SplitVAE(tiny_config(beta=2.0), seed=0)
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    m.gamma.assign(0.25)
    x = tiny_images(32)
    h = m.fit(x, epochs=1, batch_size=32, verbose=0)
    assert h.history["gamma"][0] == 0.25
    mse, kl = h.history["mse"][0], h.history["kl"][0]
    # loss = mean(0.5 * sum(sq) / gamma + beta * kl), sum over 16*16 pixels.
    expected = 0.5 * mse * 16 * 16 / 0.25 + 2.0 * kl
    assert h.history["loss"][0] == pytest.approx(expected, rel=1e-4)


SAVE = r"""
import json, sys, numpy as np, keras
sys.path.insert(0, "tests")
from helpers import run_python, tiny_config, tiny_images
from split_vae import GammaBalance, SplitVAE
out = sys.argv[1]
keras.utils.set_random_seed(3)
m = SplitVAE(tiny_config(), seed=3)
m.compile()
m.fit(tiny_images(64), epochs=1, batch_size=32, verbose=0, callbacks=[GammaBalance()])
m.save(f"{out}/model.keras")
m.save_to_preset(f"{out}/preset")
"""

OUTPUTS = r"""
import json, sys, numpy as np, keras
sys.path.insert(0, "tests")
from helpers import model_outputs
import split_vae
from split_vae import SplitVAE
def outputs(m):
    out = model_outputs(m, n=6, seed=11)
    out["generate"] = m.generate(3, seed=1)["x1"]
    out["iterations"] = (np.int64(keras.ops.convert_to_numpy(m.optimizer.iterations))
                         if getattr(m, "optimizer", None) is not None else np.int64(-1))
    return out
for src in sys.argv[2:]:
    k = keras.saving.load_model(f"{src}/model.keras", safe_mode=True)
    np.savez(f"{src}/loaded_keras_by_{sys.argv[1]}.npz", **outputs(k))
    p = SplitVAE.from_preset(f"{src}/preset")
    np.savez(f"{src}/loaded_preset_by_{sys.argv[1]}.npz", **outputs(p))
"""


def _run(backend, code, *args):
    run_python(["-c", code, *args], env={"KERAS_BACKEND": backend}, check=True)


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="starts one process per backend itself; run once")
def test_a_model_saved_under_any_backend_loads_under_any_other(tmp_path):
    dirs = {b: str(tmp_path / b) for b in BACKENDS}
    for b, d in dirs.items():
        os.makedirs(d)
        _run(b, SAVE, d)
    for b in BACKENDS:  # each backend loads every file, its own included
        _run(b, OUTPUTS, b, *dirs.values())
    for src, d in dirs.items():
        ref = dict(np.load(f"{d}/loaded_keras_by_{src}.npz"))
        assert ref["gamma"] < 1.0 and ref["iterations"] == 2, src
        for b in BACKENDS:
            for kind in ("keras", "preset"):
                got = np.load(f"{d}/loaded_{kind}_by_{b}.npz")
                where = f"saved under {src}, .{kind} loaded under {b}"
                assert got["gamma"] == ref["gamma"], where
                if kind == "keras":
                    assert got["iterations"] == ref["iterations"], where
                for key in ("call", "z_mean", "z_log_var", "decode_x_hat", "decode_x1",
                            "generate"):
                    # Same weights, different kernels: float32 rounding only.
                    np.testing.assert_allclose(got[key], ref[key], atol=2e-5, rtol=0,
                                               err_msg=f"{key}, {where}")
    with open(f"{dirs['jax']}/preset/config.json") as f:
        assert json.load(f)["latent_dim"] == 4
