"""Checks that the files and directories the arguments name exist.

Each command's `check_inputs(args)` runs right after parsing (`main.main`),
before the command imports Keras, TensorFlow or reads anything: a wrong path
is reported in a moment, naming the argument and the path, instead of after
seconds of imports or as some later failure (a download, a loader). The
errors are FileNotFoundError, which `main` prints as "error: ..." with the
exit status of a usage error (2).

Imports the standard library alone.
"""

from __future__ import annotations

import os

# What a file of a model or of an extractor's weights ends with.
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
EXTRACTOR_SUFFIXES = (".keras", ".pth", ".h5")


def looks_like_path(spec: str, suffixes) -> bool:
    """Whether spec can only mean a path: a directory separator in it, a
    leading "." or "~", or one of the suffixes. Built-in and published names
    have none of these."""
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (any(s in spec for s in seps) or spec.startswith((".", "~"))
            or spec.endswith(tuple(suffixes)))


def check_existing(flag: str, path, kind: str = "any") -> None:
    """FileNotFoundError naming flag and path when path (if given) does not
    exist, or is not a file (kind "file") or a directory (kind "dir")."""
    if path is None:
        return
    full = os.path.expanduser(os.fspath(path))
    if not os.path.exists(full):
        raise FileNotFoundError(f"{flag} {path}: no such file or directory")
    if kind == "file" and not os.path.isfile(full):
        raise FileNotFoundError(f"{flag} {path}: not a file")
    if kind == "dir" and not os.path.isdir(full):
        raise FileNotFoundError(f"{flag} {path}: not a directory")


def check_model_spec(spec, flag: str = "--model") -> None:
    """--model names a file or directory, a built-in preset or published
    weights; one that can only be a path must exist."""
    if spec is not None and not os.path.exists(spec) and looks_like_path(spec, MODEL_SUFFIXES):
        raise FileNotFoundError(f"{flag} {spec}: no such file or directory (a model is a "
                                ".keras file, a preset directory, a legacy .h5/.hdf5 file, "
                                "a published name or a built-in preset name)")


def check_extractor_path(spec, flag: str = "--extractor") -> None:
    """--extractor names a built-in extractor or a file (.keras, .pth,
    .weights.h5); a file must exist."""
    if spec is not None and looks_like_path(spec, EXTRACTOR_SUFFIXES):
        check_existing(flag, spec, kind="file")
