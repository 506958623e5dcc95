"""`python -m split_vae train` end to end on a tiny configuration."""

import csv
import json
import os
import re
import signal

import numpy as np
import pytest

from helpers import TINY_TRAIN_FLAGS as TINY, run_cli, run_python

# TensorFlow's C++ start-up lines that no command may show.
NOISE = ("oneDNN custom operations", "Could not find cuda drivers", "failed call to cuInit",
         "absl::InitializeLog()", "cpu_feature_guard", "rebuild TensorFlow")


def cli(*args, check=True):
    """`python -m split_vae ARGS` in a process of its own, as a user runs it.

    TF_CPP_MIN_LOG_LEVEL is removed from its environment: keeping TensorFlow
    quiet is the command line's job, and every run checks it did.
    """
    proc = run_cli(*args, env={"TF_CPP_MIN_LOG_LEVEL": None}, check=check, timeout=600)
    noise = [line for line in proc.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noise, noise
    return proc


def history_rows(out):
    with open(os.path.join(out, "history.csv")) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_train_writes_everything_and_resumes(tmp_path):
    import keras

    import split_vae.model  # noqa: F401  (registers SplitVAE for load_model)

    out = str(tmp_path / "run")
    cli("train", *TINY, "--epochs", "1", "--out", out)
    for name in ("checkpoint.keras", "model.keras", "history.csv", "history.json",
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
    assert "[split_vae] resuming" in proc.stderr and "after epoch 1" in proc.stderr
    assert "[split_vae] wrote" in proc.stderr                # our messages pass the filter
    rows = history_rows(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]     # as Keras prints "Epoch 1/2"
    hist = json.load(open(os.path.join(out, "history.json")))
    assert [r["epoch"] for r in hist] == [1, 2]
    assert float(rows[1]["gamma"]) == pytest.approx(hist[1]["gamma"])
    second = keras.saving.load_model(os.path.join(out, "checkpoint.keras"))
    assert float(second.gamma.numpy()) <= gamma1
    assert int(second.optimizer.iterations.numpy()) == 2 * 3

    # A checkpoint of another configuration is not silently reused.
    proc = cli("train", *TINY, "--set", "base_dim=16", "--epochs", "3", "--out", out,
               check=False)
    assert proc.returncode == 2 and "another configuration" in proc.stderr

    # A truncated newest checkpoint is named, and the run resumes from the one
    # before it (epoch 1): the state of checkpoint.prev.keras.
    ckpt = os.path.join(out, "checkpoint.keras")
    with open(ckpt, "r+b") as f:
        f.truncate(4000)
    proc = cli("train", *TINY, "--epochs", "2", "--out", out)
    assert f"{ckpt} is damaged (BadZipFile" in proc.stderr
    assert "checkpoint.prev.keras, after epoch 1" in proc.stderr
    assert int(load(out, "checkpoint.keras").optimizer.iterations.numpy()) == 2 * 3

    # The evaluate command is as quiet (cli() checks stderr), with a small extractor.
    extractor = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                                  keras.layers.GlobalAveragePooling2D()])
    extractor.save(str(tmp_path / "small.keras"))
    proc = cli("evaluate", "--model", os.path.join(out, "model.keras"), "--samples", "8",
               "--gmm-components", "2", "--grid", "2", "--no-cache",
               "--extractor", str(tmp_path / "small.keras"), "--out", str(tmp_path / "ev"))
    # A network of the user's is no Inception: its numbers are an "FD", never an "FID".
    assert "FD GEN" in proc.stdout and not re.search(r"^\s*FID ", proc.stdout, re.M)
    assert "[split_vae] evaluating" in proc.stderr


def run_train(out, *args, base=TINY):
    """`python -m split_vae train` in this process (the entry point is tested above)."""
    from split_vae.cli import main

    return main(["train", *base, *args, "--verbose", "0", "--out", str(out)])


@pytest.fixture()
def figures(monkeypatch):
    """Records what each figure of the train command is asked to draw."""
    import split_vae.plotting

    calls = []
    real = split_vae.plotting.plot_split_grid

    def record(parts, path=None, n=10, inputs=None, title=None):
        calls.append({"parts": parts, "inputs": inputs, "n": n,
                      "name": os.path.basename(path)})
        return real(parts, path, n=n, inputs=inputs, title=title)

    monkeypatch.setattr(split_vae.plotting, "plot_split_grid", record)
    return calls


def load(out, name="model.keras"):
    import keras

    import split_vae.model  # noqa: F401  (registers SplitVAE for load_model)

    return keras.saving.load_model(os.path.join(out, name))


