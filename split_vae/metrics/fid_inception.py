"""The literature's FID: pytorch-fid's Inception network and protocol, in Keras 3.

The FIDs of other papers are measured in the features of the 2015
TensorFlow Inception graph (Heusel et al., NeurIPS 2017,
https://arxiv.org/abs/1706.08500, TTUR's code), which pytorch-fid
(https://github.com/mseitzer/pytorch-fid) ships as the PyTorch weights file
`pt_inception-2015-12-05-6726825d.pth` together with the network
`FIDInceptionV3`. That network differs from Keras's InceptionV3 (the Split
VAE paper's extractor, `extractors.inception_extractor`):

- every BatchNormalization has a scale (gamma) as well as an offset; epsilon
  0.001;
- the last block (Mixed_7c) pools its fourth branch with a 3x3 max pool, not
  an average pool;
- the 3x3 average pools of the other blocks exclude the zero padding from
  the average (Keras's pools with padding="same" do, on every backend);
- the weights file holds a 1008-class head (`fc`) that the 2048 pooled
  features never use: the loader checks it is there and leaves it out.

pytorch-fid's input protocol: images are PNG files (uint8), scaled to
[0, 1], resized bilinearly to 299x299 without corner alignment (no
antialiasing), mapped to [-1, 1], grayscale repeated to RGB. The extractor
takes float images in [0, 1] like the others and rounds them to uint8 first.

    from split_vae.metrics import get_extractor
    ext = get_extractor("fid-inception")        # the cached weights file
    ext = get_extractor("path/to/pt_inception-2015-12-05-6726825d.pth")

The weights are read without PyTorch (`pth`), so this works on the
TensorFlow, JAX and PyTorch backends alike.

Imports keras, numpy, tqdm, `split_vae.fileio`, `split_vae.paths`,
`feature_extractor` and `pth`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.request

import keras
import numpy as np
from keras import layers
from tqdm.auto import tqdm

from ..fileio import atomic_write, sha256_file
from ..paths import cache_dir
from .feature_extractor import FeatureExtractor
from .pth import read_state_dict

logger = logging.getLogger(__name__)

NAME = "fid-inception"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE)
# The first 8 hex digits of the file's SHA-256, as torch hub names files.
WEIGHTS_SHA256_PREFIX = "6726825d"
# The full SHA-256 is recorded beside the cached file (WEIGHTS_FILE + ".sha256")
# the first time a real download computes it; none was possible where this
# code was written.
IMAGE_SIZE = 299
FEATURES = 2048
HEAD = {"fc.weight": (1008, FEATURES), "fc.bias": (1008,)}

_HUB_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")

PROTOCOL = "FID, pytorch-fid protocol"
NOTE = (
    "FID in pytorch-fid's protocol: the 2015 TensorFlow Inception graph "
    f"({WEIGHTS_FILE}), images rounded to uint8, resized bilinearly to 299x299 "
    "without corner alignment, mapped to [-1, 1], 2048 pooled features; comparable "
    "with pytorch-fid and the FIDs of other papers measured that way (see "
    "docs/metrics.md), not with clean-fid (bicubic resize) nor with the paper's "
    "protocol (Keras InceptionV3).")


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
# Every layer is float32 whatever the global dtype policy: the features are
# compared with pytorch-fid's to 1e-4.
_DTYPE = "float32"


def _layer_name(key_prefix: str) -> str:
    # The PyTorch backend refuses "." in names: "Mixed_5b.branch1x1.conv" is
    # the layer "Mixed_5b__branch1x1__conv" (no key of the file holds "__").
    return key_prefix.replace(".", "__")


def _key_prefix(layer_name: str) -> str:
    return layer_name.replace("__", ".")


def _conv(x, prefix: str, filters: int, kernel, strides=1, padding="valid"):
    """Conv (no bias), BatchNorm with scale and offset (eps 0.001), ReLU.

    PyTorch's symmetric paddings (1 for 3x3, (0, 3) for 1x7, ...) at stride 1
    are Keras's "same"; the stride-2 convolutions have none ("valid").
    """
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                      name=_layer_name(f"{prefix}.conv"), dtype=_DTYPE)(x)
    x = layers.BatchNormalization(epsilon=1e-3, center=True, scale=True,
                                  name=_layer_name(f"{prefix}.bn"), dtype=_DTYPE)(x)
    return layers.ReLU(dtype=_DTYPE)(x)


def _avg_pool(x):
    # 3x3, stride 1, padding excluded from the average (count_include_pad=False).
    return layers.AveragePooling2D(3, strides=1, padding="same", dtype=_DTYPE)(x)


def _max_pool(x, strides=2, padding="valid"):
    return layers.MaxPooling2D(3, strides=strides, padding=padding, dtype=_DTYPE)(x)


def _cat(name, tensors):
    return layers.Concatenate(axis=-1, name=name, dtype=_DTYPE)(tensors)


def _block_a(x, name, pool_features):
    b1 = _conv(x, f"{name}.branch1x1", 64, 1)
    b5 = _conv(x, f"{name}.branch5x5_1", 48, 1)
    b5 = _conv(b5, f"{name}.branch5x5_2", 64, 5, padding="same")
    b3 = _conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    b3 = _conv(b3, f"{name}.branch3x3dbl_2", 96, 3, padding="same")
    b3 = _conv(b3, f"{name}.branch3x3dbl_3", 96, 3, padding="same")
    bp = _conv(_avg_pool(x), f"{name}.branch_pool", pool_features, 1)
    return _cat(name, [b1, b5, b3, bp])


def _block_b(x, name):
    b3 = _conv(x, f"{name}.branch3x3", 384, 3, strides=2)
    bd = _conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    bd = _conv(bd, f"{name}.branch3x3dbl_2", 96, 3, padding="same")
    bd = _conv(bd, f"{name}.branch3x3dbl_3", 96, 3, strides=2)
    return _cat(name, [b3, bd, _max_pool(x)])


def _block_c(x, name, c7):
    b1 = _conv(x, f"{name}.branch1x1", 192, 1)
    b7 = _conv(x, f"{name}.branch7x7_1", c7, 1)
    b7 = _conv(b7, f"{name}.branch7x7_2", c7, (1, 7), padding="same")
    b7 = _conv(b7, f"{name}.branch7x7_3", 192, (7, 1), padding="same")
    bd = _conv(x, f"{name}.branch7x7dbl_1", c7, 1)
    for i, (k, f) in enumerate((((7, 1), c7), ((1, 7), c7), ((7, 1), c7), ((1, 7), 192))):
        bd = _conv(bd, f"{name}.branch7x7dbl_{i + 2}", f, k, padding="same")
    bp = _conv(_avg_pool(x), f"{name}.branch_pool", 192, 1)
    return _cat(name, [b1, b7, bd, bp])


def _block_d(x, name):
    b3 = _conv(x, f"{name}.branch3x3_1", 192, 1)
    b3 = _conv(b3, f"{name}.branch3x3_2", 320, 3, strides=2)
    b7 = _conv(x, f"{name}.branch7x7x3_1", 192, 1)
    b7 = _conv(b7, f"{name}.branch7x7x3_2", 192, (1, 7), padding="same")
    b7 = _conv(b7, f"{name}.branch7x7x3_3", 192, (7, 1), padding="same")
    b7 = _conv(b7, f"{name}.branch7x7x3_4", 192, 3, strides=2)
    return _cat(name, [b3, b7, _max_pool(x)])


def _block_e(x, name, max_pool: bool):
    """Mixed_7b (average pool) and Mixed_7c (max pool: the 2015 graph's quirk)."""
    b1 = _conv(x, f"{name}.branch1x1", 320, 1)
    b3 = _conv(x, f"{name}.branch3x3_1", 384, 1)
    b3 = [_conv(b3, f"{name}.branch3x3_2a", 384, (1, 3), padding="same"),
          _conv(b3, f"{name}.branch3x3_2b", 384, (3, 1), padding="same")]
    bd = _conv(x, f"{name}.branch3x3dbl_1", 448, 1)
    bd = _conv(bd, f"{name}.branch3x3dbl_2", 384, 3, padding="same")
    bd = [_conv(bd, f"{name}.branch3x3dbl_3a", 384, (1, 3), padding="same"),
          _conv(bd, f"{name}.branch3x3dbl_3b", 384, (3, 1), padding="same")]
    pooled = _max_pool(x, strides=1, padding="same") if max_pool else _avg_pool(x)
    bp = _conv(pooled, f"{name}.branch_pool", 192, 1)
    return _cat(name, [b1, *b3, *bd, bp])


def build_fid_inception() -> keras.Model:
    """pytorch-fid's FIDInceptionV3 up to its 2048 pooled features, untrained.

    Input (None, 299, 299, 3) in [-1, 1]; layers named after the weights
    file's keys ("Mixed_5b__branch1x1__conv" takes "Mixed_5b.branch1x1.conv.weight"),
    so `load_state_dict` maps one onto the other by name.
    """
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = _conv(inputs, "Conv2d_1a_3x3", 32, 3, strides=2)
    x = _conv(x, "Conv2d_2a_3x3", 32, 3)
    x = _conv(x, "Conv2d_2b_3x3", 64, 3, padding="same")
    x = _max_pool(x)
    x = _conv(x, "Conv2d_3b_1x1", 80, 1)
    x = _conv(x, "Conv2d_4a_3x3", 192, 3)
    x = _max_pool(x)
    x = _block_a(x, "Mixed_5b", 32)
    x = _block_a(x, "Mixed_5c", 64)
    x = _block_a(x, "Mixed_5d", 64)
    x = _block_b(x, "Mixed_6a")
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                     ("Mixed_6e", 192)):
        x = _block_c(x, name, c7)
    x = _block_d(x, "Mixed_7a")
    x = _block_e(x, "Mixed_7b", max_pool=False)
    x = _block_e(x, "Mixed_7c", max_pool=True)
    features = layers.GlobalAveragePooling2D(name="pool", dtype=_DTYPE)(x)
    return keras.Model(inputs, features, name="fid_inception_v3")


