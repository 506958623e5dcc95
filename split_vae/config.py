"""Hyperparameters of a Split VAE and the paper's presets.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
Every field below is a knob of the authors' Keras 2 code; the comments say why a
preset has its value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import types
from typing import Any

import numpy as np

from . import checks

# The dtype policies a model can be built under (see `precision.py`). Named
# here, with the fields, so that checking a config needs no Keras.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# The fields that determine the network and its weights' shapes; the others
# (beta, learning rate, epochs, ...) are training choices a weights file does
# not record.
ARCHITECTURE_FIELDS = ("image_shape", "latent_dim", "base_dim", "emb_dim", "kernel_size",
                       "num_scale", "block_per_scale", "depth_per_block", "split",
                       "components", "specialized")


def check_precision_name(name) -> str:
    """name if it is one of PRECISIONS, else ValueError listing them."""
    if name not in PRECISIONS:
        raise ValueError(
            f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)} "
            "(mixed_bfloat16 for CPUs with AVX512-BF16/AMX and recent GPUs, "
            "mixed_float16 for GPUs)")
    return name


@dataclasses.dataclass(frozen=True)
class SplitVAEConfig:
    """Every hyperparameter of the original network and its training loss.

    Frozen: `config.replace(beta=4.0)` returns a changed copy, validated as a
    new configuration is (a ValueError names the field that cannot work).

    Args:
        image_shape: `(H, W, C)` of the images the model reads and writes.
            H must equal W and be 4 * 2**k (the decoder starts from 4x4).
        latent_dim: number of latent variables. The paper uses more than
            usual (32 for MNIST, 200 for CIFAR-10, 150 for CelebA): splitting
            keeps them active.
        base_dim: channels of the first encoder convolution; doubled at each
            downsampling. Also the channels of the decoder's finest scale.
        emb_dim: width of the dense embedding between the convolutional
            trunk and the latent space (encoder output, decoder input).
        kernel_size: side of every convolution kernel.
        num_scale: number of stride-2 convolutions of the encoder; the
            encoder has `num_scale - 1` scale blocks.
        block_per_scale: residual blocks per scale block.
        depth_per_block: [BatchNorm, swish, conv] units per residual block
            (also dense units per dense block).
        bn_momentum: BatchNormalization's moving-average momentum. The
            original's 0.999 averages over ~1000 batches, right for hundreds
            of epochs; short runs (the digits preset) need a faster one, or
            inference-mode outputs use barely-updated statistics.
        split: True for the Split VAE (last layer 2C+1 channels: sigma, x1,
            x2); False for the paper's "vanilla" ablation (last layer C
            channels, no composition).
        components: K, the number of images the decoder composes (split
            models only). 2 is the paper's model (sigma, x1, x2). K > 2 is the
            paper's closing research direction (Section VII): the last layer
            has K*C + K channels, K images x1..xK and K logits, composed as
            x_hat = sum_k softmax(logits)_k * x_k (docs/components.md).
        specialized: False (the paper): the K images share every decoder
            layer but the last. True: each component has its own last scale
            block and output convolution (a "specialised subnet" per part,
            Section VII); the cost in parameters is in docs/components.md.
        map_entropy: weight of a prior on the maps, added to the loss as
            map_entropy * (sum over pixels of the entropy of the K maps), per
            sample. 0 is the paper's loss. Positive values push each pixel
            towards one component (hard, exclusive maps); negative values
            towards an even blend.
        beta: weight of the KL term. The effective weight during training is
            `beta * gamma` (see `GammaBalance`).
        learning_rate: Adam's step. The paper's text says 1e-3, the authors'
            code uses 1e-4: we default to the code, which produced the
            published weights.
        batch_size: 100 in every experiment of the paper.
        epochs: the paper's training length for the preset.
        gmm_components: Gaussian mixture components for latent resampling.
        dataset: name of the dataset the preset was made for (informative).
        precision: "float32" (default: the original's arithmetic),
            "mixed_bfloat16" (16-bit compute, float32 weights: faster on
            CPUs with AVX512-BF16/AMX and on recent GPUs) or
            "mixed_float16" (GPUs; with loss scaling). The loss, gamma and
            the KL are float32 under every policy.
    """

    image_shape: tuple[int, int, int] = (32, 32, 1)
    latent_dim: int = 32
    base_dim: int = 64
    emb_dim: int = 512
    kernel_size: int = 3
    num_scale: int = 4
    block_per_scale: int = 1
    depth_per_block: int = 2
    bn_momentum: float = 0.999
    split: bool = True
    components: int = 2
    specialized: bool = False
    map_entropy: float = 0.0
    beta: float = 3.0
    learning_rate: float = 1e-4
    batch_size: int = 100
    epochs: int = 100
    gmm_components: int = 100
    dataset: str | None = None
    precision: str = "float32"

    def __post_init__(self):
        try:
            shape = tuple(int(v) for v in self.image_shape)
        except (TypeError, ValueError):
            raise ValueError(f"image_shape must be (H, W, C), received "
                             f"{self.image_shape!r}") from None
        object.__setattr__(self, "image_shape", shape)
        self.validate()
        object.__setattr__(self, "split", bool(self.split))
        object.__setattr__(self, "specialized", bool(self.specialized))

    # --- checks -------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first field that cannot work."""
        if len(self.image_shape) != 3:
            raise ValueError(
                f"image_shape must be (H, W, C), received {self.image_shape}"
            )
        h, w, c = self.image_shape
        if h != w:
            raise ValueError(
                f"image_shape must be square (H == W), received {self.image_shape}"
            )
        if not checks.is_valid_image_size(h):
            raise ValueError(
                f"image side must be 4 * 2**k (4, 8, 16, 32, 64, ...), "
                f"received {h} (image_shape={self.image_shape}); pad or resize "
                "the images, as the paper pads MNIST from 28 to 32"
            )
        if c < 1:
            raise ValueError(f"image channels must be >= 1, received {c}")
        for name in ("latent_dim", "base_dim", "emb_dim", "kernel_size",
                     "num_scale", "block_per_scale", "depth_per_block",
                     "batch_size", "epochs", "gmm_components"):
            value = getattr(self, name)
            checks.integer(value, name)
        if h // 2 ** self.num_scale < 1:
            raise ValueError(
                f"num_scale={self.num_scale} halves a {h}x{h} image below 1x1; "
                f"use at most {int(math.log2(h))}"
            )
        for name in ("bn_momentum", "beta", "learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} must be a number, received {value!r}")
        if not isinstance(self.split, (bool, np.bool_)):
            raise ValueError(f"split must be True or False, received {self.split!r}")
        checks.integer(self.components, "components", minimum=2)
        if not isinstance(self.specialized, (bool, np.bool_)):
            raise ValueError(f"specialized must be True or False, received "
                             f"{self.specialized!r}")
        if isinstance(self.map_entropy, bool) or not isinstance(self.map_entropy, numbers.Real) \
                or not math.isfinite(self.map_entropy):
            raise ValueError(f"map_entropy must be a finite number, received "
                             f"{self.map_entropy!r}")
        if not self.split and (self.components != 2 or self.specialized or self.map_entropy):
            raise ValueError(
                "components, specialized and map_entropy describe the parts of a split "
                f"model; a vanilla model (split=False) has none (received components="
                f"{self.components}, specialized={self.specialized}, map_entropy="
                f"{self.map_entropy}); use config.with_split(False)")
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise ValueError(f"dataset must be a name or None, received {self.dataset!r}")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"bn_momentum must be in [0, 1), received {self.bn_momentum!r}")
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be finite and >= 0, received {self.beta!r}")
        check_precision_name(self.precision)
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(
                f"learning_rate must be finite and > 0, received {self.learning_rate!r}"
            )

    # --- derived quantities -------------------------------------------
    @property
    def channels(self) -> int:
        return self.image_shape[2]

    @property
    def output_channels(self) -> int:
        """Channels of the decoder's output: 2C+1 for the paper's split model
        (sigma, x1, x2), C vanilla, K + K*C for K components or a specialised
        decoder (the K maps, then the K images)."""
        if not self.split:
            return self.channels
        if self.paper_layout:
            return 2 * self.channels + 1
        return self.components * (self.channels + 1)

    @property
    def paper_layout(self) -> bool:
        """True for the paper's decoder: split, 2 components sharing every
        layer but the last, whose 2C+1 sigmoid channels are sigma, x1, x2."""
        return self.split and self.components == 2 and not self.specialized

    @property
    def parts(self) -> int:
        """The number of images composed: K for a split model, 0 vanilla."""
        return self.components if self.split else 0

    def with_split(self, split: bool) -> "SplitVAEConfig":
        """This configuration as a split model, or as its vanilla ablation
        (the same network with a last layer of C channels: components,
        specialized and map_entropy back to the paper's)."""
        if split:
            return self.replace(split=True)
        return self.replace(split=False, components=2, specialized=False, map_entropy=0.0)

    def decoder_dims(self) -> tuple[list[int], list[int]]:
        """(dims, scales) of the decoder, widest first, as the original.

        Scales run 4, 8, ..., H; the channel count starts at base_dim for
        scale 4, doubles per scale with a cap of 1024, and the list is then
        reversed, so the 4x4 map is the widest.
        """
        scales, dims = [], []
        scale, dim = 4, self.base_dim
        while scale <= self.image_shape[0]:
            scales.append(scale)
            dims.append(dim)
            scale *= 2
            dim = min(dim * 2, 1024)
        return list(reversed(dims)), scales

    # --- (de)serialisation --------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SplitVAEConfig":
        _check_field_names(d)
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def replace(self, **changes) -> "SplitVAEConfig":
        """A copy with `changes` applied and validated; ValueError naming an
        unknown field or the first one that cannot work. `self` is unchanged."""
        _check_field_names(changes)
        return dataclasses.replace(self, **changes)


