"""Mixed precision: the policies a Split VAE trains under, and whether the
device can run them.

Under "mixed_bfloat16" or "mixed_float16" the layers compute in 16 bits and
keep float32 weights (Keras's dtype policies); the model keeps the loss,
gamma, the KL and the last sigmoid layer in float32 (see `model.py`), and
"mixed_float16" trains with dynamic loss scaling
(`keras.optimizers.LossScaleOptimizer`), since float16 gradients underflow.
bfloat16 has float32's exponent range and needs no scaling.
"""

from __future__ import annotations

import contextlib
import logging
import platform

import keras

# PRECISIONS is read here by the command line's --precision choices as well.
from .config import PRECISIONS, check_precision_name

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Make `name` Keras's global dtype policy inside the block only.

    Layers take the global policy when they are created, so a model built
    inside the block keeps it; other models and tests do not see it.
    """
    check_precision_name(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def cpu_flags() -> set[str]:
    """The instruction-set flags of this machine's CPU (Linux), or an empty set."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# float16 arithmetic in hardware: x86 AVX512-FP16 / AMX-FP16, Arm's FP16
# extension. Without it (f16c only converts), frameworks emulate float16
# through float32 and mixed_float16 gains nothing over float32.
FP16_FLAGS = {"avx512_fp16", "amx_fp16", "fphp", "asimdhp"}
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def accelerators() -> list[str]:
    """Names of the GPUs/TPUs the current Keras backend sees (empty on CPU)."""
    # Each engine is imported only when it is Keras's backend: a JAX or
    # PyTorch user need not have TensorFlow installed, and the reverse.
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices() if d.device_type in
                ("GPU", "TPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return []


def emulated(precision: str) -> str | None:
    """Why this device would only emulate `precision`, or None where it runs it.

    A GPU/TPU runs both 16-bit policies; a CPU needs float16 arithmetic
    (FP16_FLAGS) for mixed_float16 and bfloat16 arithmetic (BF16_FLAGS) for
    mixed_bfloat16, else the framework computes through float32, slowly.
    """
    check_precision_name(precision)
    if precision == "float32" or accelerators():
        return None
    kind, needed = (("float16", FP16_FLAGS) if precision == "mixed_float16"
                    else ("bfloat16", BF16_FLAGS))
    if cpu_flags() & needed:
        return None
    return (f"this {platform.machine()} CPU has no {kind} arithmetic "
            f"({'/'.join(sorted(needed))}), so {precision} would only be emulated")


def check_device_supports(precision: str) -> None:
    """Before training: refuse what the device cannot run, warn of what it emulates.

    mixed_float16 needs a GPU or a CPU with float16 arithmetic; on other CPUs
    it is refused (ValueError) with what to use instead. mixed_bfloat16 on a
    CPU without bfloat16 arithmetic runs, emulated and many times slower than
    float32: a warning says so, once per process.
    """
    reason = emulated(precision)
    if reason is None:
        return
    if precision == "mixed_bfloat16":
        if precision not in _warned:
            _warned.add(precision)
            logger.warning("%s: it runs many times slower than float32; use float32 here, "
                           "mixed_bfloat16 on a GPU or a CPU that has it", reason)
        return
    bf16 = sorted(cpu_flags() & BF16_FLAGS)
    alternative = f"mixed_bfloat16 (this CPU has {', '.join(bf16)})" if bf16 else "float32"
    raise ValueError(f"precision mixed_float16 needs a GPU or a CPU with float16 arithmetic; "
                     f"{reason}: use {alternative}")


# The precisions already warned about in this process (check_device_supports
# runs before every fit, and a script may call fit many times).
_warned: set[str] = set()
