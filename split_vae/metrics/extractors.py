"""The extractors the command line and `evaluate_model` name: choosing one from a spec.

"inception" is the paper's (Keras InceptionV3 with ImageNet weights; the
Split VAE paper, Asperti, Bugo, Filippini, IEEE Access 2022,
https://arxiv.org/abs/2202.02738), "inception-random" the same network
untrained, "fid-inception" (or the path of a .pth file) pytorch-fid's network
and weights, the literature's FID (`fid_inception`), "fd-fmnist" our
Fashion-MNIST classifier (`fd_fmnist`), and any .keras model mapping images
to vectors.

"auto" (the command line's default, `auto_extractor`) is the paper's
"inception" whenever its weights are in Keras's cache, and otherwise an
extractor that exists offline, chosen by the images' shape: "fd-fmnist"
for 32x32x1 images, "random-conv" for any other ("inception" named
explicitly downloads the weights). The choice and its
reason are logged once and travel with the extractor (`choice`), so the
report says which protocol produced its numbers.

Imports keras, `split_vae.paths`, `feature_extractor`, `fd_fmnist` and
`fid_inception`.
"""

from __future__ import annotations

import logging
import os

import keras
import numpy as np

from ..paths import keras_models_dir
from .fd_fmnist import IMAGE_SHAPE as FD_FMNIST_SHAPE, NAME as FD_FMNIST, fd_fmnist_extractor
from .fid_inception import NAME as FID_INCEPTION, fid_inception_extractor
from .feature_extractor import FeatureExtractor

logger = logging.getLogger(__name__)

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
AUTO = "auto"


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


def cached_inception_weights() -> str | None:
    """The path of InceptionV3's ImageNet weights in Keras's cache, or None
    when the file is not there (nothing is downloaded)."""
    path = os.path.join(keras_models_dir(), INCEPTION_WEIGHTS_FILE)
    return path if os.path.isfile(path) else None


def offline_fallback(image_shape) -> tuple[str, str]:
    """(extractor name, why) of "auto" without the paper's weights.

    32x32x1 images (MNIST and Fashion-MNIST padded as the paper pads them)
    get "fd-fmnist", the shipped Fashion-MNIST classifier: trained features
    of the same kind of image, and the one extractor here that reads that
    shape only. Every other shape gets "random-conv", a small untrained
    network that reads any size in seconds (its distances check the
    pipeline and compare models only loosely).
    """
    shape = tuple(int(v) for v in image_shape)
    if shape == tuple(FD_FMNIST_SHAPE):
        return FD_FMNIST, ("the images are 32x32x1, which the shipped Fashion-MNIST "
                           "classifier reads")
    return RANDOM_CONV, (f"the images are {'x'.join(map(str, shape))}, which the shipped "
                         "Fashion-MNIST classifier (32x32x1 only) cannot read; a small "
                         "untrained network reads any size")


def auto_extractor(image_shape, batch_size: int = 50) -> FeatureExtractor:
    """The paper's "inception" where its weights are cached, else `offline_fallback`.

    Nothing is downloaded: "auto" is the default of a command that must
    finish offline, and a download that a firewall swallows would hang it
    (`--extractor inception` downloads the weights once). A cached file that
    fails to load falls back too. The choice and its reason are logged once
    (logger "split_vae.metrics.extractors") and kept as the extractor's
    `choice` dict: requested, extractor, paper_protocol, reason.
    """
    cached = cached_inception_weights()
    where = os.path.join(keras_models_dir(), INCEPTION_WEIGHTS_FILE)
    if cached is None:
        problem = f"InceptionV3's ImageNet weights are not in Keras's cache ({where})"
    else:
        try:
            ext = inception_extractor("imagenet", batch_size=batch_size)
        except ValueError as e:
            problem = (f"InceptionV3's ImageNet weights could not be loaded from {cached} "
                       f"({e.__cause__ or e})")
        else:
            return _with_choice(ext, AUTO, f"InceptionV3's ImageNet weights read from "
                                f"Keras's cache ({cached}): the paper's FID protocol")
    name, why = offline_fallback(image_shape)
    ext = get_extractor(name, batch_size=batch_size)
    reason = (f"{problem}; measuring with '{name}' instead, since {why}: its numbers "
              f"are {ext.metric_name}, not FIDs (comparable only with numbers measured "
              f"by the same extractor). For the paper's FID, run once with "
              f"--extractor inception (it downloads {INCEPTION_WEIGHTS_FILE} into "
              f"{keras_models_dir()}) or put the file there")
    return _with_choice(ext, AUTO, reason)


def _with_choice(ext: FeatureExtractor, requested, reason: str) -> FeatureExtractor:
    ext.choice = {"requested": str(requested), "extractor": ext.name,
                  "paper_protocol": ext.name == "inception", "reason": reason}
    if requested == AUTO:  # said once: a fallback as a warning, the paper's as news
        logger.log(logging.INFO if ext.choice["paper_protocol"] else logging.WARNING,
                   "extractor: %s (%s)", ext.name, reason)
    return ext


def get_extractor(spec, batch_size: int = 50, image_shape=None) -> FeatureExtractor:
    """"auto", "inception", "inception-random", "fid-inception", "fd-fmnist", a
    path to pytorch-fid's weights (.pth), to a .keras model or to FD-FMNIST
    classifier weights (.weights.h5), or a model.

    "auto" needs image_shape (`auto_extractor`). A .keras extractor gets
    images resized to its own input size and mapped to [-1, 1], like
    InceptionV3. The extractor returned has a `choice` dict (what was asked
    for, what was chosen and why), which reports record.
    """
    ext = _get_extractor(spec, batch_size, image_shape)
    if getattr(ext, "choice", None) is None:
        _with_choice(ext, getattr(spec, "name", spec), "named by the caller")
    return ext


def _get_extractor(spec, batch_size, image_shape) -> FeatureExtractor:
    if isinstance(spec, FeatureExtractor):
        return spec
    if isinstance(spec, keras.Model):
        return FeatureExtractor(spec, name=spec.name, batch_size=batch_size)
    if spec == AUTO:
        if image_shape is None:
            raise ValueError("the extractor 'auto' chooses by the images' shape: pass "
                             "image_shape")
        return auto_extractor(image_shape, batch_size=batch_size)
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
        f"unknown extractor {spec!r}: use 'auto' (the paper's 'inception' where its "
        "weights are cached, else one that exists offline), "
        "'inception' (ImageNet weights, the paper's "
        "FID), 'fid-inception' (pytorch-fid's network and weights: the literature's "
        "FID) or the path of its .pth file, 'inception-random' (untrained, for "
        "pipelines without the weights), 'random-conv' (a small untrained network: "
        "smoke tests only), "
        "'fd-fmnist' (our Fashion-MNIST classifier: FD-FMNIST, not an FID), the path "
        "of its .weights.h5, or the path of a .keras model mapping images to vectors")
