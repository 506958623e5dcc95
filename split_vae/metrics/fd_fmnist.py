"""FD-FMNIST: a Fréchet distance in the features of a Fashion-MNIST classifier.

The Split VAE paper (Asperti, Bugo, Filippini, IEEE Access 2022,
https://arxiv.org/abs/2202.02738) measures generation with the FID, whose
InceptionV3 was trained on ImageNet photographs. On Fashion-MNIST a
classifier of the domain is a more sensitive instrument, and one that this
repository can train and ship offline. FD-FMNIST is the Fréchet distance
(Heusel et al. 2017) between the 128-d penultimate-layer activations of our
small CNN, trained on the Fashion-MNIST training split with the labels of
the original IDX files. It is **not an FID**: its values are not comparable
with the paper's tables or with any Inception-based number.

The classifier reads 32x32x1 images in [0, 1]: Fashion-MNIST zero-padded from
28x28, as the paper pads (M)NIST for the Split VAE. Images of another size are
refused, not resized: a resized image is not what the classifier learned.

    from split_vae.metrics import fd_fmnist_extractor
    ext = fd_fmnist_extractor()                 # the shipped weights
    feats = ext.features(images)                # (N, 128)

`python -m split_vae evaluate --extractor fd-fmnist` uses it.

Imports keras, numpy, `split_vae.data` (the labelled splits),
`split_vae.fileio` and `feature_extractor`.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import keras
import numpy as np
from keras import layers

from .. import data
from ..fileio import atomic_write, atomic_write_json, sha256_file
from .feature_extractor import FeatureExtractor

NAME = "fd-fmnist"
METRIC = "FD-FMNIST"
IMAGE_SHAPE = (32, 32, 1)
NUM_CLASSES = 10
FEATURE_LAYER = "features"
# The shipped weights and their card (test accuracy, SHA-256, how trained).
ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
WEIGHTS_PATH = os.path.join(ASSETS, "fd_fmnist.weights.h5")


def card_path(weights_path) -> str:
    """The JSON card beside a weights file: x.weights.h5 -> x.json."""
    p = os.fspath(weights_path)
    return (p[:-len(".weights.h5")] if p.endswith(".weights.h5") else p) + ".json"


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
def build_classifier():
    """The CNN: three conv/BN/ReLU/max-pool stages (32, 64, 128 channels),
    a 128-unit ReLU layer named "features" (the FD-FMNIST features) and a
    10-way softmax. 32x32x1 inputs in [0, 1]; 356,906 parameters."""
    # === Layers / Functional Model ===
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    x = inputs
    for i, dim in enumerate((32, 64, 128)):
        x = layers.Conv2D(dim, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout0")(x)
    features = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3, name="dropout1")(features)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="fd_fmnist_classifier")


def feature_model(classifier):
    """The classifier up to its penultimate layer: images -> 128 features."""
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURE_LAYER).output,
                       name="fd_fmnist_features")


# ---------------------------------------------------------------------------
# Data with labels
# ---------------------------------------------------------------------------
def labelled_split(split: str, data_dir=None):
    """(images (N, 32, 32, 1) float32 in [0, 1], labels (N,) int) of a split,
    both read from the same IDX directory (Debian's by default)."""
    data_dir = data_dir or data.DEBIAN_FASHION_MNIST
    images = data.load("fashion_mnist", split, as_numpy=True, data_dir=data_dir)
    labels = data.read_idx_split(data_dir, split, "labels").astype("int64")
    if len(labels) != len(images):
        raise ValueError(f"{data_dir}: {len(images)} {split} images but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"{data_dir}: {split} labels outside 0..{NUM_CLASSES - 1}")
    return images, labels


def train_classifier(epochs: int = 8, batch_size: int = 128, seed: int = 0,
                     data_dir=None, verbose: int = 2):
    """Train the classifier on the training split; return (model, card).

    The card records the test accuracy (measured once, after training: the
    test split chooses nothing), the recipe and the time taken.
    """
    x_train, y_train = labelled_split("train", data_dir)
    x_test, y_test = labelled_split("test", data_dir)
    keras.utils.set_random_seed(seed)
    model = build_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.time()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              shuffle=True)
    seconds = time.time() - start
    pred = model.predict(x_test, batch_size=500, verbose=0).argmax(axis=1)
    card = {
        "metric": METRIC,
        "test_accuracy": float(np.mean(pred == y_test)),
        "train_images": int(len(x_train)), "test_images": int(len(x_test)),
        "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "optimizer": "Adam 1e-3", "train_seconds": round(seconds, 1),
        "parameters": int(model.count_params()),
        "feature_layer": FEATURE_LAYER, "feature_dim": 128,
        "input": "32x32x1 in [0, 1]: Fashion-MNIST zero-padded by 2 (as the paper pads MNIST)",
        "labels": "the IDX label files of the Fashion-MNIST distribution",
    }
    return model, card


def save_classifier(model, card: dict, weights_path=WEIGHTS_PATH) -> str:
    """Write the weights and their card (with the weights' SHA-256), atomically."""

    weights_path = os.fspath(weights_path)
    # An uncompiled copy: the weights file of a compiled model also holds the
    # optimizer's state (2.5x the size), which the extractor never needs.
    slim = build_classifier()
    slim.set_weights(model.get_weights())
    atomic_write(weights_path, slim.save_weights)
    card = dict(card, weights_sha256=sha256_file(weights_path))
    atomic_write_json(card_path(weights_path), card)
    return weights_path


# ---------------------------------------------------------------------------
# The extractor
# ---------------------------------------------------------------------------
class FDFMNISTExtractor(FeatureExtractor):
    """The classifier's penultimate features, for Fréchet distances (FD-FMNIST).

    Images must be 32x32x1 (Fashion-MNIST padded as the paper's MNIST); any
    other shape is refused with a ValueError naming both shapes.
    """

    metric_name = METRIC
    protocol = METRIC
    kid_name = f"KD in {NAME}"
    image_shape = IMAGE_SHAPE
    image_hint = ("It reads Fashion-MNIST zero-padded to 32x32, as the paper pads MNIST: pad "
                  "28x28 images with split_vae.data.pad_mnist; other sizes are not resized, "
                  "as the classifier never saw them")

    def __init__(self, classifier, weights_path: str, card: dict | None = None,
                 batch_size: int = 500):
        super().__init__(feature_model(classifier), name=NAME, value_range=(0.0, 1.0),
                         batch_size=batch_size)
        self.classifier = classifier
        self.weights_path = weights_path
        self.card = card or {}

    @property
    def note(self) -> str:
        acc = self.card.get("test_accuracy")
        acc = f", test accuracy {100 * acc:.2f}%" if acc is not None else ""
        return (f"FD-FMNIST: Fréchet distance between the 128-d penultimate activations "
                f"of our Fashion-MNIST classifier ({os.path.basename(self.weights_path)}"
                f"{acc}). Not an FID: not comparable with the paper's tables, "
                "InceptionV3-based numbers, pytorch-fid, clean-fid or TTUR.")


def fd_fmnist_extractor(weights_path=None, batch_size: int = 500) -> FDFMNISTExtractor:
    """The FD-FMNIST extractor with the shipped weights, or those at weights_path.

    FileNotFoundError names a missing file; ValueError names a file that is
    not the classifier's weights (unreadable, truncated, other layers, or a
    SHA-256 that differs from its card's).
    """

    path = os.fspath(weights_path) if weights_path is not None else WEIGHTS_PATH
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"the FD-FMNIST classifier weights {path} do not exist; the repository ships "
            "them as split_vae/assets/fd_fmnist.weights.h5, and "
            "`python benchmarks/fashion_mnist_study.py --train-classifier` retrains them")
    card = {}
    cpath = card_path(path)
    if os.path.isfile(cpath):
        try:
            with open(cpath) as f:
                card = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"the FD-FMNIST card {cpath} is not valid JSON ({e})") from None
        expected = card.get("weights_sha256")
        if expected:
            if sha256_file(path) != expected:
                raise ValueError(
                    f"the FD-FMNIST classifier weights {path} are damaged: their SHA-256 "
                    f"differs from the one recorded in {cpath}; restore the file (git "
                    "checkout) or retrain it")
    model = build_classifier()
    try:
        with warnings.catch_warnings():
            # Keras warns once per layer before raising on a mismatch.
            warnings.simplefilter("ignore")
            model.load_weights(path)
    except Exception as e:  # noqa: BLE001 - h5py and Keras raise many kinds
        raise ValueError(
            f"cannot read the FD-FMNIST classifier weights {path} "
            f"({type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}); "
            "the file is damaged or holds another network") from None
    return FDFMNISTExtractor(model, path, card, batch_size=batch_size)


def accuracy(extractor: FDFMNISTExtractor, images, labels) -> float:
    """Classification accuracy of the extractor's classifier: a check that the
    loaded weights are the trained ones."""
    probs = extractor.classifier.predict(images, batch_size=500, verbose=0)
    return float(np.mean(probs.argmax(axis=1) == np.asarray(labels)))
