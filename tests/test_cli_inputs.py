"""Every command checks the files and directories its arguments name right
after parsing: a wrong path is named (the argument and the path) with the
usage-error status, before Keras or TensorFlow is imported and before
anything is written."""

import json
import os

import pytest

from helpers import run_python
from split_vae.cli.inputs import check_extractor_path, check_model_spec, looks_like_path

MISSING = "/nonexistent_i23"

# (argv, the argument the error must name, the missing path it must name)
CASES = [
    (["evaluate", "--model", "/nonexistent.keras", "--out", "{out}/evaluate"], "--model",
     "/nonexistent.keras"),
    (["evaluate", "--model", "digits", "--data-dir", MISSING, "--out", "{out}/evaluate2"],
     "--data-dir", MISSING),
    (["evaluate", "--model", "digits", "--extractor", MISSING + "/ext.keras",
      "--out", "{out}/evaluate3"], "--extractor", MISSING + "/ext.keras"),
    (["evaluate", "--model", "digits", "--extractor", "inception.pth",
      "--out", "{out}/evaluate4"], "--extractor", "inception.pth"),
    (["generate", "--model", MISSING + "/run", "--n", "4", "--out", "{out}/generate"],
     "--model", MISSING + "/run"),
    (["generate", "--model", "digits", "--n", "4", "--source", "gmm", "--data-dir", MISSING,
      "--out", "{out}/generate2"], "--data-dir", MISSING),
    (["explore", "--model", "model.hdf5", "--traverse", "all", "--out", "{out}/walk.png"],
     "--model", "model.hdf5"),
    (["explore", "--model", "digits", "--interpolate", "0,1", "--data-dir", MISSING,
      "--out", "{out}/walk2.png"], "--data-dir", MISSING),
    (["train", "--data-dir", MISSING, "--out", "{out}/train"], "--data-dir", MISSING),
    (["convert-legacy", MISSING + ".hdf5", "{out}/converted"], "IN.hdf5", MISSING + ".hdf5"),
    (["reproduce", "--dataset", "digits", "--scale", "smoke", "--data-dir", MISSING,
      "--out", "{out}/reproduce"], "--data-dir", MISSING),
    (["reproduce", "--dataset", "digits", "--scale", "smoke", "--extractor",
      MISSING + ".weights.h5", "--out", "{out}/reproduce2"], "--extractor",
     MISSING + ".weights.h5"),
]

# One fresh process runs every case through main(), in-process, and reports
# each exit status and whether TensorFlow or Keras had been imported by then.
# Named like the console script, so the package face stays lazy as it does on
# the command line (a plain `python -c` imports the model at once).
SCRIPT = """\
import json, sys
from split_vae.cli.main import main
results = []
for argv in json.loads(sys.argv[1]):
    rc = main(argv)
    results.append({"rc": rc, "tensorflow": "tensorflow" in sys.modules,
                    "keras": "keras" in sys.modules})
print(json.dumps(results))
"""


def test_missing_paths_are_named_before_any_framework_import(tmp_path):
    script = tmp_path / "split-vae"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    argvs = [[a.format(out=out) for a in argv] for argv, _, _ in CASES]
    proc = run_python([script, json.dumps(argvs)], timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(results) == len(errors) == len(CASES), proc.stderr[-3000:]
    for (argv, flag, path), result, error in zip(CASES, results, errors):
        assert result == {"rc": 2, "tensorflow": False, "keras": False}, (argv, result)
        assert error.startswith(f"error: {flag} {path}:"), (argv, error)
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing written: no --out directory created


def test_evaluate_with_a_missing_model_names_it_at_once(tmp_path):
    # The command line, as a user types it.
    out = tmp_path / "X"
    proc = run_python(["-X", "importtime", "-m", "split_vae", "evaluate", "--model",
                       "/nonexistent.keras", "--out", out], timeout=120)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors and "--model /nonexistent.keras: no such file" in errors[0]
    assert "InceptionV3" not in proc.stderr
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:")}
    assert "split_vae.cli.main" in loaded
    assert not sorted(m for m in loaded if m.split(".")[0] in ("keras", "tensorflow"))
    assert not out.exists()


@pytest.mark.parametrize("spec, is_path", [
    ("digits", False), ("mnist", False), ("celeba_split_two", False),
    ("runs/digits", True), ("./digits", True), ("~/m", True), ("m.keras", True),
    ("m.h5", True), ("m.hdf5", True), ("m.kera", False),
])
def test_what_can_only_be_a_path(spec, is_path):
    assert looks_like_path(spec, (".keras", ".h5", ".hdf5")) is is_path


def test_names_and_existing_paths_pass_the_model_check(tmp_path, monkeypatch):
    from split_vae.config import PRESETS
    from split_vae.presets import REGISTRY

    # Every built-in and published name passes (the loader resolves them):
    # none of them looks like a path.
    for name in [*PRESETS, *REGISTRY]:
        check_model_spec(name)
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path)
    check_model_spec("m.keras")
    check_model_spec("run/")
    check_model_spec("no_such_name")  # a name: the loader lists the names it knows
    with pytest.raises(FileNotFoundError, match=r"--model other\.keras: no such file"):
        check_model_spec("other.keras")


def test_extractor_names_pass_and_its_files_must_exist(tmp_path):
    for name in ("auto", "inception", "inception-random", "random-conv", "fid-inception",
                 "fd-fmnist"):
        check_extractor_path(name)
    path = tmp_path / "ext.keras"
    with pytest.raises(FileNotFoundError, match="no such file"):
        check_extractor_path(str(path))
    path.mkdir()
    with pytest.raises(FileNotFoundError, match="not a file"):
        check_extractor_path(str(path))
    os.rmdir(path)
    path.write_bytes(b"")
    check_extractor_path(str(path))
