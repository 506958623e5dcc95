"""benchmarks/fashion_mnist_study.py and its parts (benchmarks/fmnist_study/): the
paired analysis, resumable training on the library's checkpoint, and the CI
subset of --evaluate-only recomputed from the shipped weights against the
committed numbers."""

import copy
import json
import os
import sys

import pytest

from helpers import ROOT, run_python

SCRIPT = os.path.join(ROOT, "benchmarks", "fashion_mnist_study.py")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import fmnist_study  # noqa: E402
from fmnist_study import analysis, training  # noqa: E402


def fake_row(split, seed, gen_x_hat, x1=None, x2=None, inactive=10, kind="semantic"):
    fd = {"x_hat": gen_x_hat}
    if split:
        fd.update(x1=x1, x2=x2, mix=(x1 + x2) / 2)
    row = {"split": split, "seed": seed, "fd_gen": fd, "fd_gmm": dict(fd),
           "fd_reconstruction": 1.0, "reconstruction_mse": 0.01,
           "inactive_by_variance": inactive, "inactive_by_posterior_variance": inactive,
           "parameters": 100, "train_seconds": 1.0, "gmm_components": 20}
    if split:
        row["split_kind"] = {"kind": kind, "high_frequency_fraction": 0.1}
    return row


def test_paired_analysis_verdicts():
    # split beats vanilla by 1.0 in every seed; seed-to-seed spread of the
    # values is std([10, 11, 12]) = 1.0 for both, so the mean difference
    # (-1.0) does not exceed it (strict).
    models = {}
    for s, v in zip((0, 1, 2), (10.0, 11.0, 12.0)):
        models[f"split_seed{s}"] = fake_row(True, s, v - 1.0, x1=v - 3.0, x2=v + 5.0,
                                            inactive=5, kind="semantic" if s else "syntactic")
        models[f"vanilla_seed{s}"] = fake_row(False, s, v, inactive=8)
    an = analysis.analyse(models, (0, 1, 2))
    c = an["claims"]["split x_hat beats vanilla x_hat (GEN)"]
    assert c["values"] == [-1.0, -1.0, -1.0]
    assert c["holds_every_seed"] is True
    assert c["spread"] == pytest.approx(1.0)
    assert c["exceeds_spread"] is False
    # best part (x1 = v - 3) vs the split's x_hat (v - 1): -2 in every seed,
    # beyond the spread 1.0 of the split's x_hat
    b = an["claims"]["split's better part (min of x1, x2) beats its x_hat (GEN)"]
    assert b["values"] == [-2.0, -2.0, -2.0] and b["exceeds_spread"] is True
    inactive = an["claims"]["split keeps more latent variables active (inactive by variance)"]
    assert inactive["values"] == [-3, -3, -3] and inactive["exceeds_spread"] is True
    assert an["split_kind_by_seed"] == {"0": "syntactic", "1": "semantic", "2": "semantic"}
    assert an["by_kind"]["semantic"]["seeds"] == [1, 2]
    assert an["by_kind"]["semantic"]["gen_split_x_hat"]["mean"] == pytest.approx(10.5)
    # One seed where split loses: the claim no longer holds in every seed.
    models["split_seed2"]["fd_gen"]["x_hat"] = 13.0
    an = analysis.analyse(models, (0, 1, 2))
    assert an["claims"]["split x_hat beats vanilla x_hat (GEN)"]["holds_every_seed"] is False


def test_compare_flags_numbers_beyond_the_tolerance():
    committed = {"calibration": {"real": 2.0}, "models": {"a": {"fd": 10.0, "kind": "x",
                                                                 "train_seconds": 5.0}}}
    same = copy.deepcopy(committed)
    same["models"]["a"]["fd"] = 10.0 * (1 + analysis.RTOL * 0.9)
    same["models"]["a"]["train_seconds"] = 500.0  # not compared
    assert analysis.compare(same, committed) == []
    off = copy.deepcopy(committed)
    off["models"]["a"]["fd"] = 10.0 * (1 + analysis.RTOL) + 2 * analysis.ATOL
    assert len(analysis.compare(off, committed)) == 1
    kind = copy.deepcopy(committed)
    kind["models"]["a"]["kind"] = "y"
    assert "kind" in analysis.compare(kind, committed)[0]


def test_committed_tables_are_consistent():
    # The printed table and the JSON agree; the shipped presets are small.
    for path in (fmnist_study.STUDY_JSON, fmnist_study.SUBSET_JSON):
        with open(path) as f:
            result = json.load(f)
        assert analysis.analyse(result["models"], result["seeds"]) == result["analysis"]
        assert result["classifier_test_accuracy"] > 0.9
        for name in result["models"]:
            weights = os.path.join(fmnist_study.WEIGHTS_DIR, name, "model.weights.h5")
            assert os.path.getsize(weights) < 5e6


