"""`split_vae.reproduce` in the fast tier: the plan, the tables, progress and
resumption bookkeeping, the per-GPU workers, and one tiny training resumed
after an interruption. The whole pipeline end to end: test_reproduce_smoke.py."""

import statistics
import sys
import types

import numpy as np
import pytest

from helpers import tiny_config, tiny_images
from split_vae.cli.main import main as cli_main
from split_vae.cli import reproduce as cli_reproduce
from split_vae.reproduce import pipeline, runner
from split_vae.reproduce.plan import LEARNING_RATES, Plan, make_plan
from split_vae.reproduce.table import format_table, history_means, tabulate


# ---------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------
def test_the_paper_scale_is_the_presets_with_the_authors_code_learning_rate():
    plan = make_plan("mnist")
    assert plan.config.learning_rate == 1e-4 and plan.learning_rate_source == "code"
    assert plan.config.beta == 8.0 and plan.config.epochs == 300
    assert plan.gmm == (20, 100) and plan.config.gmm_components == 20   # Table 1
    assert plan.runs == 5 and plan.eval_images == 10_000 and plan.extractor == "inception"
    text = plan.describe()
    assert "1e-4" in text and "--learning-rate text" in text
    assert make_plan("cifar10").gmm == (100,) and make_plan("celeba").config.epochs == 160


def test_the_other_learning_rate_and_table_1s_best_row_are_one_option_each():
    text = make_plan("mnist", learning_rate="text", beta=3)
    assert text.config.learning_rate == LEARNING_RATES["text"] == 1e-3
    assert text.learning_rate_source == "text" and "1e-3" in text.describe()
    assert text.config.beta == 3.0
    custom = make_plan("mnist", learning_rate="5e-4")
    assert custom.config.learning_rate == 5e-4 and custom.learning_rate_source == "custom"
    with pytest.raises(ValueError, match="'code', 'text' or a number"):
        make_plan("mnist", learning_rate="fast")


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="svhn"), "unknown dataset"),
    (dict(dataset="cifar10", scale="smoke"), "smoke scale runs on"),
    (dict(dataset="mnist", scale="huge"), "unknown scale"),
    (dict(dataset="mnist", runs=0), "runs must be a positive integer"),
    (dict(dataset="mnist", gmm=(20, 20)), "component count twice"),
    (dict(dataset="mnist", gmm=()), "must list positive"),
    (dict(dataset="mnist", eval_images=1), "eval_images must be"),
])
def test_a_plan_that_cannot_run_is_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_plan(**kwargs)


def test_runs_are_paired_by_seed_and_shared_between_workers_without_overlap():
    plan = make_plan("digits", runs=3)
    names = [r.name for r in plan.run_list()]
    assert names == ["split_seed0", "vanilla_seed0", "split_seed1", "vanilla_seed1",
                     "split_seed2", "vanilla_seed2"]
    assert [r.split for r in plan.run_list()] == [True, False] * 3
    shares = [plan.runs_of_worker((i, 4)) for i in range(4)]
    assert sorted(r.name for s in shares for r in s) == sorted(names)
    assert [r.name for r in shares[1]] == ["vanilla_seed0", "vanilla_seed2"]
    for bad in ((4, 4), (-1, 2)):
        with pytest.raises(ValueError, match="0 <= i < n"):
            plan.runs_of_worker(bad)


# ---------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------
def _row(split, seed, base):
    parts = ("x_hat", "x1", "x2", "mix") if split else ("x_hat",)
    gen = {p: base + i for i, p in enumerate(parts)}
    gmm = {"3": {p: base - 1 - i for i, p in enumerate(parts)},
           "6": {p: base - 2 - i for i, p in enumerate(parts)}}
    return {"split": split, "seed": seed, "fd_gen": gen, "fd_gmm": gmm["3"],
            "fd_gmm_by_components": gmm, "fd_reconstruction": base / 2,
            "reconstruction_mse": base / 1000, "inactive_by_variance": seed + split,
            "inactive_by_posterior_variance": 1, "parameters": 100 + split,
            "train_seconds": 9.0,
            "split_kind": {"kind": "semantic", "high_frequency_fraction": 0.2}
            if split else None,
            "fid_history": {"epoch": [1, 2], "x_hat": [base + 5, base + 4],
                            **({"x1": [base + 3, base + 2], "x2": [base + 1, base]}
                               if split else {})},
            "metric": "FD-FMNIST", "note": "a note",
            "protocol": {"n_reference": 400, "n_samples": 400}}


def _rows():
    return {"split_seed0": _row(True, 0, 10.0), "vanilla_seed0": _row(False, 0, 13.0),
            "split_seed1": _row(True, 1, 12.0), "vanilla_seed1": _row(False, 1, 12.5)}