def test_vanilla_run_draws_the_x_hat_row_only(tmp_path, figures):
    from split_vae import data

    out = tmp_path / "v"
    assert run_train(out, "--vanilla", "--epochs", "1", "--seed", "3") == 0
    assert json.load(open(out / "config.json"))["split"] is False
    model = load(out)
    assert model.decoder.output.shape[-1] == 1
    gen, rec = figures
    assert gen["name"] == "generated.png" and set(gen["parts"]) == {"x_hat", "z"}
    # generated from the prior with the run's seed; the test images on top
    np.testing.assert_array_equal(
        gen["parts"]["z"], np.random.default_rng(3).standard_normal((4, 4)).astype("float32"))
    test = data.load("digits", "test", as_numpy=True, limit=4)
    assert rec["name"] == "reconstructed.png"
    np.testing.assert_array_equal(rec["inputs"], test)
    np.testing.assert_allclose(rec["parts"]["x_hat"], model.reconstruct(test)["x_hat"],
                               atol=1e-6)
    assert os.path.getsize(out / "generated.png") > 0


def test_balance_resume_and_no_resume_have_their_effect(tmp_path):
    out = tmp_path / "b"
    assert run_train(out, "--epochs", "1") == 0
    first = load(out, "checkpoint.keras")
    assert float(first.gamma.numpy()) < 1.0                    # the balance ran
    assert run_train(out, "--epochs", "2") == 0                # resumes after epoch 1
    second = load(out, "checkpoint.keras")
    assert int(second.optimizer.iterations.numpy()) == 6
    assert [r["epoch"] for r in history_rows(out)] == ["1", "2"]
    assert float(second.gamma.numpy()) <= float(first.gamma.numpy())
    assert run_train(out, "--epochs", "1", "--no-resume", "--no-balance") == 0
    fresh = load(out, "checkpoint.keras")
    assert int(fresh.optimizer.iterations.numpy()) == 3        # started afresh
    assert float(fresh.gamma.numpy()) == 1.0                   # gamma left alone
    rows = history_rows(out)
    assert [r["epoch"] for r in rows] == ["1"] and float(rows[0]["gamma"]) == 1.0


def test_seed_fixes_the_initial_weights(tmp_path):
    # A learning rate of 1e-9 leaves the weights where the seed put them: Adam
    # turns the round-off of CPU threads in near-zero gradients into steps of
    # the learning rate's size, so trained weights of two same-seed runs can
    # differ by a few learning rates (5e-3 seen at 1e-3).
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert run_train(tmp_path / name, "--epochs", "1", "--seed", str(seed),
                         "--learning-rate", "1e-9") == 0
    a, b, c = (load(tmp_path / n) for n in "abc")
    # Trainable weights only: BatchNorm's moving statistics still move with the
    # batches (same-seed runs 4e-4 apart seen; not investigated here).
    def init(m):
        return [keras_value(w) for w in m.trainable_weights]

    for w1, w2 in zip(init(a), init(b)):
        np.testing.assert_allclose(w1, w2, rtol=1e-5, atol=1e-6)
    assert max(np.abs(w1 - w2).max() for w1, w2 in zip(init(a), init(c))) > 0.05


def test_beta_learning_rate_and_latent_dim_reach_the_model(tmp_path):
    base = [a for a in TINY if a != "latent_dim=4"]
    base = base[:-1] if base[-1] == "--set" else base
    out = tmp_path / "o"
    assert run_train(out, "--epochs", "1", "--beta", "2.5", "--learning-rate", "0.003",
                     "--latent-dim", "3", base=base) == 0
    model = load(out)
    assert model.config.beta == 2.5 and model.latent_dim == 3
    assert model.latent.get_layer("z_mean").kernel.shape[-1] == 3
    assert float(keras_value(model.optimizer.learning_rate)) == pytest.approx(0.003)
    row = history_rows(out)[0]
    assert float(row["kl_weight"]) == pytest.approx(2.5 * float(row["gamma"]), rel=1e-5)


def keras_value(v):
    import keras

    return keras.ops.convert_to_numpy(v)


def test_help_documents_every_option(capsys):
    from split_vae.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--dataset", "--data-dir", "--out", "--epochs", "--batch-size",
                 "--learning-rate", "--beta", "--latent-dim", "--vanilla", "--set", "--limit",
                 "--seed", "--no-resume", "--no-balance", "--samples", "--verbose"):
        assert flag in text, flag


def test_entry_point_lists_every_command():
    # The real `python -m split_vae` entry point, once, in a process of its own.
    proc = cli("--help")
    for command in ("train", "evaluate", "convert-legacy", "generate", "explore"):
        assert command in proc.stdout, command
    assert proc.stderr == ""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["evaluate", "--help"],
                                  ["convert-legacy", "--help"], ["explore", "--help"],
                                  ["generate", "--help"]])