@pytest.mark.slow
@pytest.mark.fashion_mnist
def test_evaluate_only_subset_matches_committed_numbers():
    proc = run_python([SCRIPT, "--evaluate-only", "--subset"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-2].startswith("every number matches weights/fashion_mnist/study_subset.json")
    assert lines[-1].startswith("table: FD-FMNIST study, CI subset")


def tiny_study(tmp_path, where):
    """train_one's arguments for a tiny model in tmp_path/where."""
    import numpy as np
    import split_vae

    config = split_vae.get_preset("fashion_mnist").replace(
        image_shape=(8, 8, 1), base_dim=4, emb_dim=8, latent_dim=2, num_scale=2, epochs=1,
        batch_size=10, learning_rate=1e-3, bn_momentum=0.9)
    images = np.random.default_rng(0).random((60, 8, 8, 1)).astype("float32")
    return dict(name="split_seed0", split=True, seed=0, train_images=images, config=config,
                weights_dir=str(tmp_path / where / "weights"),
                work_dir=str(tmp_path / where / "work"))


def interrupted(monkeypatch, args, after_saves, during=False):
    """Run train_one until its checkpoint save number `after_saves` has
    completed (or, with during=True, is killed halfway through writing), then
    stop it as a kill would."""
    from split_vae.reproduce import runner

    real, calls = runner.save_checkpoint, []

    def save_then_stop(model, path, state):
        calls.append(state["chunk"])
        if during and len(calls) == after_saves:
            def half_written(tmp):
                with open(tmp, "wb") as f:
                    f.write(b"PK\x03\x04 half a zip")
                raise KeyboardInterrupt
            monkeypatch.setattr(model, "save", half_written)
        real(model, path, state)
        if len(calls) == after_saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        training.train_one(**args)
    monkeypatch.undo()
    return calls


def assert_same_preset(a, b):
    import numpy as np
    from split_vae import SplitVAE

    ma, mb = SplitVAE.from_preset(a), SplitVAE.from_preset(b)
    for wa, wb in zip(ma.weights, mb.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=wa.path)


def test_train_resumes_where_it_stopped_and_skips_finished(tmp_path, monkeypatch, capsys,
                                                           caplog):
    caplog.set_level("INFO", logger="split_vae")
    straight = tiny_study(tmp_path, "a")
    training.train_one(**straight)
    resumed = tiny_study(tmp_path, "b")
    interrupted(monkeypatch, resumed, after_saves=1)  # stopped after the first of 3 chunks
    assert os.listdir(os.path.join(resumed["work_dir"], "split_seed0")) == ["checkpoint.keras"]
    training.train_one(**resumed)
    assert "split_seed0: resuming after chunk 1" in caplog.text
    preset = os.path.join(resumed["weights_dir"], "split_seed0")
    assert_same_preset(os.path.join(straight["weights_dir"], "split_seed0"), preset)
    with open(os.path.join(preset, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["source"]["steps"] == 6  # 60 images, batches of 10, one epoch
    assert meta["source"]["final"]["chunk"] == 3
    # A finished model is skipped, its files untouched.
    mtime = os.path.getmtime(os.path.join(preset, "model.weights.h5"))
    training.train_one(**resumed)
    assert "finished, skipped" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(preset, "model.weights.h5")) == mtime


def test_a_kill_while_saving_resumes_on_the_previous_chunk(tmp_path, monkeypatch, capsys,
                                                          caplog):
    caplog.set_level("INFO", logger="split_vae")
    # Weights and progress are one file: killed while writing the checkpoint of
    # chunk 2, the run resumes after chunk 1 on the weights of chunk 1, and ends
    # with the weights of a run that was never stopped.
    straight = tiny_study(tmp_path, "a")
    training.train_one(**straight)
    resumed = tiny_study(tmp_path, "b")
    assert interrupted(monkeypatch, resumed, after_saves=2, during=True) == [1, 2]
    training.train_one(**resumed)
    assert "split_seed0: resuming after chunk 1" in caplog.text
    assert_same_preset(os.path.join(straight["weights_dir"], "split_seed0"),
                       os.path.join(resumed["weights_dir"], "split_seed0"))


def test_paired_models_share_the_initialisation(monkeypatch, tmp_path):
    # Same seed before building: every weight but the last convolution is equal.
    import keras
    import numpy as np
    from split_vae import SplitVAE

    nets = []
    for split in (True, False):
        keras.utils.set_random_seed(3)
        nets.append(SplitVAE(training.study_config(split), seed=3))
    wa, wb = nets[0].weights, nets[1].weights
    differ = [a.path for a, b in zip(wa, wb)
              if a.shape != b.shape or not np.array_equal(a.numpy(), b.numpy())]
    assert [p.split("/")[-2:] for p in differ] == [["dec_out", "kernel"], ["dec_out", "bias"]]
