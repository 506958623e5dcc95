"""The networks of the Split VAE: encoder, latent block and decoder, in the
original's layer order, and the composition of the decoder's output.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
The decoder's last convolution has 2C+1 sigmoid channels: a map sigma and two
images x1, x2, composed as x_hat = sigma*x1 + (1-sigma)*x2 (`split_output`).
`model.SplitVAE` holds the three sub-models and trains them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .blocks import dense_block, scale_block
from .config import SplitVAEConfig
from .distribute import replica_normal
from .parts import map_names, part_names

PACKAGE = "split_vae"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """z = z_mean + eps * exp(z_log_var / 2) when training, z_mean otherwise.

    The original samples always; sampling only in training makes
    reconstruction and `model(x)` deterministic, which the loss does not see.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        # The noise in z's dtype: bfloat16/float16 under a mixed policy.
        # On several replicas, each keeps its rows of the global batch's noise.
        eps = replica_normal(ops.shape(z_mean), z_mean.dtype, self.seed_generator)
        return z_mean + eps * ops.exp(0.5 * z_log_var)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    # Keras saves no SeedGenerator state; keeping it makes a resumed run draw
    # the same noise as an uninterrupted one.
    def save_own_variables(self, store):
        store["seed_state"] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        if "seed_state" in list(store.keys()):
            self.seed_generator.state.assign(np.asarray(store["seed_state"]))

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


def split_output(decoded, channels: int, split: bool = True) -> dict:
    """Split the decoder's output into maps and images and compose x_hat.

    The paper's layout (2C+1 channels): channel 0 is sigma, 1..C is x1,
    C+1..2C is x2, and x_hat = sigma*x1 + (1-sigma)*x2; sigma broadcasts
    over the C channels. The layout of K components (K + K*C channels, from
    `PartsActivation`): K maps that sum to 1, then x1, ..., xK, and
    x_hat = sum_k map_k * x_k; K = 2 in this layout (a specialised decoder)
    returns sigma = map_1, x1, x2 as the paper's. The layout is told by the
    channel count (2C+1 is never K + K*C). A vanilla decoder (split=False)
    returns its C channels as x_hat alone.
    """
    if not split:
        return {"x_hat": decoded}
    total = decoded.shape[-1]
    if total == 2 * channels + 1:
        sigma = decoded[..., 0:1]
        x1 = decoded[..., 1:1 + channels]
        x2 = decoded[..., 1 + channels:1 + 2 * channels]
        x_hat = sigma * x1 + (1.0 - sigma) * x2
        return {"sigma": sigma, "x1": x1, "x2": x2, "x_hat": x_hat}
    k, rest = divmod(int(total), channels + 1)
    if rest or k < 2:
        raise ValueError(f"a split decoder's output has 2C+1 or K*(C+1) channels for "
                         f"C={channels}; received {total}")
    maps = [decoded[..., i:i + 1] for i in range(k)]
    images = [decoded[..., k + i * channels:k + (i + 1) * channels] for i in range(k)]
    x_hat = maps[0] * images[0]
    for m, x in zip(maps[1:], images[1:]):
        x_hat = x_hat + m * x
    out = dict(zip(map_names(k), maps[:1] if k == 2 else maps))
    out.update(zip(part_names(k), images))
    out["x_hat"] = x_hat
    return out


@keras.saving.register_keras_serializable(package=PACKAGE)
class PartsActivation(layers.Layer):
    """K logits and K images (linear) -> K maps (softmax over the K logits)
    and K images (sigmoid), in the layout of `split_output`: maps, then x1..xK.

    The input is one tensor of K + K*C channels (logits first, then the
    images), or a list of K tensors of 1 + C channels (a logit, then an
    image: the output of each specialised branch).
    """

    def __init__(self, components: int, **kwargs):
        super().__init__(**kwargs)
        self.components = int(components)

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            logits = ops.concatenate([b[..., :1] for b in inputs], axis=-1)
            images = ops.concatenate([b[..., 1:] for b in inputs], axis=-1)
        else:
            logits = inputs[..., :self.components]
            images = inputs[..., self.components:]
        return ops.concatenate([ops.softmax(logits, axis=-1), ops.sigmoid(images)], axis=-1)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)):
            return tuple(input_shape[0][:-1]) + (sum(s[-1] for s in input_shape),)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"components": self.components})
        return config


