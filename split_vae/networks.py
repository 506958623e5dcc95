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
    """Split the decoder's output into sigma, x1, x2 and compose x_hat.

    Channel 0 is sigma, 1..C is x1, C+1..2C is x2 (the original's layout);
    sigma broadcasts over the C channels. A vanilla decoder (split=False)
    returns its C channels as x_hat alone.
    """
    if not split:
        return {"x_hat": decoded}
    sigma = decoded[..., 0:1]
    x1 = decoded[..., 1:1 + channels]
    x2 = decoded[..., 1 + channels:1 + 2 * channels]
    x_hat = sigma * x1 + (1.0 - sigma) * x2
    return {"sigma": sigma, "x1": x1, "x2": x2, "x_hat": x_hat}


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

    The last convolution and its sigmoid run in float32 under any precision
    policy (a C- or 2C+1-channel layer: cheap), so sigma, x1, x2 and their
    composition are float32, as the loss is.
    """
    c = config
    dims, scales = c.decoder_dims()
    emb = keras.Input(shape=(c.emb_dim,), name="embedding")
    y = layers.Dense(16 * dims[0], name="dec_dense_in")(emb)
    y = layers.Reshape((4, 4, dims[0]), name="dec_reshape")(y)
    for i in range(len(scales) - 1):
        y = layers.Conv2DTranspose(dims[i + 1], c.kernel_size, strides=2,
                                   padding="same", name=f"dec_up{i}")(y)
        y = scale_block(y, dims[i + 1], c.block_per_scale, c.depth_per_block,
                        c.kernel_size, name=f"dec_scale{i}", bn_momentum=c.bn_momentum,
                        synchronized=sync_bn)
    out = layers.Conv2D(c.output_channels, c.kernel_size, padding="same",
                        activation="sigmoid", dtype="float32", name="dec_out")(y)
    return keras.Model(emb, out, name="decoder")
