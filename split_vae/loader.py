"""Reading a model from whatever names one: the body of `SplitVAE.from_*`.

A model comes as a built-in preset name of `config.PRESETS` (untrained), a
preset directory (`presets.save_to_preset`), a `.keras` file, a Keras 2
`.h5`/`.hdf5` checkpoint of the authors' code (`legacy`), or a name of
`presets.REGISTRY` (published weights, downloaded once). The three readers
differ only in what a bare built-in name means:

- `from_preset`: the untrained model of that preset, even where a directory
  of that name exists (write "./mnist" for the directory);
- `from_pretrained`: a directory of that name, otherwise the trained model
  shipped in the package ("digits", `SHIPPED`), otherwise a ValueError
  pointing at `from_preset` (the other built-in names have no weights);
- `for_evaluation` (the evaluate command, which measures whatever it is
  named): a directory of that name, otherwise the untrained model with a
  UserWarning.

Each takes the model class it builds (`SplitVAE` or a subclass), so this
module does not import the model; `SplitVAE.from_preset`,
`SplitVAE.from_pretrained` and `SplitVAE.from_legacy_h5` are thin calls
into it. Those return the model alone; the functions here also return a
description of what was read (e.g. "preset directory runs/x").
"""

from __future__ import annotations

import os
import warnings

import keras

from . import legacy, presets
from .config import PRESETS, get_preset

# Trained models inside the package, read offline by `from_pretrained` (a
# directory of the same name in the working directory wins). Rebuilt by
# tools/build_digits_model.py, which records what it measured in the
# preset's metadata.json.
SHIPPED = {"digits": os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets",
                                  "digits")}


def from_preset(cls, name, cache_dir=None, **kwargs):
    """(model, description): a built-in preset name gives the untrained model,
    anything else is read as `from_pretrained` reads it."""
    if _is_builtin_name(name):
        return _untrained(cls, name, **kwargs)
    return from_pretrained(cls, name, cache_dir=cache_dir, **kwargs)


def from_pretrained(cls, spec, cache_dir=None, **kwargs):
    """(model, description) of a saved model or of published weights.

    Args:
        cls: the model class, called as `cls(config, **kwargs)`.
        spec: str or PathLike: a preset directory (config.json,
            model.weights.h5, metadata.json), a `.keras` file, a Keras 2
            `.h5`/`.hdf5` checkpoint of the authors' code (its configuration
            inferred from its shapes), a name of `presets.REGISTRY`, or
            "digits": the trained digits model shipped in the package
            (`SHIPPED`), unless a directory of that name exists.
        cache_dir: the folder published weights are downloaded to
            (default `paths.cache_dir("weights")`).
        **kwargs: constructor arguments (e.g. `seed`), for every source but
            a `.keras` file, which holds its own.

    Raises:
        FileNotFoundError: a path that does not exist, or a preset directory
            that lacks a file.
        ValueError: a file or directory that is not a model of ours, a
            built-in preset name (no weights: use `from_preset`), or a name
            that is none of the above (the names known listed).
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(f"a model is named by a string or a path, received "
                         f"{type(spec).__name__}")
    path = os.fspath(spec)
    if isinstance(spec, os.PathLike) or os.path.exists(path):
        return from_path(cls, path, **kwargs)
    if spec in SHIPPED:
        model = presets.load_preset_dir(SHIPPED[spec], cls, **kwargs)
        return model, f"trained model {spec}, shipped with split_vae ({SHIPPED[spec]})"
    if spec in PRESETS:
        raise ValueError(
            f"{spec!r} is a built-in configuration without published weights: use "
            f"SplitVAE.from_preset({spec!r}) for an untrained model. Published "
            f"weights: {sorted(presets.REGISTRY)}")
    if spec in presets.REGISTRY:
        downloaded = presets.fetch(spec, cache_dir=cache_dir)
        fields = presets.pretrained_fields(presets.REGISTRY[spec])
        model = from_legacy_h5(cls, downloaded, config=fields, **kwargs)
        return model, f"published weights {spec} ({downloaded})"
    if os.sep in path or path.endswith((".keras", ".h5", ".hdf5")):
        raise FileNotFoundError(f"no such file or directory: {path}")
    raise ValueError(
        f"cannot read a model from {spec!r}: it is neither a file, a directory, a "
        f"built-in preset (presets: {sorted(PRESETS)}) nor published weights "
        f"(published weights: {sorted(presets.REGISTRY)})")


def for_evaluation(cls, spec, cache_dir=None, **kwargs):
    """(model, description) as `from_pretrained` reads it, except that a
    built-in preset name with no directory of that name gives the untrained
    model, with a UserWarning that its numbers describe random weights."""
    if _is_builtin_name(spec) and not os.path.exists(spec):
        warnings.warn(f"{spec!r} is a built-in preset: the model is UNTRAINED, its "
                      "numbers describe random weights", stacklevel=2)
        return _untrained(cls, spec, **kwargs)
    return from_pretrained(cls, spec, cache_dir=cache_dir, **kwargs)


def from_path(cls, path: str, **kwargs):
    """(model, description) of a preset directory, a `.keras` file or a legacy file."""
    if os.path.isdir(path):
        return presets.load_preset_dir(path, cls, **kwargs), f"preset directory {path}"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or directory: {path}")
    if path.endswith(".keras"):
        if kwargs:
            raise ValueError(f"{path} holds a whole model: constructor arguments "
                             f"{sorted(kwargs)} cannot apply to it")
        model = keras.saving.load_model(path, compile=False)
        if not isinstance(model, cls):
            raise ValueError(f"Keras file {path} holds a {type(model).__name__}, "
                             f"not a {cls.__name__}")
        return model, f"Keras file {path}"
    if path.endswith(".weights.h5"):
        raise ValueError(
            f"{path} is a Keras 3 weights file, which needs its configuration: keep it "
            f"in a preset directory with {presets.CONFIG_FILE} (see save_to_preset)")
    return from_legacy_h5(cls, path, **kwargs), f"legacy HDF5 weights {path}"


def from_legacy_h5(cls, path, config=None, **kwargs):
    """A `cls` model with the weights of a Keras 2 checkpoint of the original
    code; see `SplitVAE.from_legacy_h5` for the arguments."""
    checkpoint = legacy.LegacyCheckpoint.read(path)
    if config is None or isinstance(config, dict):
        config = checkpoint.infer_config(**(config or {}))
    model = cls(config, **kwargs)
    checkpoint.load_into(model)
    return model


def _is_builtin_name(spec) -> bool:
    return isinstance(spec, str) and spec in PRESETS


def _untrained(cls, name: str, **kwargs):
    return cls(get_preset(name), **kwargs), f"untrained preset {name}"
