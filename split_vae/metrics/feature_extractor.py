"""`FeatureExtractor`: a Keras model mapping images to vectors, with the FID preprocessing.

The Split VAE paper (Asperti, Bugo, Filippini, IEEE Access 2022,
https://arxiv.org/abs/2202.02738) measures FID with Keras InceptionV3 with
ImageNet weights, no top, average pooling (2048 features); images resized
bilinearly to 299x299, mapped from [0, 1] to [-1, 1], grayscale repeated to
three channels. Numbers measured this way are NOT comparable with
pytorch-fid, clean-fid or TTUR, which use the 2015 TensorFlow Inception
graph; `FID_NOTE` says so and every report carries it.

The feature extractor is a parameter: any Keras model mapping images to
vectors works, so the distance can be measured without the ImageNet weights
or with a domain classifier (`extractors`, `fd_fmnist`).

Imports numpy, keras, tqdm and `split_vae.checks`.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from keras import ops
from tqdm.auto import tqdm

from .. import checks

# Bumped whenever the way statistics are computed changes: old cache entries
# then simply stop matching. 2: the entries hold the features too (for KID).
STATS_FORMAT = 2

FID_NOTE = (
    "FID measured with Keras InceptionV3 (ImageNet weights, 299x299 bilinear, "
    "[-1, 1], 2048 pooled features), the paper's protocol; these numbers are not "
    "comparable with pytorch-fid, clean-fid or TTUR (2015 TF Inception graph).")


PAPER_PROTOCOL = "FID, paper protocol (Keras InceptionV3)"


def _extractor_note(name: str) -> str:
    return (f"Fréchet distance in the feature space of the extractor {name!r}, not "
            "the paper's FID (Keras InceptionV3 with ImageNet weights); not "
            "comparable with the paper's tables, pytorch-fid, clean-fid or TTUR.")


class FeatureExtractor:
    """A Keras model mapping images to vectors, with the FID preprocessing.

    Images in [0, 1] of shape (N, H, W, C) are resized (bilinear, by default)
    to the model's input size, mapped linearly to `value_range`, and
    grayscale is repeated to three channels when the model wants three.

    Args:
        model: `keras.Model` with input (None, h, w, c) and output (None, d).
        name: short name used in reports and in messages.
        value_range: (low, high) that [0, 1] is mapped to; InceptionV3 wants
            (-1, 1).
        interpolation: resize method of `keras.ops.image.resize`.
        batch_size: images per forward pass.

    Example:
    ```python
    import keras, numpy as np
    from split_vae.metrics import FeatureExtractor
    net = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten()])
    feats = FeatureExtractor(net, name="flat").features(np.random.rand(4, 8, 8, 1))
    ```
    """

    # The images this extractor accepts: None for any size (resized to the
    # model's input); a subclass that reads one size only sets it, with a hint
    # on how to get there.
    image_shape = None
    image_hint = ""
    # What was asked for, what was chosen and why (`extractors.get_extractor`
    # sets it; reports record it as protocol.extractor_choice).
    choice = None

    def __init__(self, model, name: str = "custom", value_range=(-1.0, 1.0),
                 interpolation: str = "bilinear", batch_size: int = 50):
        shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else None
        if shape is None or len(shape) != 4 or None in shape[1:]:
            raise ValueError(
                f"the extractor {name!r} must take images of a fixed size, input "
                f"shape (None, h, w, c); received input shape {shape}")
        out = tuple(model.outputs[0].shape)
        if len(out) != 2 or out[1] is None:
            raise ValueError(
                f"the extractor {name!r} must map images to vectors, output shape "
                f"(None, d); received {out} (add pooling or Flatten)")
        if shape[3] not in (1, 3):
            raise ValueError(
                f"the extractor {name!r} takes {shape[3]} channels; images have 1 or 3")
        lo, hi = (float(v) for v in value_range)
        if not (np.isfinite([lo, hi]).all() and lo < hi):
            raise ValueError(f"value_range must be (low, high) with low < high, "
                             f"received {value_range!r}")
        self.model = model
        self.name = name
        self.input_size = (int(shape[1]), int(shape[2]))
        self.channels = int(shape[3])
        self.dim = int(out[1])
        self.value_range = (lo, hi)
        self.interpolation = interpolation
        self.batch_size = checks.integer(batch_size, "batch_size")
        self._fingerprint = None

    @property
    def note(self) -> str:
        """What the numbers it gives are, and what they cannot be compared with."""
        return FID_NOTE if self.name == "inception" else _extractor_note(self.name)

    @property
    def metric_name(self) -> str:
        """The table's short name of its Fréchet distances: FID only for Inception's
        ImageNet features, FD otherwise."""
        return "FID" if self.name == "inception" else "FD"

    @property
    def protocol(self) -> str:
        """What its Fréchet distance is, in words reports and tables print."""
        if self.name == "inception":
            return PAPER_PROTOCOL
        if self.name.startswith("inception-random"):
            return "FD in an untrained network"
        return f"FD in {self.name}"

    @property
    def kid_name(self) -> str:
        """The name of its kernel distance: KID in Inception's ImageNet features,
        "KD in <extractor>" in any other."""
        return "KID" if self.name == "inception" else f"KD in {self.name}"

    def preprocessing(self) -> dict:
        """Everything done to the images before the model, as JSON-able data."""
        return {"resize": list(self.input_size), "interpolation": self.interpolation,
                "value_range": list(self.value_range), "channels": self.channels,
                "format": STATS_FORMAT}

    def fingerprint(self) -> str:
        """sha256 of the layers' classes and configs and of the weights.

        Layer and weight names are left out: Keras numbers them per session
        (conv2d, conv2d_1, ...), and the same network loaded twice must give
        the same key. Computed once.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            layers = [(type(layer).__name__, _without_names(layer.get_config()))
                      for layer in getattr(self.model, "layers", [])]
            h.update(json.dumps(
                {"layers": layers, "input": list(self.model.inputs[0].shape),
                 "output": list(self.model.outputs[0].shape)},
                sort_keys=True, default=str).encode())
            for w in self.model.weights:
                a = np.ascontiguousarray(np.asarray(w.numpy()))
                h.update(f"{a.dtype.str}:{a.shape}".encode())
                h.update(a.tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def preprocess(self, images: np.ndarray):
        """A batch of images in [0, 1] -> the model's input tensor."""
        x = ops.convert_to_tensor(np.asarray(images, dtype="float32"))
        if tuple(x.shape[1:3]) != self.input_size:
            x = ops.image.resize(x, self.input_size, interpolation=self.interpolation,
                                 antialias=False)
        c = x.shape[-1]
        if c == 1 and self.channels == 3:
            x = ops.repeat(x, 3, axis=-1)
        elif c == 3 and self.channels == 1:
            x = ops.mean(x, axis=-1, keepdims=True)
        lo, hi = self.value_range
        return x * (hi - lo) + lo

    def features(self, images, desc: str | None = None, progress: bool = True) -> np.ndarray:
        """Feature vectors (N, d) of images in [0, 1], in batches, float32."""
        images = checks.images(images, image_shape=self.image_shape,
                               owner=f"the extractor {self.name!r}", hint=self.image_hint)
        out = []
        bar = tqdm(total=len(images), desc=desc or f"{self.name} features",
                   unit="img", disable=not progress, leave=False)
        with bar:
            for i in range(0, len(images), self.batch_size):
                batch = self.preprocess(images[i:i + self.batch_size])
                # A compiled predict step: calling the model eagerly runs each
                # op on its own: slower, and with a memory peak several times
                # higher for InceptionV3.
                f = ops.convert_to_numpy(self.model.predict_on_batch(batch))
                out.append(np.asarray(f, dtype="float32").reshape(len(f), -1))
                bar.update(len(f))
        feats = np.concatenate(out) if out else np.zeros((0, self.dim), "float32")
        if not np.isfinite(feats).all():
            raise ValueError(f"the extractor {self.name!r} produced NaN or inf features")
        return feats


def _without_names(config):
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config
