"""`python -m split_vae train` end to end on a tiny configuration."""

import csv
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--preset", "digits", "--limit", "96", "--batch-size", "32", "--samples", "4",
        "--set", "base_dim=8", "--set", "emb_dim=16", "--set", "latent_dim=4"]


def cli(*args, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "split_vae", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def history_rows(out):
    with open(os.path.join(out, "history.csv")) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_train_writes_everything_and_resumes(tmp_path):
    import keras

    import split_vae  # noqa: F401  (registers SplitVAE for load_model)

    out = str(tmp_path / "run")
    cli("train", *TINY, "--epochs", "1", "--out", out)
    for name in ("checkpoint.keras", "checkpoint.keras.json", "model.keras", "history.csv",
                 "history.json",
                 "config.json", "generated.png", "reconstructed.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "generated.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.load(open(os.path.join(out, "config.json")))["base_dim"] == 8
    assert len(history_rows(out)) == 1
    first = keras.saving.load_model(os.path.join(out, "checkpoint.keras"))
    gamma1 = float(first.gamma.numpy())
    assert gamma1 < 1.0  # the balance ran

    proc = cli("train", *TINY, "--epochs", "2", "--out", out)
    assert "resuming" in proc.stdout and "after epoch 1" in proc.stdout
    rows = history_rows(out)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    hist = json.load(open(os.path.join(out, "history.json")))
    assert [r["epoch"] for r in hist] == [0, 1]
    assert float(rows[1]["gamma"]) == pytest.approx(hist[1]["gamma"])
    second = keras.saving.load_model(os.path.join(out, "checkpoint.keras"))
    assert float(second.gamma.numpy()) <= gamma1
    assert int(second.optimizer.iterations.numpy()) == 2 * 3

    # A checkpoint of another configuration is not silently reused.
    proc = cli("train", *TINY, "--set", "base_dim=16", "--epochs", "3", "--out", out,
               check=False)
    assert proc.returncode == 2 and "another configuration" in proc.stderr


def test_vanilla_run_draws_the_x_hat_row_only(tmp_path):
    out = str(tmp_path / "v")
    cli("train", *TINY, "--vanilla", "--epochs", "1", "--out", out)
    assert json.load(open(os.path.join(out, "config.json")))["split"] is False
    assert os.path.getsize(os.path.join(out, "generated.png")) > 0


def test_help_documents_every_option():
    text = cli("train", "--help").stdout
    for flag in ("--preset", "--dataset", "--data-dir", "--out", "--epochs", "--batch-size",
                 "--learning-rate", "--beta", "--latent-dim", "--vanilla", "--set", "--limit",
                 "--seed", "--no-resume", "--no-balance", "--samples", "--verbose"):
        assert flag in text, flag
    assert "train" in cli("--help").stdout


@pytest.mark.parametrize("args, message", [
    (["--set", "nonsense=3"], "FIELD=VALUE"),
    (["--set", "num_scale=9"], "num_scale"),
    (["--preset", "digits", "--epochs", "0"], "epochs"),
])
def test_bad_options_give_a_clear_error(tmp_path, args, message):
    proc = cli("train", "--out", str(tmp_path / "x"), *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