def _check_field_names(names) -> None:
    unknown = sorted(set(names) - {f.name for f in dataclasses.fields(SplitVAEConfig)})
    if unknown:
        raise ValueError(f"unknown SplitVAEConfig fields: {unknown}")


# The paper's configurations (Section V and the authors' code). All share
# base_dim 64, emb_dim 512, kernel 3, num_scale 4, one residual block per scale
# of depth 2 and batches of 100. A read-only table of frozen configurations:
# `PRESETS["mnist"].replace(...)` makes a changed copy.
PRESETS = types.MappingProxyType({
    # MNIST is zero-padded from 28 to 32 so that 32 = 4 * 2**3. beta=8 gives
    # the best GEN score; beta=3 with a 100-component GMM the best overall.
    "mnist": SplitVAEConfig(
        image_shape=(32, 32, 1), latent_dim=32, beta=8.0, epochs=300,
        gmm_components=20, dataset="mnist"),
    # Fashion-MNIST has MNIST's format: same network, same schedule.
    "fashion_mnist": SplitVAEConfig(
        image_shape=(32, 32, 1), latent_dim=32, beta=8.0, epochs=300,
        gmm_components=20, dataset="fashion_mnist"),
    # 200 latent variables instead of the usual 128; 110 epochs suffice.
    "cifar10": SplitVAEConfig(
        image_shape=(32, 32, 3), latent_dim=200, beta=3.0, epochs=110,
        gmm_components=100, dataset="cifar10"),
    # 128x128 crop of the aligned faces resized to 64x64; 150 latents.
    "celeba": SplitVAEConfig(
        image_shape=(64, 64, 3), latent_dim=150, beta=3.0, epochs=160,
        gmm_components=100, dataset="celeba"),
    # Not in the paper: scikit-learn's bundled 8x8 digits upsampled to 16x16,
    # a network small enough to train in minutes on two CPU cores offline.
    # beta=1, a higher learning rate and BatchNorm momentum 0.9 because the
    # run is a few hundred steps, not the paper's hundreds of thousands.
    "digits": SplitVAEConfig(
        image_shape=(16, 16, 1), latent_dim=8, base_dim=16, emb_dim=64,
        num_scale=2, bn_momentum=0.9, beta=1.0, learning_rate=1e-3, batch_size=64, epochs=30,
        gmm_components=10, dataset="digits"),
})


def get_preset(name: str) -> SplitVAEConfig:
    """The named preset (frozen: change it with `replace`); ValueError listing the names."""
    if name not in PRESETS:
        raise ValueError(
            f"unknown preset {name!r}; available presets: {sorted(PRESETS)}"
        )
    return PRESETS[name]
