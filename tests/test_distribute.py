"""Several devices: one step on 2 devices equals one device on the same batch.

Two virtual CPU devices, each test in its own process (devices are fixed when
a backend starts): TensorFlow logical devices under MirroredStrategy, and
XLA_FLAGS=--xla_force_host_platform_device_count=2 for JAX's DataParallel.

What differs from one device, and how the comparison deals with it:
- Each replica's loss is divided by the number of replicas, since the
  replicas' gradients are summed (TensorFlow); the logged loss is the global
  batch's. SGD is used for the step, so a wrong scale shows in the update
  (Adam's first step would hide it: it normalises the gradient).
- BatchNorm: on TensorFlow the model uses synchronized BatchNorm under a
  strategy, so batch statistics are the global batch's, as on one device;
  JAX runs one program over the sharded batch and computes them globally.
- The sampling noise: each replica draws its own, so z differs from a
  one-device run. The test makes the posterior variance negligible
  (z_log_var = -30) so that z = z_mean on both.
What remains is the order of floating-point sums: tolerances below.
"""

import json
import os

import numpy as np
import pytest

from helpers import TINY_TRAIN_FLAGS, run_cli, run_python
from workers import assert_same_updates

STEP = r"""
import json, os, sys
import numpy as np
backend = os.environ["KERAS_BACKEND"]
if backend == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
sys.path.insert(0, "tests")
from helpers import tiny_config, tiny_images
from split_vae import GammaBalance, SplitVAE
from split_vae.distribute import data_parallel

x = tiny_images(64)

class Replicas(keras.callbacks.Callback):
    # gamma as each device holds it, after GammaBalance ran for the batch.
    def __init__(self):
        super().__init__()
        self.gammas = []
    def on_train_batch_end(self, batch, logs=None):
        v = self.model.gamma.value
        if backend == "tensorflow":
            values = [float(c.numpy()) for c in getattr(v, "values", [v])]
        else:
            values = [float(np.asarray(s.data)) for s in v.addressable_shards]
        self.gammas.append(values)

def one_step(scope):
    with scope():
        keras.utils.set_random_seed(0)
        m = SplitVAE(tiny_config(), seed=0)
        lv = m.latent.get_layer("z_log_var")
        lv.kernel.assign(np.zeros(lv.kernel.shape, "float32"))
        lv.bias.assign(np.full(lv.bias.shape, -30.0, "float32"))
        m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
        before = [w.copy() for w in m.get_weights()]
        rep = Replicas()
        h = m.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0,
                  callbacks=[GammaBalance(), rep])
    return m, before, h.history, rep.gammas

import contextlib
m1, before, h1, g1 = one_step(contextlib.nullcontext)
scope, what = data_parallel(32)
m2, before2, h2, g2 = one_step(scope)
out = {"what": what, "loss": [h1["loss"][0], h2["loss"][0]],
       "gamma": [float(m1.gamma.numpy()), float(m2.gamma.numpy())],
       "replica_gammas": g2, "one_device_gammas": g1,
       "names": [w.path for w in m1.weights]}
for a, b in zip(before, before2):
    np.testing.assert_array_equal(a, b)
np.savez(sys.argv[1] + ".npz",
         **{f"d1_{i}": w - b for i, (w, b) in enumerate(zip(m1.get_weights(), before))},
         **{f"d2_{i}": w - b for i, (w, b) in enumerate(zip(m2.get_weights(), before))})
json.dump(out, open(sys.argv[1] + ".json", "w"))
"""


def run_step(backend, path):
    run_python(["-c", STEP, path], check=True,
               env={"KERAS_BACKEND": backend,
                    "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    with open(path + ".json") as f:
        return json.load(f), dict(np.load(path + ".npz"))


@pytest.mark.slow
@pytest.mark.parametrize("backend, engine", [("tensorflow", "MirroredStrategy"),
                                             ("jax", "DataParallel")])
def test_two_devices_take_the_same_steps_as_one(tmp_path, backend, engine):
    import numpy as np

    out, deltas = run_step(backend, str(tmp_path / backend))
    assert engine in out["what"] and "2 devices" in out["what"]
    # Two steps on global batches of 32 (16 per device): the logged loss
    # (mean of the two steps' global-batch losses) equals one device's.
    assert out["loss"][1] == pytest.approx(out["loss"][0], rel=1e-5)
    # gamma: the same after every batch on both devices, and as on one device.
    assert len(out["replica_gammas"]) == 2
    for replicas, single in zip(out["replica_gammas"], out["one_device_gammas"]):
        assert len(replicas) == 2 and replicas[0] == replicas[1]
        assert replicas[0] == pytest.approx(single[0], rel=1e-6)
    assert out["gamma"][1] == pytest.approx(out["gamma"][0], rel=1e-6) and out["gamma"][0] < 1
    # Every weight moved by the same amount (BatchNorm moving statistics
    # too), to 0.2% of its largest update (workers.assert_same_updates).
    n = len(out["names"])
    worst = assert_same_updates([deltas[f"d1_{i}"] for i in range(n)],
                                [deltas[f"d2_{i}"] for i in range(n)], out["names"])
    print(f"{backend}: largest update difference / tolerance = {worst:.2e}")


TINY = TINY_TRAIN_FLAGS + ["--epochs", "1"]


def test_distribute_with_one_device_is_refused_before_training(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", *TINY, "--distribute", "--out", str(out),
               env={"KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 2, proc.stderr
    assert "--distribute needs at least 2 devices, found 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing was written


@pytest.mark.slow
def test_the_cli_trains_on_two_jax_devices(tmp_path):
    out = str(tmp_path / "run")
    proc = run_cli("train", *TINY, "--distribute", "--out", out,
               env={"KERAS_BACKEND": "jax",
                    "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DataParallel on 2 devices" in proc.stderr
    assert os.path.getsize(os.path.join(out, "model.keras")) > 0


def test_distribute_under_torch_is_refused_with_the_backends_to_use(tmp_path):
    proc = run_cli("train", *TINY, "--distribute", "--out", str(tmp_path / "t"),
               env={"KERAS_BACKEND": "torch"})
    assert proc.returncode == 2
    assert "supports the tensorflow and jax backends, not torch" in proc.stderr


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path):
    proc = run_cli("train", *TINY[:-2], "--batch-size", "33", "--epochs", "1", "--distribute",
               "--out", str(tmp_path / "r"),
               env={"KERAS_BACKEND": "jax",
                    "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert proc.returncode == 2
    assert "does not split evenly over 2 devices" in proc.stderr