def test_the_table_holds_means_spreads_and_paired_differences():
    plan = make_plan("fashion_mnist", "smoke")
    result = tabulate(plan, _rows(), {"fd": 1.5, "kd": {}, "n_test": 4, "n_train": 4})
    gen = result["table"]["split"]["x_hat"]["gen"]
    assert gen["mean"] == pytest.approx(11.0)
    assert gen["std"] == pytest.approx(statistics.stdev([10.0, 12.0]))
    assert result["table"]["split"]["mix"]["gmm6"]["values"] == [10.0 - 2 - 3, 12.0 - 2 - 3]
    assert list(result["table"]["vanilla"]) == ["x_hat"]
    paired = result["split_minus_vanilla"]["x_hat GMM (3)"]
    assert paired["values"] == [(10.0 - 1) - (13.0 - 1), (12.0 - 1) - (12.5 - 1)]
    md = format_table(result)
    assert "| Split VAE x̂₁ | 12.00 ± 1.41 | 9.00 ± 1.41 | 8.00 ± 1.41 | n/a |" in md
    assert "| vanilla VAE x̂ | 12.75 ± 0.35 |" in md
    assert "| real (test vs train) | 1.50 |" in md
    assert "published no number for fashion_mnist" in md


def test_the_authors_numbers_are_a_caption_never_a_cell():
    plan = make_plan("mnist", "paper", runs=2, gmm=(3, 6))
    md = format_table(tabulate(plan, _rows()))
    cells = [line for line in md.splitlines() if line.startswith("| ")]
    assert not any("7.47" in line for line in cells)
    assert '"FID=7.47"' in md and "not stated" in md


def test_a_missing_evaluation_is_named():
    rows = _rows()
    del rows["vanilla_seed1"]
    with pytest.raises(ValueError, match="no evaluation of vanilla_seed1"):
        tabulate(make_plan("fashion_mnist", "smoke"), rows)


def test_ablation_curves_average_the_epochs_every_run_measured():
    rows = _rows()
    rows["split_seed1"]["fid_history"] = {"epoch": [2, 3], "x_hat": [7.0, 6.0],
                                         "x1": [5.0, 4.0], "x2": [3.0, 2.0]}
    means = history_means(make_plan("fashion_mnist", "smoke"), rows)
    assert means["split x_hat"]["epoch"] == [2]
    assert means["split x_hat"]["mean"] == [pytest.approx((14.0 + 7.0) / 2)]
    assert means["vanilla x_hat"]["epoch"] == [1, 2]


# ---------------------------------------------------------------------------
# Progress and resumption
# ---------------------------------------------------------------------------
def test_the_time_left_is_unknown_until_each_kind_of_work_was_timed():
    bar = pipeline.Progress(total_chunks=4, done_chunks=1, total_evals=2, done_evals=0,
                            enabled=False)
    assert bar.estimate() is None
    bar.chunk(10.0)
    assert bar.estimate() is None                  # no evaluation timed yet
    bar.evaluation(30.0)
    assert bar.estimate() == pytest.approx(2 * 10.0 + 1 * 30.0)
    bar.close()


def test_a_rerun_must_ask_for_the_same_plan_but_may_change_the_runs(tmp_path):
    path = tmp_path / "plan.json"
    plan = make_plan("digits", "smoke", runs=2)
    pipeline.check_same_plan(str(path), plan)      # nothing yet
    path.write_text(__import__("json").dumps(pipeline.plan_record(plan)))
    pipeline.check_same_plan(str(path), make_plan("digits", "smoke", runs=3))
    with pytest.raises(ValueError, match="another plan.*epochs"):
        pipeline.check_same_plan(str(path), make_plan("digits", "smoke", epochs=3))


def test_a_point_measured_before_a_kill_is_replaced_not_repeated():
    h = runner._append_history({}, 1, {"x_hat": 5.0})
    h = runner._append_history(h, 2, {"x_hat": 4.0})
    assert runner._append_history(h, 2, {"x_hat": 3.5}) == {"epoch": [1, 2],
                                                            "x_hat": [5.0, 3.5]}


def test_batches_follow_the_epoch_order_and_scale_bytes():
    order = runner.epoch_order(3, 1, 10)
    assert np.array_equal(order, runner.epoch_order(3, 1, 10))
    assert not np.array_equal(order, runner.epoch_order(3, 2, 10))
    assert sorted(order) == list(range(10))
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 20
    batches = runner.OrderedBatches(images, order, 4)
    assert len(batches) == 3 and len(batches[2]) == 2
    np.testing.assert_allclose(batches[0][:, 0, 0, 0], order[:4] * 20 / 255.0, rtol=1e-6)
    assert list(runner.chunk_bounds(10, 3)) == [0, 3, 6, 10]


