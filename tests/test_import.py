"""`import split_vae` in a notebook: milliseconds, no output, no framework loaded.

TensorFlow is imported only when something needs it, and then without its
C++ start-up lines (unless TF_CPP_MIN_LOG_LEVEL says otherwise); Keras knows
our classes in whichever order the two are imported; under JAX or PyTorch a
model is built, loaded and sampled without TensorFlow ever being imported.
The hooks' mechanics are tested in-process on a module of our own.
"""

import importlib
import os
import re
import sys
import textwrap

import pytest

from helpers import run_python
from split_vae import importhooks, quiet

HEAVY = ("keras", "tensorflow", "jax", "torch", "matplotlib", "sklearn", "scipy", "h5py")
# A native log record as TensorFlow's C++ writes it, or absl's preamble.
NATIVE_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]|WARNING: All log)",
                         re.M)
UNSET_LEVEL = {"TF_CPP_MIN_LOG_LEVEL": None}


def test_a_plain_import_loads_no_framework_and_prints_nothing():
    code = ("import sys, split_vae; print(sorted({m.split('.')[0] for m in sys.modules} & "
            f"{set(HEAVY)!r}))")
    proc = run_python(["-c", code], env=UNSET_LEVEL, check=True, timeout=120)
    assert proc.stdout.strip() == "[]"
    assert proc.stderr == ""


def test_tensorflow_imported_later_is_quiet_unless_the_level_says_otherwise():
    # Through our model (Keras imports TensorFlow) and then the user's own
    # `import tensorflow` and first op (where "failed call to cuInit" comes).
    code = ("import split_vae; split_vae.SplitVAE; import tensorflow as tf; tf.constant(1);"
            " import sys; print(sys.modules['keras'].saving.get_registered_object("
            "'split_vae>SplitVAE').__name__)")
    quiet_run = run_python(["-c", code], env=UNSET_LEVEL, check=True, timeout=300)
    assert quiet_run.stdout.strip() == "SplitVAE"
    assert not NATIVE_LINE.search(quiet_run.stderr), quiet_run.stderr
    # Level 0 shows every line: TensorFlow's start-up records come through.
    loud = run_python(["-c", "import split_vae, tensorflow"],
                      env={"TF_CPP_MIN_LOG_LEVEL": "0"}, check=True, timeout=300)
    assert NATIVE_LINE.search(loud.stderr), loud.stderr


@pytest.mark.parametrize("first", ["split_vae.distribute", "split_vae.cli.train"])
def test_keras_imported_by_one_of_our_modules_registers_once_that_module_is_done(first):
    # split_vae.distribute imports Keras at its top, and the model imports
    # distribute: registering in the middle of distribute's import would meet
    # it half-initialised (it did, as a warning, under `train`). -W error turns
    # any warning into a failure; the command's own path imports distribute
    # inside a function.
    code = (f"import importlib, sys, split_vae; importlib.import_module({first!r});"
            " import split_vae.distribute, keras;"
            " print(keras.saving.get_registered_object('split_vae>SplitVAE').__name__)")
    proc = run_python(["-W", "error", "-c", code], check=True, timeout=300)
    assert proc.stdout.strip() == "SplitVAE"
    assert "could not register" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_never_import_tensorflow(backend):
    code = textwrap.dedent("""
        import sys, split_vae
        model = split_vae.SplitVAE.from_pretrained("digits")
        parts = model.generate(2, seed=0)
        model(parts["x_hat"])
        print(sorted(parts), "tensorflow" in sys.modules)
    """)
    proc = run_python(["-c", code], env={"KERAS_BACKEND": backend}, check=True, timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == "['sigma', 'x1', 'x2', 'x_hat', 'z'] False"


# ---------------------------------------------------------------------------
# The mechanics, on a module of our own (no framework involved)
# ---------------------------------------------------------------------------
@pytest.fixture
def noisy_module(tmp_path, monkeypatch):
    """A top-level module `svae_noisy` that writes a native-looking INFO record
    and a plain line to file descriptor 2 while it is imported."""
    (tmp_path / "svae_noisy.py").write_text(
        "import os\n"
        "os.write(2, b'I0000 00:00:1795622058.268016   11596 port.cc:153] start-up noise\\n')\n"
        "os.write(2, b'a line of its own\\n')\n"
        "LOADER = __loader__\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("svae_noisy", None)
    finder = importhooks._Finder()
    sys.meta_path.insert(0, finder)
    yield finder
    sys.meta_path.remove(finder)
    sys.modules.pop("svae_noisy", None)


def test_the_first_import_runs_inside_the_filter_and_then_calls_after(noisy_module, capfd):
    calls = []
    noisy_module.around["svae_noisy"] = lambda: quiet.filtered_native_stderr(1)
    noisy_module.after["svae_noisy"] = lambda module: calls.append(module.__name__)
    module = importlib.import_module("svae_noisy")
    err = capfd.readouterr().err
    assert "a line of its own" in err and "start-up noise" not in err
    assert calls == ["svae_noisy"]          # after its execution, once
    # The module sees its own loader, not our wrapper.
    assert type(module.LOADER).__name__ == "SourceFileLoader"
    assert type(module.__spec__.loader).__name__ == "SourceFileLoader"
    assert noisy_module.around == {} and noisy_module.after == {}
    sys.modules.pop("svae_noisy")
    importlib.import_module("svae_noisy")   # a second import: no hook any more
    assert calls == ["svae_noisy"]
    assert "start-up noise" in capfd.readouterr().err


def test_without_a_hook_the_module_imports_as_usual(noisy_module, capfd):
    noisy_module.after["some_other_module"] = lambda module: None
    importlib.import_module("svae_noisy")
    assert "start-up noise" in capfd.readouterr().err
    assert noisy_module.after == {"some_other_module": noisy_module.after["some_other_module"]}


def test_a_nested_filter_adds_no_second_process(monkeypatch):
    started = []
    real_popen = quiet.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(args)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(quiet.subprocess, "Popen", popen)
    with quiet.filtered_native_stderr(3):
        with quiet.filtered_native_stderr(3):
            os.write(2, b"")
    assert len(started) == 1
    with quiet.filtered_native_stderr(0):   # level 0: no filter at all
        pass
    assert len(started) == 1


def test_keras_already_imported_registers_at_once(monkeypatch):
    # This process has Keras loaded (helpers imports it): install() imports
    # the model right away instead of waiting for an import that has happened.
    calls = []
    monkeypatch.setattr(importhooks, "_register_model", lambda: calls.append(1))
    monkeypatch.delitem(sys.modules, "split_vae.model")
    importhooks.install()
    assert calls == [1]
