"""The ResNet-like building blocks of the Split VAE (paper, Figure 6).

Functional-API builders: each takes a symbolic tensor and returns one. The
order in which layers are created is the order of the authors' Keras 2 code
(per block: BatchNorm, conv, BatchNorm, conv, then the shortcut conv), which
is what the legacy weight loader relies on.
"""

from __future__ import annotations

from keras import layers

# The original's BatchNormalization: eps 1e-5 and a slow moving average
# (momentum 0.999, `SplitVAEConfig.bn_momentum`), as in the Two-Stage VAE code
# these blocks come from.
BN_EPSILON = 1e-5


def batch_norm(name: str, bn_momentum: float, synchronized: bool = False):
    """The original's BatchNormalization. synchronized=True (TensorFlow only)
    computes the batch statistics over every replica of a tf.distribute
    strategy, so that a batch split over devices is normalised as one."""
    kwargs = {"synchronized": True} if synchronized else {}
    return layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=name,
                                     **kwargs)


def residual_block(x, dim: int, depth: int, kernel_size: int, name: str,
                   bn_momentum: float = 0.999, synchronized: bool = False):
    """depth x [BatchNorm, swish, Conv2D(dim)] plus a Conv2D(dim) shortcut."""
    y = x
    for i in range(depth):
        y = batch_norm(f"{name}_bn{i}", bn_momentum, synchronized)(y)
        y = layers.Activation("swish", name=f"{name}_swish{i}")(y)
        y = layers.Conv2D(dim, kernel_size, padding="same", name=f"{name}_conv{i}")(y)
    shortcut = layers.Conv2D(dim, kernel_size, padding="same", name=f"{name}_shortcut")(x)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def dense_block(x, dim: int, depth: int, name: str, bn_momentum: float = 0.999,
                synchronized: bool = False):
    """The residual block with Dense layers: the encoder's last stage."""
    y = x
    for i in range(depth):
        y = batch_norm(f"{name}_bn{i}", bn_momentum, synchronized)(y)
        y = layers.Activation("swish", name=f"{name}_swish{i}")(y)
        y = layers.Dense(dim, name=f"{name}_dense{i}")(y)
    shortcut = layers.Dense(dim, name=f"{name}_shortcut")(x)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def scale_block(x, dim: int, block_per_scale: int, depth: int, kernel_size: int,
                name: str, bn_momentum: float = 0.999, synchronized: bool = False):
    """block_per_scale residual blocks in sequence, all at width dim."""
    for b in range(block_per_scale):
        x = residual_block(x, dim, depth, kernel_size, name=f"{name}_block{b}",
                           bn_momentum=bn_momentum, synchronized=synchronized)
    return x
