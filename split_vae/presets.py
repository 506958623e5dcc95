"""Preset directories and the registry of published weights.

A preset directory (the keras-hub layout) holds three files:

- `config.json`: the `SplitVAEConfig` fields, enough to rebuild the network;
- `model.weights.h5`: `model.save_weights` (Keras 3), gamma included;
- `metadata.json`: Keras and split_vae versions, parameter count, date,
  training dataset, the weights file's SHA-256, and where the weights came
  from (e.g. the legacy checkpoint they were converted from).

The registry lists the checkpoints the authors of the paper (Asperti, Bugo,
Filippini, IEEE Access 2022, https://arxiv.org/abs/2202.02738) published:
Keras 2 HDF5 files, read by `legacy.LegacyCheckpoint`. weights/README.md
describes each of them; `fetch` downloads one once into the cache.

This module builds no model of its own choosing (it does not import
model.py): `load_preset_dir` builds the class it is given, and
`SplitVAE.from_pretrained` / `from_preset` decide what a name means.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import urllib.parse
import warnings

import keras

from . import paths
from .version import __version__
from .config import ARCHITECTURE_FIELDS, PRESETS, SplitVAEConfig
from .fileio import atomic_write, atomic_write_json, atomic_write_text, read_json, sha256_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
PRESET_FORMAT = "split_vae-preset-1"

# Setting this environment variable to 1 makes from_pretrained use the cache
# only (no network access), like HF_HUB_OFFLINE.
OFFLINE_ENV = "SPLIT_VAE_OFFLINE"


# ---------------------------------------------------------------------------
# The registry of published weights
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """One published checkpoint.

    Args:
        name: registry name for `SplitVAE.from_pretrained(name)`.
        url: where the file is downloaded from.
        dataset: the data it was trained on.
        description: what we know of it, and how sure we are.
        config: its `SplitVAEConfig` when known for certain; None means the
            architecture is inferred from the file's shapes at load time.
        sha256: the file's SHA-256 once somebody computed it on the real
            file; None until then (downloads are then not verified).
    """

    name: str
    url: str
    dataset: str
    description: str
    config: SplitVAEConfig | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return os.path.basename(urllib.parse.urlsplit(self.url).path)


_ROOT = "https://www.cs.unibo.it/~asperti/VAEcheckpoint/"

# Nobody has computed the SHA-256 of these files yet (they could not be
# downloaded where this code was written): record it here and in
# weights/README.md once you have.
REGISTRY: dict[str, PretrainedWeights] = {w.name: w for w in [
    PretrainedWeights(
        name="split_64_4SB_lat150_base128_512_k3",
        url=_ROOT + "split_64_4SB_lat150_base128_512_k3.hdf5",
        dataset="celeba",
        description="Split VAE on CelebA 64x64. The file name suggests latent_dim 150, "
                    "base_dim 128, emb_dim 512, kernel 3 and 4 scale blocks; not "
                    "verified, so the configuration is inferred from the file."),
    PretrainedWeights(
        name="celeba_split_two",
        url=_ROOT + "celeba_split_two.hdf5",
        dataset="celeba",
        description="Split VAE on CelebA; configuration not published, inferred from "
                    "the file."),
    PretrainedWeights(
        name="celeba_split_three",
        url=_ROOT + "celeba_split_three.hdf5",
        dataset="celeba",
        description="Split VAE on CelebA; configuration not published, inferred from "
                    "the file."),
]}


def pretrained_fields(entry: PretrainedWeights) -> dict:
    """The `SplitVAEConfig` fields a registry entry's model gets beyond its file.

    The entry's config when known (the file must then match it); for an
    entry whose dataset is one of the paper's presets, that preset's training
    fields (beta, learning rate, epochs, GMM components, ...). The
    architecture fields the entry does not give are inferred from the file.
    """
    fields = entry.config.to_dict() if entry.config is not None else {}
    if entry.dataset in PRESETS:
        fields.update({k: v for k, v in PRESETS[entry.dataset].to_dict().items()
                       if k not in ARCHITECTURE_FIELDS})
    return fields


# ---------------------------------------------------------------------------
# Preset directories
# ---------------------------------------------------------------------------
def save_to_preset(model, preset_dir, dataset=None, source=None) -> str:
    """Write model as a preset directory: config.json, model.weights.h5, metadata.json.

    Args:
        model: a `SplitVAE`.
        preset_dir: str or PathLike; created if missing, our three files
            replaced if present.
        dataset: training dataset recorded in metadata.json (default:
            `model.config.dataset`).
        source: optional JSON-serialisable dict recorded as metadata's
            "source" (e.g. the legacy checkpoint converted).

    Every file is written to a temporary name and renamed into place. The
    weights go first and metadata.json, which records their SHA-256, last:
    a save interrupted half way leaves a directory that `load_preset_dir`
    refuses with a clear error rather than a silent mix of two models.

    Returns the directory's path.
    """
    preset_dir = os.fspath(preset_dir)
    if os.path.exists(preset_dir) and not os.path.isdir(preset_dir):
        raise ValueError(f"preset_dir {preset_dir} exists and is not a directory")
    os.makedirs(preset_dir, exist_ok=True)
    weights_path = os.path.join(preset_dir, WEIGHTS_FILE)
    atomic_write(weights_path, model.save_weights)
    atomic_write_text(os.path.join(preset_dir, CONFIG_FILE), model.config.to_json())
    metadata = {
        "format": PRESET_FORMAT,
        "keras_version": keras.__version__,
        "split_vae_version": __version__,
        "parameter_count": model.count_params(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset if dataset is not None else model.config.dataset,
        "gamma": float(keras.ops.convert_to_numpy(model.gamma)),
        "weights_sha256": sha256_file(weights_path),
    }
    if source is not None:
        metadata["source"] = source
    atomic_write_json(os.path.join(preset_dir, METADATA_FILE), metadata)
    return preset_dir


def load_preset_dir(path, cls, **kwargs):
    """The model saved in a preset directory (see `save_to_preset`), built as `cls`.

    Args:
        path: str or PathLike, the directory.
        cls: the model class (`SplitVAE` or a subclass), called as
            `cls(config, **kwargs)`.
        **kwargs: passed to the constructor (e.g. `seed`).

    Raises FileNotFoundError for a missing directory or file and ValueError,
    naming the file at fault, for anything that does not fit together.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such preset directory: {path}")
    config_path = os.path.join(path, CONFIG_FILE)
    weights_path = os.path.join(path, WEIGHTS_FILE)
    metadata_path = os.path.join(path, METADATA_FILE)
    if not os.path.isfile(config_path):
        hint = ""
        if os.path.basename(os.path.normpath(path)) in PRESETS:
            hint = (f"; for the built-in preset of that name while a directory of that name "
                    f"exists here, use SplitVAE(get_preset({os.path.basename(path)!r}))")
        raise FileNotFoundError(
            f"{path} is not a preset directory: it has no {CONFIG_FILE}{hint}")
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"preset directory {path} has no {WEIGHTS_FILE}")
    raw = read_json(config_path, "preset config")
    if not isinstance(raw, dict):
        raise ValueError(f"{config_path} must hold a JSON object of SplitVAEConfig fields, "
                         f"received {type(raw).__name__}")
    try:
        config = SplitVAEConfig.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{config_path}: {e}") from None
    metadata = read_json(metadata_path, "preset metadata") if os.path.isfile(metadata_path) else {}
    expected = metadata.get("weights_sha256")
    if expected and sha256_file(weights_path) != expected:
        raise ValueError(
            f"{weights_path} is not the file {metadata_path} describes (SHA-256 differs; "
            "an interrupted or partial save?): save the preset again")
    model = cls(config, **kwargs)
    count = metadata.get("parameter_count")
    if count is not None and count != model.count_params():
        raise ValueError(
            f"{config_path} describes a model of {model.count_params()} parameters but "
            f"{metadata_path} says {count}: the files come from different models")
    try:
        with warnings.catch_warnings():
            # Keras warns once per sub-layer before raising on a mismatch.
            warnings.simplefilter("ignore")
            model.load_weights(weights_path)
    except ValueError as e:
        first = str(e).strip().splitlines()
        raise ValueError(
            f"{weights_path} does not fit the network of {config_path} "
            f"(Keras: {' '.join(first[:3])})") from None
    return model