def test_parsing_and_help_import_no_framework(argv):
    # --help must answer at once: nothing heavy is imported to build the parser
    # (python -X importtime lists every module the process imports).
    proc = run_python(["-X", "importtime", "-m", "split_vae", *argv],
                      env={"TF_CPP_MIN_LOG_LEVEL": None}, check=True, timeout=60)
    assert proc.stdout.startswith("usage: python -m split_vae")
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:")}
    assert "split_vae.cli.main" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in
                   ("keras", "tensorflow", "jax", "torch", "matplotlib"))
    assert not heavy, heavy


def test_the_console_script_parses_before_loading_a_framework(tmp_path):
    # What pip writes for `split-vae` (pyproject's [project.scripts]): the
    # package face must stay lazy there too, as under `python -m split_vae`.
    script = tmp_path / "split-vae"
    script.write_text("import sys\nfrom split_vae.cli import main\nsys.exit(main())\n")
    proc = run_python(["-X", "importtime", script, "train", "--help"],
                      env={"TF_CPP_MIN_LOG_LEVEL": None}, check=True, timeout=60)
    assert "--preset" in proc.stdout
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:")}
    assert "split_vae.cli.main" in loaded
    assert not sorted(m for m in loaded if m.split(".")[0] in ("keras", "tensorflow"))


@pytest.mark.parametrize("line, level, hidden", [
    ("WARNING: All log messages before absl::InitializeLog() is called are written to "
     "STDERR", 3, True),
    ("I0000 00:00:1795622058.268016   11596 port.cc:153] oneDNN custom operations are on.",
     1, True),
    ("I0000 00:00:1795622058.268388   11596 cudart_stub.cc:31] Could not find cuda drivers",
     3, True),
    ("E0000 00:00:1795622062.730940   11596 cuda_platform.cc:52] failed call to cuInit: "
     "INTERNAL", 3, True),
    ("E0000 00:00:1795622062.730940   11596 cuda_platform.cc:52] failed call to cuInit", 2,
     False),                                                 # level 2 keeps errors
    ("W1125 16:00:01.123456   11596 some_op.cc:12] a warning", 2, True),
    ("W1125 16:00:01.123456   11596 some_op.cc:12] a warning", 1, False),
    ("I0000 00:00:1795622058.268016   11596 port.cc:153] oneDNN custom operations", 0,
     False),                                                 # TF_CPP_MIN_LOG_LEVEL=0: all
    ("F0000 00:00:1795622058.268016   11596 x.cc:1] a fatal error", 3, False),
    ("[split_vae] resuming from run/checkpoint.keras after epoch 1", 3, False),
    ("I0000 is not a log record", 3, False),
])
def test_native_log_filter_hides_what_the_level_hides(line, level, hidden):
    from split_vae.quiet import is_hidden

    assert is_hidden(line.encode(), level) is hidden


@pytest.mark.parametrize("death", ["os.abort()", "os.kill(os.getpid(), signal.SIGKILL)"])
def test_a_native_crash_keeps_its_last_stderr_lines(tmp_path, death):
    # A command whose native code logs a start-up line, then its last words,
    # and dies at once: the filter hides the first and passes the second on.
    script = tmp_path / "split-vae"        # as the console script: the face stays lazy
    script.write_text(
        "import os, signal, sys\n"
        "from split_vae.cli import console_main, train\n"
        "def crash(args):\n"
        "    os.write(2, b'I0000 00:00:1795622058.268016   11596 port.cc:153] start-up\\n')\n"
        "    os.write(2, b'F0000 00:00:1795622058.268016   11596 op.cc:7] the last words\\n')\n"
        f"    {death}\n"
        "train.run = crash\n"
        "sys.exit(console_main())\n")
    proc = run_python([script, "train"], env={"TF_CPP_MIN_LOG_LEVEL": None}, timeout=60)
    assert proc.returncode in (-signal.SIGABRT, -signal.SIGKILL), proc.stderr
    assert "op.cc:7] the last words" in proc.stderr
    assert "start-up" not in proc.stderr


def test_the_user_log_level_is_kept(monkeypatch):
    from split_vae.quiet import set_log_level

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert set_log_level() == 3 and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert set_log_level() == 0 and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


@pytest.mark.slow
@pytest.mark.parametrize("command, option", [("evaluate", "--extractor"),
                                             ("convert-legacy", "--overwrite")])
def test_each_command_through_the_entry_point(command, option):
    # train goes through the entry point in test_train_writes_everything_and_resumes.
    proc = cli(command, "--help")
    assert option in proc.stdout and proc.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["--set", "nonsense=3"], "FIELD=VALUE"),
    (["--set", "num_scale=9"], "num_scale"),
    (["--preset", "digits", "--epochs", "0"], "epochs"),
])
def test_bad_options_give_a_clear_error(tmp_path, capsys, args, message):
    from split_vae.cli import main

    assert main(["train", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_version_flag_prints_the_package_version():
    from split_vae.version import __version__

    proc = run_python(["-m", "split_vae", "--version"], check=True, timeout=60)
    assert proc.stdout.strip() == f"split_vae {__version__}"