# ---------------------------------------------------------------------------
# The weights
# ---------------------------------------------------------------------------
def load_state_dict(model: keras.Model, state: dict, source: str = "the state dict") -> None:
    """Fill `build_fid_inception()`'s layers from pytorch-fid's state dict.

    Conv kernels go from PyTorch's (out, in, h, w) to Keras's (h, w, in, out);
    BatchNorm's weight, bias, running mean and variance become gamma, beta,
    moving mean and variance. The 1008-class head (fc.weight, fc.bias) must
    be there with its shapes and is left out; any other key that no layer
    takes, a missing key or a wrong shape raises ValueError naming it.
    """
    state = dict(state)
    for key, shape in HEAD.items():
        if key not in state:
            raise ValueError(f"{source} has no {key}: not pytorch-fid's Inception weights "
                             "(their 1008-class head is missing)")
        if tuple(state.pop(key).shape) != shape:
            raise ValueError(f"{source}: {key} is not of shape {shape}: not pytorch-fid's "
                             "Inception weights")
    used = set()

    def take(key, shape):
        if key not in state:
            raise ValueError(f"{source} has no {key}: not pytorch-fid's Inception weights")
        value = np.asarray(state[key], dtype="float32")
        if value.shape != tuple(shape):
            raise ValueError(f"{source}: {key} has shape {value.shape}, the network "
                             f"needs {tuple(shape)}")
        used.add(key)
        return value

    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            h, w, cin, cout = layer.kernel.shape
            layer.kernel.assign(take(f"{_key_prefix(layer.name)}.weight", (cout, cin, h, w))
                                .transpose(2, 3, 1, 0))
        elif isinstance(layer, layers.BatchNormalization):
            n = (layer.gamma.shape[0],)
            layer.set_weights([take(f"{_key_prefix(layer.name)}.{k}", n)
                               for k in ("weight", "bias", "running_mean", "running_var")])
    # PyTorch's BatchNorm counts its updates; the count plays no part in inference.
    unused = sorted(k for k in state if k not in used
                    and not k.endswith(".num_batches_tracked"))
    if unused:
        raise ValueError(f"{source} has {len(unused)} tensors the network does not take "
                         f"({', '.join(unused[:5])}{', ...' if len(unused) > 5 else ''}): "
                         "not pytorch-fid's Inception weights")


