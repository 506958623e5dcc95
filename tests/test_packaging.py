"""The README's install line, `pip install -e .`, gives an installed package:
its dependencies are requirements.txt, and code outside the clone imports it."""

import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def requirement_lines(path) -> list[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_dependencies_are_requirements_txt():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert "dependencies" in project["project"]["dynamic"]
    assert "dependencies" not in project["project"]  # else setuptools ignores the file
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {
        "file": ["requirements.txt"]}
    reqs = requirement_lines(os.path.join(ROOT, "requirements.txt"))
    assert reqs and not any(r.startswith("-") for r in reqs), \
        "setuptools reads plain requirements only, no -r/-e lines"
    assert {"keras", "tensorflow"} <= {re.split(r"[<>=!~ ;\[]", r)[0] for r in reqs}


def test_the_readme_lines_install_the_package():
    with open(os.path.join(ROOT, "README.md"), encoding="utf8") as f:
        text = f.read()
    first = re.search(r"^pip install .*split_vae train.*$", text, re.M)
    tests = re.search(r"^pip install -r requirements-test.txt.*pytest.*$", text, re.M)
    assert first and tests, "the README's two commands are missing"
    for line in (first[0], tests[0]):
        assert re.search(r"(^|\s)-e \.(\s|$)", line), line


def test_an_editable_install_imports_from_another_directory(tmp_path):
    # The README's `pip install -e .`, minus the dependencies (this
    # interpreter's, through --system-site-packages): a few seconds.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    isolation = []
    try:  # build offline with this interpreter's setuptools when it has one
        import setuptools  # noqa: F401
        isolation = ["--no-build-isolation"]
    except ImportError:
        pass
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                           *isolation, "-e", ROOT], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = ("import importlib.metadata as m, split_vae, split_vae.data, split_vae.metrics;"
            " print(split_vae.__file__); print(split_vae.__version__);"
            " print(m.version('split_vae')); print(sorted(m.requires('split_vae')))")
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    path, version, installed, requires = out.stdout.strip().splitlines()[-4:]
    assert os.path.samefile(path, os.path.join(ROOT, "split_vae", "__init__.py"))
    assert version == installed
    assert requires == str(sorted(requirement_lines(os.path.join(ROOT, "requirements.txt"))))
    script = subprocess.run([str(venv / "bin" / "split-vae"), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert script.returncode == 0 and "train" in script.stdout, script.stderr[-3000:]
