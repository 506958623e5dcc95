"""Every notebook runs end to end (smoke mode), and matches its generator."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = ["fashion_mnist", "mnist", "cifar10", "celeba"]
# Datasets that tensorflow-datasets would download: the test mocks them.
TFDS = {"mnist", "cifar10", "celeba"}

MOCK_CELL = (
    "import tensorflow_datasets as tfds\n"
    "_mock = tfds.testing.mock_data(num_examples=160)\n"
    "_mock.__enter__()  # tfds returns random images of the real shapes: no download")


def test_notebooks_are_what_the_generator_writes():
    import sys

    import nbformat

    sys.path.insert(0, NB_DIR)
    import make_notebooks

    for name, spec in make_notebooks.DATASETS.items():
        on_disk = nbformat.read(os.path.join(NB_DIR, f"{name}.ipynb"), as_version=4)
        fresh = make_notebooks.build(name, spec)
        assert [c.source for c in on_disk.cells] == [c.source for c in fresh.cells], name
    assert sorted(make_notebooks.DATASETS) == sorted(NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.fashion_mnist)
                                  if n == "fashion_mnist" else n for n in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(name, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(os.path.join(NB_DIR, f"{name}.ipynb"), as_version=4)
    if name in TFDS:
        nb.cells.insert(0, nbformat.v4.new_code_cell(MOCK_CELL))
    monkeypatch.setenv("SPLIT_VAE_NOTEBOOK_MODE", "smoke")
    monkeypatch.setenv("SPLIT_VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SPLIT_VAE_OFFLINE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "parameters" in outputs  # the model cell printed its count
    assert "x_hat" in outputs and "GMM" in outputs  # the report was printed
    assert os.path.isfile(tmp_path / "runs" / f"{name}_smoke" / "preset" / "config.json")


def test_committed_outputs_hold_no_progress_redraws_nor_tqdm_warning():
    import sys

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    sys.path.insert(0, NB_DIR)
    import make_notebooks

    for name in NOTEBOOKS:
        nb = nbformat.read(os.path.join(NB_DIR, f"{name}.ipynb"), as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                text = out.get("text", "")
                assert "IProgress not found" not in text, name
                assert not (out.get("name") == "stderr" and text.startswith("\r")), name
    # the cleaner: warning and redraws dropped, adjacent streams joined, the rest kept
    cell = new_code_cell("x", outputs=[
        new_output("stream", name="stderr", text="tqdm/auto.py: TqdmWarning: IProgress not found."),
        new_output("stream", name="stdout", text="Epoch 1/2\n"),
        new_output("stream", name="stdout", text="loss: 3\n"),
        new_output("stream", name="stderr", text="\revaluation:  11%|█  | 1/9"),
        new_output("stream", name="stderr", text="warning: kept\n"),
        new_output("display_data", data={"text/plain": "figure"})])
    cleaned = make_notebooks.clean_outputs(new_notebook(cells=[cell])).cells[0].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in cleaned] == [
        ("stream", "stdout", "Epoch 1/2\nloss: 3\n"), ("stream", "stderr", "warning: kept\n"),
        ("display_data", None, None)]
