"""The extractors the command line and `evaluate_model` name: choosing one from a spec.

"inception" is the paper's (Keras InceptionV3 with ImageNet weights; the
Split VAE paper, Asperti, Bugo, Filippini, IEEE Access 2022,
https://arxiv.org/abs/2202.02738), "inception-random" the same network
untrained, "fid-inception" (or the path of a .pth file) pytorch-fid's network
and weights, the literature's FID (`fid_inception`), "fd-fmnist" our
Fashion-MNIST classifier (`fd_fmnist`), and any .keras model mapping images
to vectors.

Imports keras, `split_vae.paths`, `feature_extractor`, `fd_fmnist` and
`fid_inception`.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from ..paths import keras_models_dir
from .fd_fmnist import fd_fmnist_extractor
from .fid_inception import NAME as FID_INCEPTION, fid_inception_extractor
from .feature_extractor import FeatureExtractor

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def inception_extractor(weights: str | None = "imagenet", size: int = 299,
                        batch_size: int = 50) -> FeatureExtractor:
    """Keras InceptionV3, no top, average pooling: the paper's extractor.

    weights="imagenet" downloads the weights once into ~/.keras/models/
    (KERAS_HOME/models/); if that fails, ValueError says how to go on.
    weights=None gives a randomly initialised network (name
    "inception-random"): the same pipeline for tests or machines without the
    weights, whose numbers are not FIDs. Its weights are drawn from a fixed
    seed, the same in every run and on every backend, so its numbers repeat
    and its cached reference statistics are found again.
    """
    try:
        model = keras.applications.InceptionV3(
            include_top=False, weights=weights, pooling="avg", input_shape=(size, size, 3))
    except Exception as e:  # noqa: BLE001 - any download/IO failure
        if weights is None:
            raise
        raise ValueError(
            f"could not load InceptionV3's ImageNet weights ({type(e).__name__}: {e}). "
            f"Put the file {INCEPTION_WEIGHTS_FILE} in {keras_models_dir()} "
            "(where Keras caches it), or measure with --extractor inception-random "
            "(random weights: not an FID) or --extractor PATH.keras (your own "
            "model mapping images to vectors)") from e
    if weights is None:
        _glorot_from_seed(model, seed=0)
    name = "inception" if weights == "imagenet" else (
        "inception-random" if weights is None else f"inception:{weights}")
    if size != 299:
        name += f"@{size}"
    return FeatureExtractor(model, name=name, value_range=(-1.0, 1.0),
                            batch_size=batch_size)


def _glorot_from_seed(model, seed: int = 0) -> None:
    """Every convolution kernel drawn again, Glorot-uniform as Keras draws it,
    from numpy's generator with `seed` (Keras's own draw follows the global
    seed state, which differs between runs and backends)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            shape = tuple(layer.kernel.shape)
            receptive = int(np.prod(shape[:-2]))
            limit = np.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
            layer.kernel.assign(rng.uniform(-limit, limit, size=shape).astype("float32"))


RANDOM_CONV = "random-conv"


def random_conv_extractor(batch_size: int = 500) -> FeatureExtractor:
    """A small untrained convolutional network: 64 features of any image
    resized to 32x32, weights drawn from a fixed seed (the same in every run
    and on every backend). For smoke tests of a pipeline on any data in
    seconds; its distances measure nothing about quality."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, strides=2, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="random_conv")
    _glorot_from_seed(model, seed=0)
    return FeatureExtractor(model, name=RANDOM_CONV, value_range=(-1.0, 1.0),
                            batch_size=batch_size)


def get_extractor(spec, batch_size: int = 50) -> FeatureExtractor:
    """"inception", "inception-random", "fid-inception", "fd-fmnist", a path to
    pytorch-fid's weights (.pth), to a .keras model or to FD-FMNIST classifier
    weights (.weights.h5), or a model.

    A .keras extractor gets images resized to its own input size and mapped
    to [-1, 1], like InceptionV3.
    """
    if isinstance(spec, FeatureExtractor):
        return spec
    if isinstance(spec, keras.Model):
        return FeatureExtractor(spec, name=spec.name, batch_size=batch_size)
    if spec == "inception":
        return inception_extractor("imagenet", batch_size=batch_size)
    if spec == "inception-random":
        return inception_extractor(None, batch_size=batch_size)
    if spec == RANDOM_CONV:
        return random_conv_extractor(batch_size=max(batch_size, 500))
    spec = os.fspath(spec)
    if spec == FID_INCEPTION or spec.endswith(".pth"):
        # The literature's FID: pytorch-fid's network, its weights cached or at a path.
        return fid_inception_extractor(None if spec == FID_INCEPTION else spec,
                                       batch_size=batch_size)
    if spec == "fd-fmnist" or spec.endswith(".weights.h5"):
        # FD-FMNIST: our Fashion-MNIST classifier (shipped, or weights at a path).
        return fd_fmnist_extractor(None if spec == "fd-fmnist" else spec,
                                   batch_size=batch_size)
    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"extractor model {spec} does not exist")
        model = keras.saving.load_model(spec, compile=False)
        return FeatureExtractor(model, name=os.path.basename(spec), batch_size=batch_size)
    raise ValueError(
        f"unknown extractor {spec!r}: use 'inception' (ImageNet weights, the paper's "
        "FID), 'fid-inception' (pytorch-fid's network and weights: the literature's "
        "FID) or the path of its .pth file, 'inception-random' (untrained, for "
        "pipelines without the weights), 'random-conv' (a small untrained network: "
        "smoke tests only), "
        "'fd-fmnist' (our Fashion-MNIST classifier: FD-FMNIST, not an FID), the path "
        "of its .weights.h5, or the path of a .keras model mapping images to vectors")
