"""The authors' network rebuilt with Keras 2 (tf-keras), to write legacy checkpoints.

Test helper, not part of the package. It recreates the layout of the authors'
Keras 2 code (github.com/asperti/Split-VAE, split_vae.py; the architecture of the
paper's Section III-A): the same layers created in the same order, inside the
same `name_scope`s, and a training model `[x, gamma] -> x_hat` whose
`save_weights("f.hdf5")` writes the legacy HDF5 format that
`SplitVAE.from_legacy_h5` reads. No layer is named:
Keras 2 numbers them per type in creation order (conv2d, conv2d_1, ...), as in
the published files.
"""

from __future__ import annotations

import numpy as np
import tf_keras as k2

K = k2.backend
L = k2.layers


def _res_block(x, dim, depth, kernel_size):
    with K.name_scope("ResBlock"):
        y = x
        for _ in range(depth):
            y = L.BatchNormalization(momentum=0.999, epsilon=1e-5)(y)
            y = L.Activation("swish")(y)
            y = L.Conv2D(dim, kernel_size, padding="same")(y)
        shortcut = L.Conv2D(dim, kernel_size, padding="same")(x)
    return y + shortcut


def _res_fc_block(x, dim, depth):
    with K.name_scope("ResFcBlock"):
        y = x
        for _ in range(depth):
            y = L.BatchNormalization(momentum=0.999, epsilon=1e-5)(y)
            y = L.Activation("swish")(y)
            y = L.Dense(dim)(y)
        shortcut = L.Dense(dim)(x)
    return y + shortcut


def _scale_block(x, dim, block_per_scale, depth, kernel_size):
    with K.name_scope("ScaleBlock"):
        for _ in range(block_per_scale):
            x = _res_block(x, dim, depth, kernel_size)
    return x


def build_original(image_shape, latent_dim, base_dim, emb_dim, kernel_size,
                   num_scale, block_per_scale, depth_per_block, split=True):
    """The original FullModel: returns (vae, encoder, through_latent, emb_generator, decoder)."""
    side, channels = image_shape[0], image_shape[2]
    scales, dims = [], []
    scale, dim = 4, base_dim
    while scale <= side:
        scales.append(scale)
        dims.append(dim)
        scale *= 2
        dim = min(dim * 2, 1024)
    dims = dims[::-1]

    with K.name_scope("Encoder"):
        dim = base_dim
        x_in = L.Input(shape=image_shape)
        y = L.Conv2D(dim, kernel_size, padding="same", strides=2)(x_in)
        for _ in range(num_scale - 1):
            y = _scale_block(y, dim, block_per_scale, depth_per_block, kernel_size)
            dim *= 2
            y = L.Conv2D(dim, kernel_size, strides=2, padding="same")(y)
        y = L.GlobalAveragePooling2D()(y)
        with K.name_scope("ScaleFcBlock"):
            y = _res_fc_block(y, emb_dim, depth_per_block)
        encoder = k2.Model(x_in, y)

    with K.name_scope("Latent"):
        emb = L.Input(shape=(emb_dim,))
        mu = L.Dense(latent_dim)(emb)
        logvar = L.Dense(latent_dim)(emb)
        z = mu + K.random_normal(shape=K.shape(mu)) * K.exp(logvar * 0.5)
        back_to_emb = L.Dense(emb_dim)
        emb_hat = back_to_emb(z)
        noise = L.Input(shape=(latent_dim,))
        emb_gen = back_to_emb(noise)
        through_latent = k2.Model(emb, [emb_hat, z, mu, logvar])
        emb_generator = k2.Model(noise, emb_gen)

    out_channels = 2 * channels + 1 if split else channels
    with K.name_scope("Decoder"):
        d_in = L.Input(shape=(emb_dim,))
        y = L.Dense(4 * 4 * dims[0])(d_in)
        y = L.Reshape((4, 4, dims[0]))(y)
        for i in range(len(scales) - 1):
            y = L.Conv2DTranspose(dims[i + 1], kernel_size, strides=2, padding="same")(y)
            y = _scale_block(y, dims[i + 1], block_per_scale, depth_per_block, kernel_size)
        y = L.Conv2D(out_channels, kernel_size, 1, padding="same", activation="sigmoid")(y)
        decoder = k2.Model(d_in, y)

    x = L.Input(shape=image_shape)
    gamma = L.Input(shape=())
    emb_hat, z, z_mean, z_log_var = through_latent(encoder(x))
    dec = decoder(emb_hat)
    if split:
        mask = dec[:, :, :, 0:1]
        img1 = dec[:, :, :, 1:1 + channels]
        img2 = dec[:, :, :, 1 + channels:1 + 2 * channels]
        x_hat = img1 * mask + img2 * (1 - mask)
    else:
        x_hat = dec
    vae = k2.Model([x, gamma], x_hat)
    rec = 0.5 * K.sum(K.square(x - x_hat), axis=[1, 2, 3]) / gamma
    kl = 0.5 * K.sum(K.square(z_mean) + K.exp(z_log_var) - 1 - z_log_var, axis=-1)
    vae.add_loss(K.mean(rec + 3.0 * kl))
    return vae, encoder, through_latent, emb_generator, decoder


