"""Writing files so that a crash never leaves one half-written.

Every file the package writes (checkpoints, presets, reports, figures,
caches, histories) goes through `atomic_write`: the content is written to a
temporary file beside the target and renamed onto it, which POSIX makes
atomic, so a reader sees the previous file or the new one, never a mix.
Reading JSON with a clear error, and file digests, live here too.

Imports the standard library alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid


def atomic_write(path, write_fn) -> None:
    """Call write_fn(tmp_path), then rename tmp_path onto path.

    An exception (or a kill) in write_fn leaves the previous file intact and
    removes the temporary one. The temporary name ends with path's own name,
    so extensions that Keras checks (.keras, .weights.h5) are kept.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text: str) -> None:
    """Write text to path atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


def atomic_write_json(path, obj, indent: int = 2) -> None:
    """Write obj as indented JSON (ending in a newline) to path atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def read_json(path, what: str = "file"):
    """The JSON in path; ValueError naming the file if it is not valid JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"the {what} {path} is not valid JSON ({e})") from None


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