def test_a_training_interrupted_after_a_chunk_resumes_to_the_same_weights(tmp_path):
    config = tiny_config(epochs=2, batch_size=8)  # 6 batches a chunk: their order shows
    images = tiny_images(96)
    measured = []

    def history(model):
        measured.append(1)
        return {"x_hat": float(len(measured))}

    ref, ref_state = runner.train_run("ref", config, 0, images, str(tmp_path / "a/ck.keras"),
                                      chunks_per_epoch=2, history=history)
    assert ref_state["chunk"] == 4 and ref_state["fid_history"]["epoch"] == [1, 2]

    class Stop(Exception):
        pass

    def stop_after_first(done, total, seconds):
        if done == 1:
            raise Stop

    path = str(tmp_path / "b/ck.keras")
    with pytest.raises(Stop):
        runner.train_run("b", config, 0, images, path, chunks_per_epoch=2,
                         on_chunk=stop_after_first)
    model, state = runner.train_run("b", config, 0, images, path, chunks_per_epoch=2)
    assert state["chunk"] == 4 and len(state["history"]) == 4
    # Not bit for bit: the resumed model's train step is a new graph, whose
    # float sums may round in another order (the study's resume, the same).
    for mine, theirs in zip(model.weights, ref.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=mine.path)


# ---------------------------------------------------------------------------
# The command line and the workers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar10", "--scale", "smoke"], "smoke scale runs on"),
    (["--dataset", "mnist", "--gmm", "20,x"], "--gmm takes comma-separated integers"),
    (["--dataset", "mnist", "--gpus", ","], "--gpus takes comma-separated GPU ids"),
])
def test_wrong_options_exit_2_before_any_work(args, message, capsys, tmp_path):
    status = cli_main(["reproduce", *args, "--out", str(tmp_path / "out")])
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_one_worker_per_gpu_each_seeing_only_its_gpu(tmp_path, monkeypatch):
    started = []

    class FakeProcess:
        def __init__(self, cmd, env, stdout, stderr):
            started.append((cmd, env["CUDA_VISIBLE_DEVICES"]))
            self.code = 3 if env["CUDA_VISIBLE_DEVICES"] == "7" else 0

        def wait(self):
            return self.code

    monkeypatch.setattr(cli_reproduce.subprocess, "Popen", FakeProcess)
    argv = ["reproduce", "--dataset", "mnist", "--gpus", "5,7", "--runs", "2"]
    status = cli_reproduce.spread(["5", "7"], str(tmp_path), argv)
    assert status == 1                                   # the worker on GPU 7 failed
    assert [gpu for _, gpu in started] == ["5", "7"]
    for i, (cmd, _) in enumerate(started):
        assert cmd[:3] == [sys.executable, "-m", "split_vae"]
        assert "--gpus" not in cmd and cmd[cmd.index("--worker") + 1] == f"{i}/2"
        assert cmd[cmd.index("--runs") + 1] == "2"
    assert cli_reproduce._argv_without_gpus(["a", "--gpus=0,1", "b"]) == ["a", "b"]


# ---------------------------------------------------------------------------
# The per-dataset extras: Table 2 and Figure 9
# ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*covariance is singular")
def test_cifar10_extras_are_computed_once_and_say_why_when_they_cannot_be(tmp_path,
                                                                          monkeypatch):
    from test_categories import write_batches

    from split_vae.reproduce import figures

    data_dir = tmp_path / "cifar-10-batches-py"
    # every category in every training batch: 5 batches x 20 images
    write_batches(data_dir, "py", n=20, labels_of=lambda name, n: np.arange(n) % 10)
    plan = make_plan("cifar10", "paper", runs=1, extractor="random-conv")
    layout = pipeline.Layout(str(tmp_path / "out"))
    test = np.random.default_rng(0).random((30, 32, 32, 3)).astype("float32")

    skipped = figures.dataset_extras(plan, layout, test, data_dir=None)
    assert "--data-dir" in skipped["categories"]["skipped"]
    assert "not computed" in skipped["categories"]["markdown"]

    extras = figures.dataset_extras(plan, layout, test, data_dir=str(data_dir))
    fid = extras["categories"]["fd"]
    assert list(fid) == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                         "horse", "ship", "truck", "mix"]
    assert set(extras["categories"]["protocol"]["n_per_category"].values()) == {20}  # 10 + mirrors
    assert "Table 2" in extras["categories"]["markdown"]
    assert (tmp_path / "out" / "figures" / "mean_image.png").stat().st_size > 1000

    def recomputed(*args, **kwargs):
        raise AssertionError("Table 2 computed a second time")

    monkeypatch.setattr(figures, "category_fid", recomputed)
    again = figures.dataset_extras(plan, layout, test, data_dir=str(data_dir))
    assert again["categories"]["fd"] == pytest.approx(fid)
    assert "categories" not in figures.dataset_extras(
        make_plan("celeba", runs=1), layout, test)