def compiled_for_training(config):
    """The original's training model for a SplitVAEConfig, compiled as the authors train it
    (Adam at the config's learning rate, the loss added inside the model)."""
    c = config
    vae = build_original(c.image_shape, c.latent_dim, c.base_dim, c.emb_dim, c.kernel_size,
                         c.num_scale, c.block_per_scale, c.depth_per_block, c.split)[0]
    vae.compile(optimizer=k2.optimizers.Adam(learning_rate=c.learning_rate), loss=None,
                metrics=["mse"])
    return vae


def randomize(model, seed=0):
    """Give every weight a random value, BatchNorm moving statistics included.

    Scaled so that activations stay of order one through the whole network
    (kernels ~ N(0, 1/fan_in), moving variances in [0.5, 2]): the sigmoid
    outputs then spread over (0, 1) instead of saturating, so that a wrongly
    loaded weight shows in the outputs.
    """
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        shape = tuple(w.shape)
        name = w.name.split("/")[-1]
        if name.startswith("kernel"):
            if len(shape) == 4 and "transpose" in w.name:
                fan_in = shape[0] * shape[1] * shape[3]
            else:
                fan_in = int(np.prod(shape[:-1]))
            v = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        elif name.startswith("bias") or name.startswith("beta"):
            v = rng.normal(0.0, 0.1, shape)
        elif name.startswith("gamma"):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.startswith("moving_mean"):
            v = rng.normal(0.0, 0.3, shape)
        elif name.startswith("moving_variance"):
            v = rng.uniform(0.5, 2.0, shape)
        else:
            raise AssertionError(f"unexpected weight {w.name}")
        values.append(v.astype("float32"))
    model.set_weights(values)


def write_checkpoint(path, seed=0, **arch):
    """Build, randomize and save_weights a Keras 2 original; returns its parts."""
    k2.backend.clear_session()
    parts = build_original(**arch)
    randomize(parts[0], seed=seed)
    parts[0].save_weights(str(path))
    return parts


def reference_outputs(parts, images, z, channels, split=True):
    """What the Keras 2 network computes in inference mode.

    encode: (z_mean, z_log_var) of images; decode: the decoder's output on
    the embedding of z (the original's emb_generator), split in its parts.
    """
    _, encoder, through_latent, emb_generator, decoder = parts
    _, _, z_mean, z_log_var = through_latent(encoder(images, training=False), training=False)
    dec = decoder(emb_generator(z, training=False), training=False).numpy()
    if split:
        sigma = dec[..., 0:1]
        x1 = dec[..., 1:1 + channels]
        x2 = dec[..., 1 + channels:1 + 2 * channels]
        decoded = {"sigma": sigma, "x1": x1, "x2": x2, "x_hat": sigma * x1 + (1 - sigma) * x2}
    else:
        decoded = {"x_hat": dec}
    return z_mean.numpy(), z_log_var.numpy(), decoded
