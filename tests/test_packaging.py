"""The README's install line, `pip install -e .`, gives an installed package:
its dependencies are requirements.txt, and code outside the clone imports it.
CI runs the README's lines themselves in a fresh `python -m venv` (.ci/run)."""

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


def test_the_installed_package_is_this_checkout_and_imports_from_anywhere(tmp_path):
    # What the README's `pip install -e .` left in the environment running the
    # tests (a plain venv, or a system interpreter, wherever its site-packages
    # are): run from another directory with no PYTHONPATH, this interpreter
    # imports this checkout's package, whose metadata lists requirements.txt,
    # and the console script sits beside the interpreter's other scripts. The
    # build itself is what CI's fresh-venv step runs (.ci/run).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = ("import importlib.metadata as m, sysconfig, split_vae, split_vae.data,"
            " split_vae.metrics; print(split_vae.__file__); print(split_vae.__version__);"
            " print(m.version('split_vae')); print(sorted(m.requires('split_vae')));"
            " print(sysconfig.get_path('scripts'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (
        "split_vae is not installed in this environment: run the README's "
        f"`pip install -r requirements-test.txt -e .`\n{out.stderr[-3000:]}")
    path, version, installed, requires, scripts = out.stdout.strip().splitlines()[-5:]
    assert os.path.samefile(path, os.path.join(ROOT, "split_vae", "__init__.py")), (
        f"the installed split_vae is {path}, not this checkout's: run `pip install -e .` here")
    assert version == installed
    assert requires == str(sorted(requirement_lines(os.path.join(ROOT, "requirements.txt"))))
    script = subprocess.run([os.path.join(scripts, "split-vae"), "--help"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert script.returncode == 0 and "train" in script.stdout, script.stderr[-3000:]