def _hash_prefix(path: str) -> str | None:
    m = _HUB_NAME.search(os.path.basename(path))
    return m.group(1) if m else None


def check_hash(path: str, digest: str | None = None) -> str:
    """Check a file named like torch hub's (`name-<hex>.pth`) against its hex prefix.

    Returns the file's full SHA-256; ValueError when it does not start with
    the name's hex digits (a damaged or truncated download). A file without
    such a name is not checked.
    """
    digest = digest or sha256_file(path)
    prefix = _hash_prefix(path)
    if prefix and not digest.startswith(prefix):
        raise ValueError(
            f"{path} is damaged: its SHA-256 starts with {digest[:len(prefix)]}, its name "
            f"says {prefix}; delete it (it is downloaded again) or replace it with "
            f"pytorch-fid's {WEIGHTS_FILE}")
    return digest


def cached_weights_path() -> str:
    """Where the weights file is kept: the weights folder of the cache root."""
    return os.path.join(cache_dir("weights"), WEIGHTS_FILE)


def download_weights(url: str = WEIGHTS_URL, path: str | None = None) -> str:
    """Download pytorch-fid's weights file into the cache, checked, atomically.

    The SHA-256 is computed while the file arrives and checked against the
    8 hex digits in its name before the file takes its place; the full
    digest is then written beside it (`.sha256`) and checked at every later
    load. A failure (no network, a wrong file) raises ValueError saying
    where to put the file by hand.
    """
    path = path or cached_weights_path()
    digest = hashlib.sha256()

    def write(tmp):
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(path),
                      leave=False) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    f.write(block)
                    digest.update(block)
                    bar.update(len(block))
        prefix = _hash_prefix(path)
        if prefix and not digest.hexdigest().startswith(prefix):
            raise ValueError(f"the download from {url} has SHA-256 "
                             f"{digest.hexdigest()[:8]}..., not {prefix}...")

    try:
        atomic_write(path, write)
    except Exception as e:  # noqa: BLE001 - urllib and sockets raise many kinds
        raise ValueError(
            f"could not download pytorch-fid's Inception weights from {url} "
            f"({type(e).__name__}: {e}). Download {WEIGHTS_FILE} elsewhere and put it in "
            f"{os.path.dirname(path)}, or pass its path (--extractor PATH.pth)") from None
    with open(path + ".sha256", "w") as f:
        f.write(digest.hexdigest() + "\n")
    logger.info("downloaded %s (SHA-256 %s)", path, digest.hexdigest())
    return path


