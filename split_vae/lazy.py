"""Package faces that import their public names on first use (PEP 562).

`import split_vae`, `python -m split_vae --help` and
`from split_vae.metrics import frechet_distance` must not pay for Keras and
TensorFlow (seconds, and TensorFlow's log lines) before a name that needs them
is used. A face lists its public names with the module each lives in, and
takes its module-level `__getattr__` and `__dir__` from `attach`.

Imports the standard library alone.
"""

from __future__ import annotations

import importlib
import sys


def attach(package: str, exports: dict, submodules=()):
    """`(__getattr__, __dir__)` for the package named `package`.

    `exports` maps each public name to the submodule that defines it;
    `submodules` are the submodules reachable as attributes. Each is imported
    when first asked for; any other name raises AttributeError.
    """
    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(f".{exports[name]}", package), name)
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports) | set(submodules))

    return __getattr__, __dir__
