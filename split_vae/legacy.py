"""Read the authors' Keras 2 checkpoints: infer their configuration, fill a model.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
The published weights were written by Keras 2 `vae.save_weights("f.hdf5")` on
the training model `[x, gamma] -> x_hat`. That HDF5 file holds one top-level
group per layer of the training model; the three nested models (encoder,
latent, decoder) are the only ones with weights, stored as
`<group>/<layer>/<weight>:0` with the names listed in the group's
`weight_names` attribute.

How layers are matched. The original names no layer, so Keras 2 named them
per type in creation order: conv2d, conv2d_1, ...; dense, dense_1, ...;
batch_normalization_N; conv2d_transpose_N. The numeric suffix is therefore
the creation order within a type, whatever order Keras 2 lists the weights in
(it lists them in its own topological order, trainable ones first). Our
sub-models create their layers in the original's order (blocks.py), so the
k-th legacy layer of a type in a group is the k-th layer of that type in the
matching sub-model. Every shape is checked before anything is assigned.

The file has no gamma (the original passed it as an input): the loaded model
starts at gamma = 1, which inference never reads. Before training further,
call `model.estimate_gamma(images)`, as the original did on resuming.

This module builds no model (it does not import model.py): a
`LegacyCheckpoint` infers a `SplitVAEConfig` and fills the weights of a model
it is given; `SplitVAE.from_legacy_h5` does the construction.
"""

from __future__ import annotations

import dataclasses
import os
import re

import h5py
import keras
import numpy as np

from .config import SplitVAEConfig

CONV, CONV_T, DENSE, BN = "conv2d", "conv2d_transpose", "dense", "batch_normalization"
BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


# ---------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class LegacyLayer:
    """One Keras 2 layer of a checkpoint: its name, type and arrays."""

    name: str            # e.g. "conv2d_3"
    kind: str            # CONV, CONV_T, DENSE or BN
    stem: str            # the name without its numeric suffix
    index: int           # the numeric suffix: creation order within the type
    weights: dict        # short name ("kernel") -> (name in the file, array)


@dataclasses.dataclass
class LegacyGroup:
    """A top-level group with weights: one nested model of the original."""

    name: str
    layers: dict         # kind -> [LegacyLayer] sorted by creation order

    def count(self, kind: str) -> int:
        return len(self.layers.get(kind, []))

    def describe(self) -> str:
        counts = ", ".join(f"{self.count(k)} {k}" for k in (CONV, CONV_T, DENSE, BN)
                           if self.count(k))
        return f"'{self.name}' ({counts or 'no known layers'})"


_SUFFIX = re.compile(r"^(?P<stem>.*?)(?:_(?P<index>\d+))?$")