def resolve_weights(path=None, download: bool = True) -> str:
    """The weights file: `path` if given (it must exist), else the cached file,
    downloaded first if absent and `download`. Checked either way (`check_hash`,
    and the full digest recorded at download, if any)."""
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"the Inception weights file {path} does not exist")
        return path
    path = cached_weights_path()
    if not os.path.isfile(path):
        if not download:
            raise FileNotFoundError(
                f"pytorch-fid's Inception weights are not in {path}; download "
                f"{WEIGHTS_URL} there, or pass the file's path")
        download_weights(path=path)
    return path


# ---------------------------------------------------------------------------
# The extractor
# ---------------------------------------------------------------------------
class FIDInceptionExtractor(FeatureExtractor):
    """pytorch-fid's network and input protocol: the literature's FID features.

    Images in [0, 1] are rounded to uint8 (pytorch-fid reads PNG files), then
    preprocessed as the base class does: bilinear resize to 299x299 without
    corner alignment, grayscale to RGB, [-1, 1].

    Args:
        model: `build_fid_inception()` with its weights loaded.
        weights_path: the file they came from.
        digest: its SHA-256; the published file's starts with 6726825d, and
            only then are the numbers called FID and KID.
    """

    def __init__(self, model, weights_path: str, digest: str, batch_size: int = 50):
        self.weights_path = weights_path
        self.digest = digest
        self.published = digest.startswith(WEIGHTS_SHA256_PREFIX)
        name = NAME if self.published else f"{NAME}:{os.path.basename(weights_path)}"
        super().__init__(model, name=name, value_range=(-1.0, 1.0),
                         interpolation="bilinear", batch_size=batch_size)

    @property
    def metric_name(self) -> str:
        return "FID" if self.published else "FD"

    @property
    def protocol(self) -> str:
        return PROTOCOL if self.published else (
            f"FD in {self.name} (pytorch-fid's network with other weights)")

    @property
    def kid_name(self) -> str:
        return "KID" if self.published else f"KD in {self.name}"

    @property
    def note(self) -> str:
        if self.published:
            return NOTE
        return (f"Fréchet distance in pytorch-fid's Inception network with the weights "
                f"{os.path.basename(self.weights_path)} (SHA-256 {self.digest[:8]}..., not "
                f"the published {WEIGHTS_FILE}): not an FID, not comparable with other "
                "papers' numbers.")

    def preprocessing(self) -> dict:
        return dict(super().preprocessing(), quantize="uint8", align_corners=False,
                    antialias=False, protocol="pytorch-fid")

    def preprocess(self, images):
        # Rounded as PNG files hold them: pytorch-fid reads uint8 images.
        x = np.rint(np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0) * 255.0) / 255.0
        return super().preprocess(x)


def fid_inception_extractor(weights=None, batch_size: int = 50,
                            download: bool = True) -> FIDInceptionExtractor:
    """The extractor with pytorch-fid's weights: `weights` a .pth path, or None
    for the cached file (downloaded once where there is a network).

    FileNotFoundError names a missing file; ValueError a damaged or wrong one.
    """
    path = resolve_weights(weights, download=download)
    digest = check_hash(path)
    recorded = path + ".sha256"
    if os.path.isfile(recorded):
        with open(recorded) as f:
            expected = f.read().strip()
        if expected and digest != expected:
            raise ValueError(f"{path} is damaged: its SHA-256 differs from the one "
                             f"recorded at download ({recorded}); delete both files")
    model = build_fid_inception()
    load_state_dict(model, read_state_dict(path), source=path)
    return FIDInceptionExtractor(model, path, digest, batch_size=batch_size)