# ---------------------------------------------------------------------------
# The three sub-models of the original, in its order
# ---------------------------------------------------------------------------
def build_encoder(config: SplitVAEConfig, sync_bn: bool = False) -> keras.Model:
    """Image -> embedding: strided convs with scale blocks, GAP, dense block.

    sync_bn: BatchNorm statistics over every replica (see blocks.batch_norm).
    """
    c = config
    x_in = keras.Input(shape=c.image_shape, name="image")
    dim = c.base_dim
    y = layers.Conv2D(dim, c.kernel_size, strides=2, padding="same",
                      name="enc_conv_in")(x_in)
    for i in range(c.num_scale - 1):
        y = scale_block(y, dim, c.block_per_scale, c.depth_per_block,
                        c.kernel_size, name=f"enc_scale{i}", bn_momentum=c.bn_momentum,
                        synchronized=sync_bn)
        dim *= 2
        y = layers.Conv2D(dim, c.kernel_size, strides=2, padding="same",
                          name=f"enc_down{i}")(y)
    y = layers.GlobalAveragePooling2D(name="enc_pool")(y)
    emb = dense_block(y, c.emb_dim, c.depth_per_block, name="enc_dense",
                      bn_momentum=c.bn_momentum, synchronized=sync_bn)
    return keras.Model(x_in, emb, name="encoder")


def build_latent(config: SplitVAEConfig, seed=None) -> keras.Model:
    """Embedding -> [embedding of z, z, z_mean, z_log_var].

    The Dense named "to_embedding" is the one that maps prior or GMM samples
    to embeddings at generation time.
    """
    emb = keras.Input(shape=(config.emb_dim,), name="embedding")
    z_mean = layers.Dense(config.latent_dim, name="z_mean")(emb)
    z_log_var = layers.Dense(config.latent_dim, name="z_log_var")(emb)
    z = Sampling(seed=seed, name="sampling")([z_mean, z_log_var])
    emb_hat = layers.Dense(config.emb_dim, name="to_embedding")(z)
    return keras.Model(emb, [emb_hat, z, z_mean, z_log_var], name="latent")


def build_decoder(config: SplitVAEConfig, sync_bn: bool = False) -> keras.Model:
    """Embedding -> 4x4 map -> transposed convs with scale blocks -> image(s).

    The last convolution and its activation run in float32 under any
    precision policy (a C- or 2C+1-channel layer: cheap), so the maps, the
    images and their composition are float32, as the loss is.

    The paper's split decoder ends in one sigmoid convolution of 2C+1
    channels; a vanilla one in C. With K components (config.components > 2)
    the last convolution is linear with K + K*C channels and
    `PartsActivation` turns them into K softmax maps and K sigmoid images.
    A specialised decoder (config.specialized) gives each component its own
    copy of the last scale block and a convolution of 1 + C channels (its
    logit and its image); the layers before are shared. Every layer a variant
    shares with the paper's decoder is created in the same order, so a seed
    initialises them alike (the paired runs of `reproduce`).
    """
    c = config
    dims, scales = c.decoder_dims()
    emb = keras.Input(shape=(c.emb_dim,), name="embedding")
    y = layers.Dense(16 * dims[0], name="dec_dense_in")(emb)
    y = layers.Reshape((4, 4, dims[0]), name="dec_reshape")(y)
    last = len(scales) - 2
    branches = None
    for i in range(len(scales) - 1):
        y = layers.Conv2DTranspose(dims[i + 1], c.kernel_size, strides=2,
                                   padding="same", name=f"dec_up{i}")(y)
        if c.split and c.specialized and i == last:
            branches = [scale_block(y, dims[i + 1], c.block_per_scale, c.depth_per_block,
                                    c.kernel_size, name=f"dec_scale{i}_part{k + 1}",
                                    bn_momentum=c.bn_momentum, synchronized=sync_bn)
                        for k in range(c.components)]
        else:
            y = scale_block(y, dims[i + 1], c.block_per_scale, c.depth_per_block,
                            c.kernel_size, name=f"dec_scale{i}", bn_momentum=c.bn_momentum,
                            synchronized=sync_bn)
    if not c.split or c.paper_layout:
        out = layers.Conv2D(c.output_channels, c.kernel_size, padding="same",
                            activation="sigmoid", dtype="float32", name="dec_out")(y)
    elif branches is None:
        out = layers.Conv2D(c.output_channels, c.kernel_size, padding="same",
                            dtype="float32", name="dec_out")(y)
        out = PartsActivation(c.components, dtype="float32", name="dec_parts")(out)
    else:
        heads = [layers.Conv2D(1 + c.channels, c.kernel_size, padding="same", dtype="float32",
                               name=f"dec_out_part{k + 1}")(b) for k, b in enumerate(branches)]
        out = PartsActivation(c.components, dtype="float32", name="dec_parts")(heads)
    return keras.Model(emb, out, name="decoder")
