"""Shared test helpers: tiny configurations and data that train in seconds."""

import numpy as np

from split_vae import SplitVAEConfig


def tiny_config(**changes) -> SplitVAEConfig:
    base = dict(image_shape=(16, 16, 1), latent_dim=4, base_dim=8, emb_dim=16,
                num_scale=2, bn_momentum=0.9, batch_size=32, epochs=2,
                learning_rate=1e-3, beta=1.0, gmm_components=2)
    base.update(changes)
    return SplitVAEConfig(**base)


def tiny_images(n=64, shape=(16, 16, 1), seed=0) -> np.ndarray:
    """Blurry blobs in [0, 1]: structured enough for a VAE to learn quickly."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy = rng.uniform(3, h - 3, size=(n, 1, 1))
    cx = rng.uniform(3, w - 3, size=(n, 1, 1))
    r = rng.uniform(2, 4, size=(n, 1, 1))
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
    img = np.repeat(blob[..., None], c, axis=-1) * rng.uniform(0.5, 1.0, size=(n, 1, 1, c))
    return img.astype("float32")
