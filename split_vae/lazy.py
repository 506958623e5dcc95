"""Package faces that import their public names on first use (PEP 562).

`import split_vae`, `python -m split_vae --help` and
`from split_vae.metrics import frechet_distance` must not pay for Keras and
TensorFlow (seconds, and TensorFlow's log lines) before a name that needs them
is used. A face lists its public names with the module each lives in, and
takes its module-level `__getattr__` and `__dir__` from `attach`;
`started_as_command_line` tells the package face when to stay lazy.

Imports the standard library alone.
"""

from __future__ import annotations

import importlib
import os
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


def started_as_command_line(module: str, script: str, orig_argv=None) -> bool:
    """Whether this process is `python [options] -m MODULE ...` or the console
    script named `script`, read from the interpreter's own command line.

    `sys.orig_argv` (Python 3.10+) is the command line as the interpreter
    received it, options included, so the check is exact: `-m otherpkg`, a
    script named `split-vae-tools` or `-c` code are not the command line.
    """
    argv = list(sys.orig_argv if orig_argv is None else orig_argv)
    kind, target = _launch_target(argv[1:])
    if kind == "module":
        return target in (module, f"{module}.__main__")
    if kind == "script":
        # pip's launchers: split-vae, split-vae.exe, split-vae-script.py(w)
        name = os.path.basename(target)
        return name == script or name in (f"{script}.exe", f"{script}-script.py",
                                          f"{script}-script.pyw")
    return False


# The interpreter's options that take a value (`python -X importtime`, `-W error`).
_OPTIONS_WITH_VALUE = "XW"
_LONG_OPTIONS_WITH_VALUE = ("--check-hash-based-pycs",)


def _launch_target(args):
    """("module", name), ("script", path) or ("code", None) of python's arguments."""
    args = iter(args)
    for arg in args:
        if arg == "-" or not arg.startswith("-"):
            return ("script", arg) if arg != "-" else ("code", None)
        if arg == "--":
            path = next(args, None)
            return ("script", path) if path else ("code", None)
        if arg.startswith("--"):
            if arg in _LONG_OPTIONS_WITH_VALUE:
                next(args, None)
            continue
        flags = arg[1:]
        for i, flag in enumerate(flags):
            if flag in "mc" + _OPTIONS_WITH_VALUE:
                value = flags[i + 1:] or next(args, None)
                if flag == "m":
                    return "module", value
                if flag == "c":
                    return "code", None
                break
    return "code", None