# ---------------------------------------------------------------------------
# Downloading published weights
# ---------------------------------------------------------------------------
class WeightsUnavailableError(FileNotFoundError):
    """Published weights neither in the cache nor downloadable now."""


def cached_path(name: str, cache_dir=None) -> str:
    """Where `fetch` keeps (or expects) the file of a registry entry.

    cache_dir: the folder the file goes in; default the weights folder of
    split_vae's cache, `paths.cache_dir("weights")` (under
    $SPLIT_VAE_CACHE_DIR, else ~/.cache/split_vae).
    """
    entry = _entry(name)
    folder = os.fspath(cache_dir) if cache_dir is not None else paths.cache_dir("weights")
    return os.path.join(folder, entry.filename)


def _entry(name) -> PretrainedWeights:
    if name not in REGISTRY:
        raise ValueError(f"{name!r} is not published weights; published weights: "
                         f"{sorted(REGISTRY)}")
    return REGISTRY[name]


def _reachable(url: str, timeout: float = 5.0) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return True
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def fetch(name: str, cache_dir=None) -> str:
    """The local path of a registry entry's file, downloaded once into the cache.

    cache_dir: the folder the file goes in (see `cached_path`). Offline (no
    route to the host, or SPLIT_VAE_OFFLINE=1) and not cached, it raises
    `WeightsUnavailableError` at once, saying which URL to fetch and where to
    put the file.
    """
    entry = _entry(name)
    target = cached_path(name, cache_dir)
    folder = os.path.dirname(target)
    if not os.path.exists(target):
        how = (f"download {entry.url} by other means and save it as {target} "
               f"(or pass its path to SplitVAE.from_pretrained)")
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            raise WeightsUnavailableError(
                f"{name!r} is not in the cache and {OFFLINE_ENV} is set: {how}")
        if not _reachable(entry.url):
            raise WeightsUnavailableError(
                f"cannot reach {urllib.parse.urlsplit(entry.url).hostname} to download "
                f"{name!r}: {how}")
    try:
        # get_file falls back to /tmp/.keras when the folder does not exist yet.
        os.makedirs(folder, exist_ok=True)
    except OSError:
        pass
    try:
        # The hash is checked below rather than by get_file, which would
        # silently download again over a cached file that does not match.
        path = keras.utils.get_file(
            fname=entry.filename, origin=entry.url, cache_dir=folder, cache_subdir="")
    except Exception as e:   # get_file raises bare Exception on URL errors
        raise WeightsUnavailableError(
            f"downloading {entry.url} failed ({e}): download it by other means and save "
            f"it as {target}") from None
    if entry.sha256:
        digest = sha256_file(path)
        if digest != entry.sha256:
            raise ValueError(
                f"{path} has SHA-256 {digest}, but the registry records {entry.sha256} "
                f"for {entry.url}: delete the file and download it again")
    return path
