"""What `import split_vae` arranges for the engines it does not import itself.

`import split_vae` imports neither Keras nor TensorFlow (seconds, and
TensorFlow's log lines, that a notebook's first cell should not pay). Two
things still have to happen when they are imported later, by us or by the
user, in any order:

- TensorFlow's start-up lines are hidden. Its C++ writes them to file
  descriptor 2 while `import tensorflow` runs, before it reads
  TF_CPP_MIN_LOG_LEVEL. The first import of TensorFlow in the process runs
  inside `quiet.filtered_native_stderr`, with TF_CPP_MIN_LOG_LEVEL set to
  3 unless the user set it (0 shows every line).
- Keras learns our classes. A `.keras` file names `split_vae>SplitVAE`;
  `keras.saving.load_model` finds it only if `split_vae.model` was imported.
  When Keras is imported (or at once, if it already was), `split_vae.model`
  is imported too, so that `import split_vae, keras;
  keras.saving.load_model(path)` works as it did when the package loaded its
  model eagerly. When one of our own modules is what imports Keras, the model
  is imported once that module (and any of ours importing it) has finished:
  the model imports them, and would otherwise meet them half-initialised.

Both ride on one finder at the front of `sys.meta_path`, which answers for
the watched names only (a dict look-up and a prefix test for every other
import) and wraps their loader: `around` runs around the module's execution,
`after` once it has executed. Each hook of a top-level name runs once, for
the first import; the one of our submodules does something only while Keras
waits.

Imports the standard library and `quiet` alone.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
import warnings

from . import quiet


class _Loader(importlib.abc.Loader):
    """A module's own loader, with a context around its execution and a call
    after it (`after(module)`)."""

    def __init__(self, loader, around, after):
        self._loader, self._around, self._after = loader, around, after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module sees its own loader, as without us.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        with self._around():
            self._loader.exec_module(module)
        self._after(module)

    def __getattr__(self, name):   # get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the watched modules (see the module's docstring):
    `around` and `after` hold one-shot hooks of top-level names; every
    submodule of `package` gets `package_after` once it has executed."""

    def __init__(self, package: str = "split_vae"):
        self.around, self.after = {}, {}
        self.prefix, self.package_after = package + ".", None

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.around or fullname in self.after:
            around = self.around.pop(fullname, contextlib.nullcontext)
            after = self.after.pop(fullname, lambda module: None)
        elif self.package_after is not None and fullname.startswith(self.prefix):
            around, after = contextlib.nullcontext, self.package_after
        else:
            return None
        sys.meta_path.remove(self)     # the spec every other finder gives
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, around, after)
        return spec


_FINDER = _Finder()


def _quiet_tensorflow():
    """The context of TensorFlow's first import: its start-up lines filtered."""
    return quiet.filtered_native_stderr(quiet.set_log_level())


_PENDING = []   # Keras came while a module of ours was being imported


def _importing_ours(finished=None) -> bool:
    """Whether a module of split_vae is still being executed (`finished`, the
    one whose execution just ended, aside)."""
    return any(getattr(getattr(m, "__spec__", None), "_initializing", False)
               for name, m in list(sys.modules.items())
               if m is not finished and (name == "split_vae" or name.startswith("split_vae.")))


def _keras_imported(keras_module) -> None:
    """Keras has been imported: register our classes, now, or, when one of our
    modules imported Keras and is not done yet, once none is (importing the
    model in the middle of another module's import would meet that module
    half-initialised)."""
    if _importing_ours():
        _PENDING.append(True)
    else:
        _register_model()


def _after_our_module(module) -> None:
    """After each of our modules executes: register, if Keras is waiting for it."""
    if _PENDING and not _importing_ours(finished=module):
        _PENDING.clear()
        _register_model()


def _register_model() -> None:
    """Import `split_vae.model` (which registers its classes with Keras)."""
    try:
        importlib.import_module("split_vae.model")
    except Exception as e:  # noqa: BLE001 - the user's `import keras` must not fail for us
        warnings.warn(f"split_vae could not register its classes with Keras "
                      f"({type(e).__name__}: {e}); import split_vae.model to see why",
                      stacklevel=2)


def install() -> None:
    """Put the finder in place (once); register the model now if Keras is loaded."""
    if _FINDER not in sys.meta_path:
        if "tensorflow" not in sys.modules:
            _FINDER.around["tensorflow"] = _quiet_tensorflow
        if "keras" not in sys.modules:
            _FINDER.after["keras"] = _keras_imported
            _FINDER.package_after = _after_our_module
        if _FINDER.around or _FINDER.after:
            sys.meta_path.insert(0, _FINDER)
    if sys.modules.get("keras") is not None and "split_vae.model" not in sys.modules:
        _register_model()
