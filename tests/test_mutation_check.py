"""tools/mutation_check.py: its mutants still find their code, and the CI subset is killed."""

import importlib.util
import os
import re
import sys

import pytest

from helpers import ROOT, run_python


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "mutation_check", os.path.join(ROOT, "tools", "mutation_check.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_applies_to_exactly_one_place_and_names_real_tests():
    # If the library changes under a mutant, this fails and names it, rather
    # than the mutation check quietly checking less.
    tool = load_tool()
    assert len(tool.MUTANTS) >= 30
    assert len({m.name for m in tool.MUTANTS}) == len(tool.MUTANTS)
    assert any(m.quick for m in tool.MUTANTS)
    for m in tool.MUTANTS:
        rel, line, new = tool.mutated_source(m)
        assert rel.startswith("split_vae") and line >= 1, m.name
        for t in m.tests:
            path, _, name = t.partition("::")
            with open(os.path.join(ROOT, path)) as f:
                source = f.read()
            if name:
                assert re.search(rf"^def {re.escape(name)}\(", source, re.M), (m.name, t)


def test_a_pattern_that_matches_nothing_or_twice_is_an_error():
    tool = load_tool()
    gone = tool.Mutant("gone", "test", r"this_code_does_not_exist\(\)", "x", ())
    with pytest.raises(tool.PatternError, match="matches nothing"):
        tool.mutated_source(gone)
    twice = tool.Mutant("twice", "test", r"\bdef __init__\(self", "x", ())
    with pytest.raises(tool.PatternError, match="places"):
        tool.mutated_source(twice)
    # docstrings and comments quote formulas: they are not code
    prose = tool.Mutant("prose", "test", r"x_hat = sigma\*x1 \+ \(1-sigma\)\*x2", "x", ())
    with pytest.raises(tool.PatternError, match="matches nothing"):
        tool.mutated_source(prose)


@pytest.mark.slow
def test_quick_mutants_are_killed():
    proc = run_python(["tools/mutation_check.py", "--quick"], timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    killed = re.search(r"mutants killed: (\d+)/(\d+)", proc.stdout)
    assert killed and killed[1] == killed[2] and int(killed[2]) >= 5, proc.stdout



def test_the_precheck_runs_the_named_tests_once_and_stops_when_one_fails(monkeypatch, capsys):
    # A broken setup (keras not installed, a test renamed) makes pytest exit
    # with an error on every mutant, which would read as "killed".
    tool = load_tool()
    runs = []

    def fake_pytest(workdir, targets, timeout, extra=()):
        runs.append(list(targets))
        assert os.path.isdir(os.path.join(workdir, "split_vae"))  # an unmutated copy
        bad = [t for t in targets if t.endswith("::broken")]
        return ("failed", bad[0], "tail") if bad else ("passed", None, "")

    monkeypatch.setattr(tool, "run_pytest", fake_pytest)
    monkeypatch.setattr(tool, "copy_repo", lambda dest: os.makedirs(os.path.join(dest, "split_vae")))
    a, b = "tests/test_a.py::one", "tests/test_b.py::two"
    tool.precheck([tool.Mutant("m1", "t", "x", "y", (a, "tests/test_a.py")),
                   tool.Mutant("m2", "t", "x", "y", (a, b)),
                   tool.Mutant("eq", "t", "x", "y", ("tests/test_c.py::broken",), equivalent="same"),
                   tool.Mutant("files", "t", "x", "y", ("tests/test_d.py",))], 300)
    assert runs == [[a, b]]  # nodes only, each once, equivalents never run
    assert "the 2 tests the mutants name pass unmutated" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"fails unmutated \(tests/test_c.py::broken\)"):
        tool.precheck([tool.Mutant("m", "t", "x", "y", (a, "tests/test_c.py::broken"))], 300)
    runs.clear()
    tool.precheck([tool.Mutant("files", "t", "x", "y", ("tests/test_d.py",))], 300)
    assert runs == []


@pytest.mark.slow
def test_the_precheck_fails_on_a_test_that_does_not_exist():
    # The real pytest: a node id it cannot find exits with status 4, no FAILED line.
    tool = load_tool()
    real = "tests/test_mutation_check.py::test_a_pattern_that_matches_nothing_or_twice_is_an_error"
    tool.precheck([tool.Mutant("ok", "test", "x", "y", (real,))], 300)
    gone = "tests/test_mutation_check.py::test_that_does_not_exist"
    with pytest.raises(SystemExit, match="precheck: a test the mutants name fails unmutated"):
        tool.precheck([tool.Mutant("bad", "test", "x", "y", (real, gone))], 300)
