"""Data parallel training on several devices, with the engines Keras runs on.

TensorFlow: `tf.distribute.MirroredStrategy` on the GPUs of one machine, or
`MultiWorkerMirroredStrategy` across machines described by `TF_CONFIG`; the
model must be built (or loaded) inside `strategy.scope()`. JAX:
`keras.distribution.DataParallel`, set before the model is built. PyTorch has
no such path in Keras's own trainer.

Each replica computes the loss on its share of the global batch; Keras's
TensorFlow trainer sums the replicas' gradients, so the loss each replica
returns is divided by the number of replicas (`per_replica_loss`), as Keras's
own losses do. Under JAX one program runs over the sharded batch and no
scaling is needed.
"""

from __future__ import annotations

import contextlib
import json
import os

import keras

# TensorFlow and JAX are imported inside the functions that need them, only
# under that backend: a user of one engine need not install the other.


def replicas_in_sync() -> int:
    """Replicas of the current tf.distribute strategy (1 outside one / not TF)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def per_replica_loss(loss):
    """The share of one replica of a mean loss whose gradients are summed."""
    n = replicas_in_sync()
    return loss if n == 1 else loss / n


def _multi_worker(strategy) -> bool:
    # The test Keras's TensorFlow trainer makes before reducing a step's logs
    # with the collective path (`reduce_per_replica`).
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def step_logs(logs: dict) -> dict:
    """The logs of one replica's step, shaped for Keras to reduce them.

    Under `MultiWorkerMirroredStrategy` with several workers, Keras 3's
    TensorFlow trainer averages each log over the replicas with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar
    ("Invalid reduction dimension 0 for input with 0 dimensions",
    keras-team/keras#20585, tensorflow/tensorflow#72388). Given a leading
    axis of length 1, the reduction is the mean over the replicas and the
    result a scalar again, as on one machine. Anywhere else the logs are
    returned as they are.
    """
    if keras.backend.backend() != "tensorflow":
        return logs
    import tensorflow as tf

    if not _multi_worker(tf.distribute.get_strategy()):
        return logs
    return {k: tf.reshape(v, (1,)) for k, v in logs.items()}


def _tf_config_workers() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"TF_CONFIG is not valid JSON with a 'cluster': {e}") from None
    return sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))


def data_parallel(batch_size: int):
    """A context in which to build, load and train a model on every device.

    Returns (scope, description): `with scope():` around building, loading
    and fitting the model. ValueError when fewer than two
    devices (or workers) are found, on PyTorch, or when batch_size does not
    split evenly over the devices.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        workers = _tf_config_workers()
        if workers > 1:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            what = f"MultiWorkerMirroredStrategy, {workers} workers"
        else:
            gpus = tf.config.list_logical_devices("GPU")
            # Several logical CPUs exist only when a program configured them
            # (tf.config.set_logical_device_configuration), as the tests do.
            devices = gpus if len(gpus) > 1 else tf.config.list_logical_devices("CPU")
            if len(devices) < 2:
                raise ValueError(
                    f"--distribute needs at least 2 devices, found {len(devices)} "
                    f"({', '.join(d.name for d in devices) or 'none'}); "
                    "drop --distribute, or set TF_CONFIG to train on several machines")
            names = [d.name for d in devices]
            strategy = tf.distribute.MirroredStrategy(names)
            what = f"MirroredStrategy on {len(names)} devices: {', '.join(names)}"
        _check_split(batch_size, strategy.num_replicas_in_sync)
        return strategy.scope, what
    if backend == "jax":
        import jax

        devices = jax.devices()
        if len(devices) < 2:
            raise ValueError(
                f"--distribute needs at least 2 devices, JAX found {len(devices)} "
                f"({', '.join(map(str, devices))}); drop --distribute")
        _check_split(batch_size, len(devices))
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext, (
            f"keras.distribution.DataParallel on {len(devices)} devices")
    raise ValueError(
        f"--distribute supports the tensorflow and jax backends, not {backend}; "
        "set KERAS_BACKEND=tensorflow or jax")


def _check_split(batch_size: int, replicas: int) -> None:
    if batch_size % replicas:
        raise ValueError(
            f"the batch size {batch_size} does not split evenly over {replicas} devices; "
            f"use a multiple of {replicas} (--batch-size)")
