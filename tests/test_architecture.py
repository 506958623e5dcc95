"""The architecture table (docs/architecture.md) is the code's: every module is listed, each
imports only what its row allows, and no import cycle exists. Plus the promise
the lazy package face keeps to users: Keras knows the model however the two
are imported (the command line's --help loading no framework is in
test_cli.py; the import's silence in test_import.py)."""

import ast
import os
import re

import pytest
from helpers import ROOT, run_python, tiny_model


PACKAGE = os.path.join(ROOT, "split_vae")


def package_modules() -> dict:
    """Dotted name inside split_vae ('' for the package itself) -> file path."""
    out = {}
    for directory, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(directory, f), PACKAGE)[:-3]
                name = rel.replace(os.sep, ".")
                if name == "__init__" or name.endswith(".__init__"):
                    name = name[:-len("__init__")].rstrip(".")
                out[name] = os.path.join(directory, f)
    return out


def _imported(name, path, node, modules) -> set:
    """The split_vae modules one import statement (anywhere in a file) loads."""
    if isinstance(node, ast.Import):
        return {a.name[len("split_vae."):] for a in node.names
                if a.name.startswith("split_vae.")}
    if node.level == 0:
        if not (node.module or "").startswith("split_vae"):
            return set()
        base = node.module.split(".")[1:]
    else:
        parts = name.split(".") if name else []
        package = parts if path.endswith("__init__.py") else parts[:-1]
        base = package[:len(package) - (node.level - 1)]
        if node.module:
            base = base + node.module.split(".")
    found = set()
    for alias in node.names:  # a submodule (`from . import x`), else a name of base
        candidate = ".".join(base + [alias.name])
        found.add(candidate if candidate in modules else ".".join(base))
    return found


def import_graph() -> dict:
    modules = package_modules()
    graph = {}
    for name, path in modules.items():
        with open(path, encoding="utf8") as f:
            tree = ast.parse(f.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _imported(name, path, node, modules)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


TABLE = os.path.join(ROOT, "docs", "architecture.md")


def architecture_table(path=TABLE) -> dict:
    """module -> the modules its row allows, from the table of docs/architecture.md."""
    with open(path, encoding="utf8") as f:
        text = f.read()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([\w.]+)` \|.*\| ([^|]*)\|$", line)
        if m:
            name = "" if m[1] == "split_vae" else m[1]
            assert name not in rows, f"{m[1]} is listed twice"
            rows[name] = set(re.findall(r"`([\w.]+)`", m[2]))
    assert rows, f"no module table in {path}"
    return rows


def test_the_table_lists_every_module_and_no_other():
    listed, actual = set(architecture_table()), set(package_modules())
    assert not actual - listed, f"modules missing from {TABLE}: {sorted(actual - listed)}"
    assert not listed - actual, f"rows of no module in {TABLE}: {sorted(listed - actual)}"


def test_each_module_imports_only_what_its_row_allows():
    table = architecture_table()
    wrong = {m or "split_vae": sorted(deps - table[m]) for m, deps in import_graph().items()
             if deps - table.get(m, set())}
    assert not wrong, f"imports the table of {TABLE} does not allow: {wrong}"


def test_no_import_cycle():
    graph = import_graph()
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycle = trail[trail.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(m or "split_vae"
                                                                     for m in cycle))
            if dep not in state:
                visit(dep, trail + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_graph_reader_sees_imports_inside_functions(tmp_path):
    # The checks above are only as good as the reader: a relative import in a
    # function of a sub-package module must be found.
    tree = ast.parse("def f():\n    from ..model import SplitVAE\n    from . import cache\n")
    modules = {"model": "", "data.cache": "", "data.idx": ""}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found |= _imported("data.idx", "split_vae/data/idx.py", node, modules)
    assert found == {"model", "data.cache"}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("registration") / "m.keras"
    tiny_model().save(path)
    return path


LOAD = "import keras, split_vae; m = keras.saving.load_model({path!r}); print(type(m).__name__)"


def test_a_plain_import_registers_the_model_with_keras(saved_model):
    proc = run_python(["-c", LOAD.format(path=str(saved_model))], check=True)
    assert proc.stdout.strip() == "SplitVAE"


def test_split_vae_imported_before_keras_registers_when_keras_comes(saved_model):
    # `import split_vae` loads no Keras; the model is registered when the
    # user's `import keras` runs (importhooks).
    code = LOAD.replace("import keras, split_vae;", "import split_vae, keras;")
    proc = run_python(["-c", code.format(path=str(saved_model))], check=True)
    assert proc.stdout.strip() == "SplitVAE"


def test_python_m_of_another_package_that_imports_ours_still_registers(saved_model, tmp_path):
    package = tmp_path / "otherpkg"
    package.mkdir()
    (package / "__init__.py").write_text("import split_vae  # early, at import\n")
    (package / "__main__.py").write_text(LOAD.format(path=str(saved_model)) + "\n")
    proc = run_python(["-m", "otherpkg"], env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
                      check=True)
    assert proc.stdout.strip() == "SplitVAE"


def code_lines(node) -> int:
    """Lines of a class or function, without the docstrings inside it."""
    docstrings = 0
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = sub.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docstrings += first.end_lineno - first.lineno + 1
    return node.end_lineno - node.lineno + 1 - docstrings


def too_long(limits: dict) -> list:
    found = []
    for name, path in package_modules().items():
        with open(path, encoding="utf8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            kind = "class" if isinstance(node, ast.ClassDef) else "function" if isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if kind and code_lines(node) > limits[kind]:
                found.append(f"{name or 'split_vae'}.{node.name} ({code_lines(node)} lines)")
    return found


def test_no_class_over_300_lines_and_no_function_over_80():
    assert not too_long({"class": 300, "function": 80})


def test_the_length_check_sees_long_code():
    # The limits just under the longest class and function must catch them.
    longest = {"class": 0, "function": 0}
    for path in package_modules().values():
        with open(path, encoding="utf8") as f:
            for node in ast.walk(ast.parse(f.read())):
                if isinstance(node, ast.ClassDef):
                    longest["class"] = max(longest["class"], code_lines(node))
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    longest["function"] = max(longest["function"], code_lines(node))
    assert too_long({"class": longest["class"] - 1, "function": 10 ** 6})
    assert too_long({"class": 10 ** 6, "function": longest["function"] - 1})
    assert not too_long(longest)
