"""Latent statistics, "mix", one evaluation of a model, the evaluate command and the
model resolver it uses, FIDHistory."""

import json
import os
import re
import warnings

import keras
import numpy as np
import pytest

from helpers import small_extractor
from split_vae import SplitVAE, data, loader
from split_vae.cli import main
from split_vae.evaluation import FIDHistory, evaluate_model, latent_statistics, mix_images
from split_vae.metrics import (FeatureExtractor, feature_statistics, frechet_distance,
                               kernel_inception_distance)


def fd(ext, a, b):
    return frechet_distance(*feature_statistics(ext.features(a, progress=False)),
                            *feature_statistics(ext.features(b, progress=False)))


@pytest.fixture(scope="module")
def model():
    return SplitVAE.from_preset("digits", seed=0)


@pytest.fixture(scope="module")
def digits():
    return (data.load("digits", "test", as_numpy=True, limit=24),
            data.load("digits", "train", as_numpy=True, limit=24))


# ---------------------------------------------------------------------------
# Latent statistics
# ---------------------------------------------------------------------------
def test_latent_statistics_counts_and_variance_law():
    rng = np.random.default_rng(0)
    n = 4000
    # var(z_mean): 1, 0.5, 0.01, 0.001; mean exp(z_log_var): 0.01, 0.5, 0.99, 0.97
    z_mean = rng.standard_normal((n, 4)) * np.sqrt([1.0, 0.5, 0.01, 0.001])
    z_log_var = np.tile(np.log([0.01, 0.5, 0.99, 0.97]), (n, 1))
    s = latent_statistics(z_mean, z_log_var)
    assert s["latent_dim"] == 4
    assert s["inactive_by_variance"] == 2 and s["active_by_variance"] == 2
    assert s["inactive_by_posterior_variance"] == 2
    np.testing.assert_allclose(s["var_z_mean"], z_mean.var(0), rtol=1e-12)
    np.testing.assert_allclose(s["mean_exp_z_log_var"], [0.01, 0.5, 0.99, 0.97], rtol=1e-9)
    np.testing.assert_allclose(s["variance_law"], np.array(s["var_z_mean"]) + [0.01, 0.5,
                                                                              0.99, 0.97])
    assert abs(s["variance_law_mean"] - 1.0) < 0.05  # this toy obeys the law
    json.dumps(s)  # JSON-able
    with pytest.raises(ValueError, match="shape"):
        latent_statistics(z_mean, z_log_var[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        latent_statistics(np.full((3, 2), np.nan), np.zeros((3, 2)))


@pytest.mark.parametrize("n", [6, 7])
def test_mix_takes_x1_first_half_x2_second(n):
    x1 = np.arange(n, dtype="float32")[:, None, None, None] + np.zeros((1, 2, 2, 1), "float32")
    x2 = -x1 - 100
    m = mix_images(x1, x2)
    half = n // 2
    assert m.shape == x1.shape
    np.testing.assert_array_equal(m[:half], x1[:half])
    np.testing.assert_array_equal(m[half:], x2[half:])
    with pytest.raises(ValueError, match="same shape"):
        mix_images(x1, x2[:-1])


# ---------------------------------------------------------------------------
# evaluate_model
# ---------------------------------------------------------------------------
def test_evaluate_model_split(model, digits, tmp_path):
    test, train = digits
    ext = small_extractor()
    report, samples = evaluate_model(model, test, train, extractor=ext, n_samples=20,
                                     gmm_components=3, seed=0, cache_dir=str(tmp_path))
    fid = report["fd"]
    for source in ("gen", "gmm"):
        assert set(fid[source]) == {"x_hat", "x1", "x2", "mix"}
        parts = samples[source]
        assert parts["x_hat"].shape == (20,) + model.image_shape
        # every number is the distance of those very images to the reference
        for k in ("x_hat", "x1", "x2"):
            assert fid[source][k] == pytest.approx(fd(ext, parts[k], test), rel=1e-6)
        # mix from the features of x1 and x2 = mix of the images, measured anew
        assert fid[source]["mix"] == pytest.approx(
            fd(ext, mix_images(parts["x1"], parts["x2"]), test), rel=1e-6)
        assert fid[source]["mix"] != pytest.approx(fid[source]["x1"], rel=1e-6)
    assert fid["real"] == pytest.approx(fd(ext, test, train), rel=1e-6)
    rec = model.reconstruct(test)["x_hat"]
    assert fid["reconstruction"] == pytest.approx(fd(ext, rec, test), rel=1e-6)
    # A kernel distance beside every Fréchet distance, on the same features.
    kid = report["kd"]
    for source in ("gen", "gmm"):
        assert set(kid[source]) == {"x_hat", "x1", "x2", "mix"}
        expected = kernel_inception_distance(ext.features(samples[source]["x1"]),
                                             ext.features(test), seed=0)
        assert (kid[source]["x1"]["mean"], kid[source]["x1"]["sd"]) == pytest.approx(expected)
    assert kid["real"]["mean"] == pytest.approx(kernel_inception_distance(
        ext.features(train), ext.features(test), seed=0)[0])
    assert report["protocol"]["kd"]["subset_size"] == 20
    assert report["protocol"]["kd"]["subsets"] == 100
    assert report["model"]["parameters"] == model.count_params()
    assert report["protocol"]["gmm"]["components"] == 3
    assert report["protocol"]["n_samples"] == 20
    assert "not" in report["note"] and "pytorch-fid" in report["note"]
    assert report["latent"]["latent_dim"] == model.latent_dim
    # GMM draws come from the mixture fitted on z_mean: same seed, same z
    again, samples2 = evaluate_model(model, test, train, extractor=ext, n_samples=20,
                                     gmm_components=3, seed=0, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(samples["gmm"]["z"], samples2["gmm"]["z"])
    assert again["fd"] == fid
    json.dumps(report)


def test_evaluate_model_follows_the_papers_protocol(model, digits):
    # Each protocol choice recomputed here with sklearn and numpy directly:
    # GEN from default_rng(seed), the GMM fitted on z_mean of the reference
    # (test) images, the reconstruction error of x_hat from z_mean.
    from sklearn.mixture import GaussianMixture

    from split_vae.sampling import sample_gmm

    test, train = digits
    n, k, seed = 16, 2, 5
    report, samples = evaluate_model(model, test, train, extractor=small_extractor(),
                                     n_samples=n, gmm_components=k, seed=seed,
                                     use_cache=False)
    np.testing.assert_array_equal(
        samples["gen"]["z"],
        np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype("float32"))
    z_test = keras.ops.convert_to_numpy(model.latent(model.encoder(test))[2])
    ref = GaussianMixture(k, covariance_type="full", max_iter=200,
                          random_state=seed).fit(z_test.astype("float64"))
    gmm = samples["gmm"]["gmm"]
    np.testing.assert_allclose(gmm.means_, ref.means_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gmm.covariances_, ref.covariances_, rtol=1e-3, atol=1e-7)
    z_train = keras.ops.convert_to_numpy(model.latent(model.encoder(train))[2])
    other = GaussianMixture(k, covariance_type="full", max_iter=200,
                            random_state=seed).fit(z_train.astype("float64"))
    assert not np.allclose(other.means_, ref.means_, rtol=1e-4, atol=1e-6)  # it can tell
    np.testing.assert_allclose(samples["gmm"]["z"], sample_gmm(ref, n, seed=seed),
                               rtol=1e-4, atol=1e-5)
    x_hat = keras.ops.convert_to_numpy(model(test)).astype("float64")
    assert report["reconstruction_mse"] == pytest.approx(np.mean((x_hat - test) ** 2),
                                                         rel=1e-5)
    var = z_test.astype("float64").var(axis=0)
    np.testing.assert_allclose(report["latent"]["var_z_mean"], var, rtol=1e-4)
    assert report["latent"]["inactive_by_variance"] == int((var < 0.05).sum())
    assert report["protocol"]["gmm"]["fitted_on"] == "z_mean of the reference images"


def test_progress_bar_ends_full_and_the_report_says_what_was_used(model, digits,
                                                                  monkeypatch):
    # The step bar ends at its total (it ended one short), the report records
    # the mixture's own max_iter, and the table prints the report's thresholds.
    from functools import partial

    from split_vae import evaluation, sampling

    test, train = digits
    ends = []

    class Bar(evaluation.tqdm):
        def close(self):
            ends.append((self.n, self.total))
            super().close()

    monkeypatch.setattr(evaluation, "tqdm", Bar)
    monkeypatch.setattr(sampling, "fit_gmm", partial(sampling.fit_gmm, max_iter=3))
    for train_set in (train, None):
        ends.clear()
        with warnings.catch_warnings():  # 3 EM iterations may not converge
            warnings.simplefilter("ignore")
            report, _ = evaluate_model(model, test, train_set, extractor=small_extractor(),
                                       n_samples=8, gmm_components=2, use_cache=False)
        assert ends and set(ends) == {(7 if train_set is not None else 6,) * 2}
    assert report["protocol"]["gmm"]["max_iter"] == 3
    z = np.random.default_rng(0).normal(size=(10, 4))
    report["latent"] = latent_statistics(z, np.zeros_like(z), var_threshold=0.1,
                                         sigma2_threshold=0.9)
    table = evaluation.format_report(report)
    assert "(var z_mean < 0.1)" in table and "(mean exp(z_log_var) > 0.9)" in table


def test_evaluate_model_vanilla_reports_x_hat_only(digits, tmp_path):
    test, _ = digits
    vanilla = SplitVAE(SplitVAE.from_preset("digits").config.replace(split=False), seed=0)
    report, samples = evaluate_model(vanilla, test, None, extractor=small_extractor(),
                                     n_samples=10, gmm_components=2, use_cache=False)
    assert set(report["fd"]["gen"]) == {"x_hat"} and set(report["fd"]["gmm"]) == {"x_hat"}
    assert "real" not in report["fd"] and report["model"]["split"] is False


def test_evaluate_model_rejects_wrong_images(model):
    with pytest.raises(ValueError, match="shape"):
        evaluate_model(model, np.zeros((4, 32, 32, 1), "float32"), extractor=small_extractor())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate_model(model, np.full((4, 16, 16, 1), 3.0, "float32"),
                       extractor=small_extractor())


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------
@pytest.fixture()
def extractor_file(tmp_path):
    path = str(tmp_path / "small.keras")
    small_extractor().model.save(path)
    return path


def run_evaluate(tmp_path, *extra, model="digits", out="out"):
    out = str(tmp_path / out)
    rc = main(["evaluate", "--model", model, "--dataset", "digits", "--out", out,
               "--cache-dir", str(tmp_path / "cache"), "--grid", "4", *extra])
    return rc, out


def test_evaluate_command_with_custom_extractor(tmp_path, extractor_file, capsys):
    with pytest.warns(UserWarning, match="UNTRAINED"):
        rc, out = run_evaluate(tmp_path, "--samples", "16", "--gmm-components", "2",
                               "--extractor", extractor_file)
    assert rc == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert set(report["fd"]["gen"]) == {"x_hat", "x1", "x2", "mix"}
    assert set(report["fd"]["gmm"]) == {"x_hat", "x1", "x2", "mix"}
    assert all(np.isfinite(v) and v >= 0 for s in ("gen", "gmm")
               for v in report["fd"][s].values())
    assert report["protocol"]["dataset"] == "digits"
    assert report["protocol"]["n_reference"] == 16
    assert report["protocol"]["extractor"] == "small.keras"
    assert report["model"]["parameters"] == SplitVAE.from_preset("digits").count_params()
    for png in ("generated.png", "samples_gen.png", "samples_gmm.png", "sigma.png"):
        assert os.path.getsize(os.path.join(out, png)) > 1000
    printed = capsys.readouterr().out
    # Named by what they are: Fréchet and kernel distances in small.keras, never
    # "FID"; the note on comparability printed once.
    assert printed.splitlines()[0].startswith("FD in small.keras")
    assert re.search(r"^\s+FD GEN ", printed, re.M) and re.search(r"^\s+KD GEN ", printed, re.M)
    assert not re.search(r"^\s*(FID|KID)\b", printed, re.M)
    assert printed.count(report["note"]) == 1 and "not comparable" in printed
    assert report["metric_protocol"] == "FD in small.keras"
    assert report["kid_name"] == "KD in small.keras"
    # reference statistics: test and train entries cached, and reused
    cache = tmp_path / "cache"
    assert len(os.listdir(cache)) == 2
    with pytest.warns(UserWarning, match="UNTRAINED"):
        rc, out2 = run_evaluate(tmp_path, "--samples", "16", "--gmm-components", "2",
                                "--extractor", extractor_file, out="out2")
    with open(os.path.join(out2, "report.json")) as f:
        assert json.load(f)["fd"] == report["fd"]
    assert len(os.listdir(cache)) == 2


def test_evaluate_command_reads_keras_model_file(tmp_path, extractor_file, model):
    path = str(tmp_path / "m.keras")
    model.save(path)
    rc, out = run_evaluate(tmp_path, "--samples", "12", "--gmm-components", "2",
                           "--extractor", extractor_file, model=path)
    assert rc == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["model"]["source"].startswith("Keras file")
    # the loaded model's numbers equal the in-memory model's
    test = data.load("digits", "test", as_numpy=True, limit=12)
    direct, _ = evaluate_model(model, test, data.load("digits", "train", as_numpy=True,
                                                      limit=12),
                               extractor=FeatureExtractor(keras.saving.load_model(
                                   extractor_file), name="small.keras"),
                               n_samples=12, gmm_components=2, use_cache=False)
    for k in ("x_hat", "x1", "x2", "mix"):
        assert report["fd"]["gen"][k] == pytest.approx(direct["fd"]["gen"][k], rel=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--extractor", "vgg"], "unknown extractor"),
    (["--samples", "1"], "at least 2"),
    (["--gmm-components", "0"], "positive"),
])
def test_evaluate_command_bad_arguments(tmp_path, capsys, args, message):
    rc, _ = run_evaluate(tmp_path, *args)
    assert rc == 2
    assert message in capsys.readouterr().err


def resolve(spec):
    """What `evaluate --model spec` reads."""
    return loader.for_evaluation(SplitVAE, spec)


def test_model_resolver_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read a model"):
        resolve("no_such_preset")
    with pytest.raises(FileNotFoundError):
        resolve(str(tmp_path / "missing.keras"))
    with pytest.raises(FileNotFoundError):
        resolve(str(tmp_path / "missing.hdf5"))
    not_a_vae = str(tmp_path / "ext.keras")
    small_extractor().model.save(not_a_vae)
    with pytest.raises(ValueError, match="not a SplitVAE"):
        resolve(not_a_vae)


@pytest.mark.slow
def test_evaluate_command_with_untrained_inception(tmp_path):
    # The real InceptionV3 pipeline (299x299, 2048 features) without the
    # ImageNet weights: 8 images per set keep it to a few dozen seconds.
    with pytest.warns(UserWarning):
        rc, out = run_evaluate(tmp_path, "--samples", "8", "--gmm-components", "2",
                               "--extractor", "inception-random", "--batch-size", "8")
    assert rc == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["protocol"]["feature_dim"] == 2048
    assert report["protocol"]["preprocessing"]["resize"] == [299, 299]
    assert report["protocol"]["preprocessing"]["value_range"] == [-1.0, 1.0]
    assert report["protocol"]["extractor"] == "inception-random"
    assert set(report["fd"]["gmm"]) == {"x_hat", "x1", "x2", "mix"}
    assert all(np.isfinite(v) for v in report["fd"]["gen"].values())
    assert report["metric_protocol"] == "FD in an untrained network"
    # The untrained network is the same in every run: the same numbers, and
    # the reference entries of the first run found again (no new files).
    with pytest.warns(UserWarning):
        rc, out2 = run_evaluate(tmp_path, "--samples", "8", "--gmm-components", "2",
                                "--extractor", "inception-random", "--batch-size", "8",
                                out="out2")
    with open(os.path.join(out2, "report.json")) as f:
        again = json.load(f)
    assert again["fd"] == report["fd"] and again["kd"] == report["kd"]
    assert len(os.listdir(tmp_path / "cache")) == 2


# ---------------------------------------------------------------------------
# FIDHistory
# ---------------------------------------------------------------------------
def test_fid_history_callback(tmp_path, digits, caplog, capsys):
    test, train = digits
    model = SplitVAE.from_preset("digits", seed=0)
    model.compile()
    ext = small_extractor()
    plot = str(tmp_path / "fid.png")
    cb = FIDHistory(test, every=2, extractor=ext, n_samples=16, plot_path=plot,
                    use_cache=False, verbose=1)
    with caplog.at_level("INFO", logger="split_vae.evaluation"):
        model.fit(train, epochs=4, batch_size=12, callbacks=[cb], verbose=0)
    assert cb.history["epoch"] == [2, 4]
    # verbose logs each measurement (the library prints nothing itself)
    logged = [r.getMessage() for r in caplog.records if r.name == "split_vae.evaluation"]
    assert sum("Fréchet distance (small)" in m for m in logged) == 2, logged
    assert "Fréchet" not in capsys.readouterr().out
    for k in ("x_hat", "x1", "x2"):
        assert len(cb.history[k]) == 2
    # the last value is the distance of the final model's fixed-seed samples
    parts = model.generate(16, seed=0)
    assert cb.history["x1"][-1] == pytest.approx(fd(ext, parts["x1"], test), rel=1e-5)
    assert os.path.getsize(plot) > 1000
    with pytest.raises(ValueError, match="every"):
        FIDHistory(test, every=0, extractor=ext)


def test_model_resolver_reads_every_saved_form(tmp_path, monkeypatch, model):
    from keras2_original import write_checkpoint

    x = data.load("digits", "test", as_numpy=True, limit=4)
    expected = model.reconstruct(x)["x_hat"]
    # A preset directory, even one named like a built-in preset.
    monkeypatch.chdir(tmp_path)
    model.save_to_preset("digits")
    loaded, desc = resolve("digits")
    assert "preset directory" in desc
    np.testing.assert_allclose(loaded.reconstruct(x)["x_hat"], expected, atol=1e-6)
    # from_pretrained, which refuses the untrained built-in, reads it too.
    np.testing.assert_allclose(SplitVAE.from_pretrained("digits").reconstruct(x)["x_hat"],
                               expected, atol=1e-6)
    # A .keras file.
    model.save("m.keras")
    loaded, _ = resolve("m.keras")
    np.testing.assert_allclose(loaded.reconstruct(x)["x_hat"], expected, atol=1e-6)
    # The authors' Keras 2 format.
    c = model.config
    write_checkpoint(tmp_path / "orig.hdf5", image_shape=c.image_shape,
                     latent_dim=c.latent_dim, base_dim=c.base_dim, emb_dim=c.emb_dim,
                     kernel_size=c.kernel_size, num_scale=c.num_scale,
                     block_per_scale=c.block_per_scale,
                     depth_per_block=c.depth_per_block)
    loaded, desc = resolve("orig.hdf5")
    assert "legacy" in desc and loaded.config.latent_dim == c.latent_dim