def read_legacy_h5(path) -> list[LegacyGroup]:
    """The groups with weights of a Keras 2 `save_weights` HDF5 file.

    Raises FileNotFoundError if there is no such file and ValueError, saying
    what the file is instead, if it is not a Keras 2 weights checkpoint.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        if os.path.exists(path + ".index"):
            raise ValueError(
                f"{path} is a Keras 2 TensorFlow-format checkpoint ({path}.index), which "
                "Keras 3 cannot read. Convert it with Keras 2 (tf-keras): build the "
                "original model, vae.load_weights(path), vae.save_weights('weights.hdf5'), "
                "then load the .hdf5 file")
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    if os.path.isdir(path):
        raise ValueError(
            f"{path} is a directory, not a Keras 2 .hdf5 checkpoint (for a preset "
            "directory use SplitVAE.from_preset)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(
            f"{path} is not a Keras 2 weights checkpoint: it is not an HDF5 file ({e})") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f   # model.save(".h5") files
        if "layer_names" not in root.attrs:
            if "vars" in f or "layers" in f:
                raise ValueError(
                    f"{path} is a Keras 3 weights file, not a Keras 2 checkpoint: load it "
                    "with model.load_weights(path) on a model of the same configuration, "
                    "or keep it in a preset directory (SplitVAE.from_preset)")
            raise ValueError(
                f"{path} is an HDF5 file but not a Keras 2 save_weights checkpoint: "
                "it has no 'layer_names' attribute")
        groups = []
        for group_name in _strings(root.attrs["layer_names"]):
            if group_name not in root:
                raise ValueError(
                    f"{path} is damaged: it lists layer '{group_name}' but holds no group "
                    "of that name")
            group = root[group_name]
            weight_names = _strings(group.attrs.get("weight_names", []))
            if weight_names:
                groups.append(_read_group(path, group_name, group, weight_names))
    return groups


def _strings(values) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _read_group(path, group_name, group, weight_names) -> LegacyGroup:
    by_layer: dict[str, dict] = {}
    for full in weight_names:
        parts = full.split("/")
        if len(parts) < 2:
            raise ValueError(
                f"{path}: weight '{group_name}/{full}' has no layer name; not a checkpoint "
                "of the original Split VAE")
        # Older Keras 2 versions prefix name scopes ("Encoder/ResBlock/conv2d_3/
        # kernel:0"): the layer is always the next-to-last component.
        layer_name, short = parts[-2], re.sub(r":\d+$", "", parts[-1])
        layer = by_layer.setdefault(layer_name, {})
        if short in layer:
            raise ValueError(f"{path}: group '{group_name}' holds '{layer_name}/{short}' twice")
        layer[short] = (full, np.asarray(group[full]))
    layers: dict[str, list[LegacyLayer]] = {}
    for layer_name, weights in by_layer.items():
        kind = _kind(path, group_name, layer_name, weights)
        m = _SUFFIX.match(layer_name)
        layers.setdefault(kind, []).append(LegacyLayer(
            layer_name, kind, m["stem"], int(m["index"] or 0), weights))
    for kind, items in layers.items():
        stems = sorted({item.stem for item in items})
        if len(stems) > 1:
            raise ValueError(
                f"{path}: the {kind} layers of group '{group_name}' have different name "
                f"stems {stems}, so their creation order cannot be recovered; the original "
                "code leaves every layer with Keras 2's automatic name")
        items.sort(key=lambda item: item.index)
    return LegacyGroup(group_name, layers)


def _kind(path, group_name, layer_name, weights) -> str:
    shorts = set(weights)
    if shorts == set(BN_WEIGHTS):
        return BN
    if shorts == {"kernel", "bias"}:
        ndim = weights["kernel"][1].ndim
        if ndim == 4:
            return CONV_T if "transpose" in layer_name else CONV
        if ndim == 2:
            return DENSE
    raise ValueError(
        f"{path}: layer '{group_name}/{layer_name}' with weights {sorted(shorts)} is not "
        "a layer of the original Split VAE (Conv2D, Conv2DTranspose, Dense or "
        "BatchNormalization)")


def identify_submodels(groups, path="checkpoint") -> dict[str, LegacyGroup]:
    """Which group is the encoder, the latent model and the decoder.

    Told apart by content, not by position: the latent model holds three Dense
    layers and nothing else; the decoder has convolutions and exactly one Dense
    (to the 4x4 map); the encoder has convolutions and a Dense block (at
    least two Dense layers) but no transposed convolution.
    """
    roles: dict[str, list[LegacyGroup]] = {"encoder": [], "latent": [], "decoder": []}
    for g in groups:
        convs, dense = g.count(CONV), g.count(DENSE)
        if dense == 3 and not (convs or g.count(CONV_T) or g.count(BN)):
            roles["latent"].append(g)
        elif convs and dense == 1:
            roles["decoder"].append(g)
        elif convs and dense >= 2 and not g.count(CONV_T):
            roles["encoder"].append(g)
    if len(groups) != 3 or any(len(v) != 1 for v in roles.values()):
        found = "; ".join(g.describe() for g in groups) or "none"
        raise ValueError(
            f"{path} is a Keras 2 checkpoint but not one of the original Split VAE: "
            "expected three groups with weights (encoder, latent model, decoder), "
            f"found {len(groups)}: {found}")
    return {role: v[0] for role, v in roles.items()}


# ---------------------------------------------------------------------------
# A checkpoint, read
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class LegacyCheckpoint:
    """A Keras 2 checkpoint of the original code, its three sub-models told apart.

    Example:
    ```python
    checkpoint = LegacyCheckpoint.read("celeba_split_two.hdf5")
    config = checkpoint.infer_config()      # the architecture, from the shapes
    model = SplitVAE(config)
    checkpoint.load_into(model)             # what SplitVAE.from_legacy_h5 does
    ```
    """

    path: str
    submodels: dict      # "encoder", "latent", "decoder" -> LegacyGroup

    @classmethod
    def read(cls, path) -> "LegacyCheckpoint":
        """Read path (FileNotFoundError if absent, ValueError if it is no
        checkpoint of the original Split VAE, saying what it is instead)."""
        path = os.fspath(path)
        return cls(path, identify_submodels(read_legacy_h5(path), path))

    def load_into(self, model) -> None:
        """Assign the checkpoint's weights to model, a `SplitVAE` of a matching config.

        Every shape is checked before anything is assigned (see
        `match_weights`): on a mismatch the model is left as it was.
        """
        for var, value in match_weights(model, self.submodels, self.path):
            var.assign(value.astype(var.dtype))

    def infer_config(self, **fields_given) -> SplitVAEConfig:
        """Every architecture hyperparameter of the checkpoint, from its shapes.

        Image size and channels, base_dim, emb_dim, latent_dim, kernel_size,
        num_scale, block_per_scale, depth_per_block and split (2C+1 or C
        output channels; C comes from the encoder's first kernel). Fields a
        checkpoint cannot tell (beta, learning_rate, ...) keep their defaults
        unless given in `fields_given`; a given architecture field replaces the
        inferred one (and `load_into` then checks it against the file).
        """
        sub = self.submodels
        enc, lat, dec = sub["encoder"], sub["latent"], sub["decoder"]

        def fail(why):
            raise ValueError(f"cannot infer the configuration of {self.path}: {why}")

        # Encoder: 1 + S strided convs, P = S * block_per_scale residual blocks of
        # depth d (d BatchNorms, d + 1 convs each), and a Dense block (d BatchNorms,
        # d + 1 Dense layers).
        depth = enc.count(DENSE) - 1
        blocks, rest = divmod(enc.count(BN) - depth, depth)
        if rest or blocks < 0:
            fail(f"the encoder's {enc.count(BN)} BatchNorm layers do not fit residual blocks "
                 f"of depth {depth} (from its {enc.count(DENSE)} Dense layers)")
        scales = enc.count(CONV) - 1 - blocks * (depth + 1)
        if scales < 0 or (scales == 0) != (blocks == 0) or (scales and blocks % scales):
            fail(f"the encoder's {enc.count(CONV)} convolutions and {blocks} residual blocks "
                 "do not fit any num_scale and block_per_scale")
        per_scale = blocks // scales if scales else None

        # Decoder: T transposed convs, each followed by block_per_scale residual
        # blocks; then the output conv.
        ups = dec.count(CONV_T)
        if ups:
            dec_blocks, rest = divmod(dec.count(BN), ups * depth)
            if rest or dec.count(CONV) != ups * dec_blocks * (depth + 1) + 1:
                fail(f"the decoder's {ups} upsamplings, {dec.count(BN)} BatchNorm and "
                     f"{dec.count(CONV)} convolution layers do not fit residual blocks of "
                     f"depth {depth}")
            if per_scale is not None and dec_blocks != per_scale:
                fail(f"the encoder has {per_scale} residual block(s) per scale, the decoder "
                     f"{dec_blocks}")
            per_scale = dec_blocks
        elif dec.count(CONV) != 1 or dec.count(BN):
            fail("a decoder without upsampling must hold one convolution and no BatchNorm")

        first = enc.layers[CONV][0].weights["kernel"][1]      # (k, k, C, base_dim)
        k, k2, channels, base_dim = first.shape
        if k != k2:
            fail(f"the first convolution's kernel {first.shape} is not square")
        out_channels = dec.layers[CONV][-1].weights["kernel"][1].shape[-1]
        if out_channels == 2 * channels + 1:
            split = True
        elif out_channels == channels:
            split = False
        else:
            fail(f"the decoder ends in {out_channels} channels for {channels}-channel images: "
                 f"neither 2C+1 = {2 * channels + 1} (Split VAE) nor C = {channels} (vanilla)")
        z_mean_kernel = lat.layers[DENSE][0].weights["kernel"][1]   # (emb_dim, latent_dim)
        side = 4 * 2 ** ups
        fields = dict(
            image_shape=(side, side, int(channels)), latent_dim=int(z_mean_kernel.shape[1]),
            base_dim=int(base_dim), emb_dim=int(z_mean_kernel.shape[0]), kernel_size=int(k),
            num_scale=scales + 1, block_per_scale=per_scale or 1, depth_per_block=depth,
            split=split)
        fields.update(fields_given)
        try:
            return SplitVAEConfig(**fields)
        except ValueError as e:
            fail(str(e))


# ---------------------------------------------------------------------------
# Matching the file's layers with the model's
# ---------------------------------------------------------------------------
def creation_order(config: SplitVAEConfig) -> dict[str, list[str]]:
    """Names of our layers with weights, per sub-model, in the original's creation order.

    Written out from the original code (and the names model.py and blocks.py
    give): the legacy layers' numeric suffixes follow this order per type.
    """
    c = config

    def residual(prefix, conv="conv"):
        names = []
        for i in range(c.depth_per_block):
            names += [f"{prefix}_bn{i}", f"{prefix}_{conv}{i}"]
        return names + [f"{prefix}_shortcut"]

    def scale(prefix):
        return [n for b in range(c.block_per_scale) for n in residual(f"{prefix}_block{b}")]

    encoder = ["enc_conv_in"]
    for i in range(c.num_scale - 1):
        encoder += scale(f"enc_scale{i}") + [f"enc_down{i}"]
    encoder += residual("enc_dense", conv="dense")
    decoder = ["dec_dense_in"]
    for i in range(len(c.decoder_dims()[1]) - 1):
        decoder += [f"dec_up{i}"] + scale(f"dec_scale{i}")
    decoder.append("dec_out")
    return {"encoder": encoder, "latent": ["z_mean", "z_log_var", "to_embedding"],
            "decoder": decoder}


def _our_kind(layer) -> str:
    kl = keras.layers
    for cls, kind in ((kl.Conv2DTranspose, CONV_T), (kl.Conv2D, CONV), (kl.Dense, DENSE),
                      (kl.BatchNormalization, BN)):
        if isinstance(layer, cls):
            return kind
    raise TypeError(f"layer {layer.name} of type {type(layer).__name__} has no legacy counterpart")


def match_weights(model, sub, path="checkpoint") -> list:
    """[(variable, array)] pairing every weight of model with the file's, shapes checked.

    Raises ValueError naming the first weight that differs (its name in the
    file, its name in the model, and both shapes), or the first one that
    either side lacks.
    """
    order = creation_order(model.config)
    pairs = []
    for role in ("encoder", "latent", "decoder"):
        submodel, group = getattr(model, role), sub[role]
        seen: dict[str, int] = {}
        our_names = order[role]
        expected = {layer.name for layer in submodel.layers if layer.weights}
        if set(our_names) != expected:
            raise RuntimeError(
                f"legacy.creation_order is out of date with model.py for the {role}: "
                f"{sorted(set(our_names) ^ expected)}")
        for name in our_names:
            layer = submodel.get_layer(name)
            kind = _our_kind(layer)
            k = seen.get(kind, 0)
            seen[kind] = k + 1
            if k >= group.count(kind):
                shape = tuple(layer.weights[0].shape)
                raise ValueError(
                    f"{path} does not match the configuration: the model's {role} layer "
                    f"'{name}' ({kind}, {layer.weights[0].name} shape {shape}) has no "
                    f"counterpart in the file, whose {role} group '{group.name}' holds only "
                    f"{group.count(kind)} {kind} layer(s) (shape in the file: none)")
            legacy = group.layers[kind][k]
            for var in layer.weights:
                short = var.name.split("/")[-1]
                if short not in legacy.weights:
                    raise ValueError(
                        f"{path}: layer '{group.name}/{legacy.name}' has no '{short}' weight "
                        f"(model weight '{name}/{short}', shape {tuple(var.shape)})")
                full, value = legacy.weights[short]
                if tuple(value.shape) != tuple(var.shape):
                    raise ValueError(
                        f"{path} does not match the configuration: weight "
                        f"'{group.name}/{full}' has shape {tuple(value.shape)} in the file "
                        f"but the model's '{role}/{name}/{short}' has shape "
                        f"{tuple(var.shape)}")
                pairs.append((var, value))
        for kind, items in group.layers.items():
            if len(items) > seen.get(kind, 0):
                extra = items[seen.get(kind, 0)]
                full, value = next(iter(extra.weights.values()))
                raise ValueError(
                    f"{path} does not match the configuration: weight '{group.name}/{full}' "
                    f"(shape {tuple(value.shape)} in the file) has no counterpart in the "
                    f"model's {role} (shape in the model: none); the file's {role} has "
                    f"{len(items)} {kind} layers, the configuration {seen.get(kind, 0)}")
    return pairs
