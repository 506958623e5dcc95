"""`evaluate` as the README writes it, on a machine without InceptionV3's
ImageNet weights: "auto" says so once and measures with an extractor that
exists offline, sized to the data; the report names what it measured ("fd",
"kd", the extractor's choice) and old reports ("fid", "kid") still read."""

import json
import logging
import os

import keras
import pytest

from helpers import small_extractor
from split_vae.cli import main
from split_vae.evaluation import default_samples, format_report, normalise_report, read_report
from split_vae.metrics import extractors

DIGITS_TEST_IMAGES = 359  # the digits test split (README, docs/data.md)


@pytest.fixture()
def offline(tmp_path, monkeypatch):
    """No InceptionV3 weights in Keras's cache; records any download attempt
    (keras.utils.get_file), which "auto" must never make."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    downloads = []

    def get_file(*args, **kwargs):
        downloads.append(kwargs.get("origin", args[1] if len(args) > 1 else args))
        raise OSError("no network (test)")

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    return downloads


def fake_inception(monkeypatch, fail=False):
    """inception_extractor replaced: an extractor named "inception" (or a load error)."""
    calls = []

    def load(weights="imagenet", size=299, batch_size=50):
        calls.append(weights)
        if fail:
            raise ValueError("could not load InceptionV3's ImageNet weights") from OSError(
                "truncated file")
        return small_extractor(name="inception")

    monkeypatch.setattr(extractors, "inception_extractor", load)
    return calls


def cache_weights(tmp_path):
    models = tmp_path / "keras_home" / "models"
    models.mkdir(parents=True)
    (models / extractors.INCEPTION_WEIGHTS_FILE).write_bytes(b"weights")
    return str(models / extractors.INCEPTION_WEIGHTS_FILE)


@pytest.mark.parametrize("n_reference, expected", [
    (DIGITS_TEST_IMAGES, DIGITS_TEST_IMAGES), (9999, 9999), (10000, 10000), (10001, 10000),
    (60000, 10000)])
def test_samples_default_is_the_papers_10000_or_the_reference_set(n_reference, expected):
    assert default_samples(n_reference) == expected


@pytest.mark.parametrize("shape, expected", [
    ((32, 32, 1), "fd-fmnist"),       # MNIST, Fashion-MNIST padded as the paper pads them
    ((16, 16, 1), "random-conv"),     # digits
    ((28, 28, 1), "random-conv"),     # grayscale, but not what the classifier reads
    ((32, 32, 3), "random-conv"),     # CIFAR-10
    ((64, 64, 3), "random-conv"),     # CelebA
])
def test_the_offline_fallback_is_chosen_by_the_image_shape(offline, caplog, shape, expected):
    with caplog.at_level(logging.INFO, logger="split_vae"):
        ext = extractors.get_extractor("auto", image_shape=shape)
    assert ext.name == expected
    assert ext.choice["requested"] == "auto" and ext.choice["extractor"] == expected
    assert ext.choice["paper_protocol"] is False
    assert "not in Keras's cache" in ext.choice["reason"]
    assert extractors.INCEPTION_WEIGHTS_FILE in ext.choice["reason"]
    said = [r for r in caplog.records if r.getMessage().startswith("extractor:")]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert offline == []  # no download attempted


def test_cached_weights_give_the_papers_inception_without_network(tmp_path, offline,
                                                                  monkeypatch, caplog):
    path = cache_weights(tmp_path)
    calls = fake_inception(monkeypatch)
    with caplog.at_level(logging.INFO, logger="split_vae"):
        ext = extractors.get_extractor("auto", image_shape=(16, 16, 1))
    assert ext.name == "inception" and ext.metric_name == "FID"
    assert calls == ["imagenet"] and offline == []  # read from the cache
    assert ext.choice["paper_protocol"] is True and path in ext.choice["reason"]
    said = [r for r in caplog.records if r.getMessage().startswith("extractor:")]
    assert len(said) == 1 and said[0].levelno == logging.INFO


def test_damaged_cached_weights_fall_back_and_say_why(tmp_path, offline, monkeypatch):
    cache_weights(tmp_path)
    fake_inception(monkeypatch, fail=True)
    ext = extractors.get_extractor("auto", image_shape=(32, 32, 1))
    assert ext.name == "fd-fmnist"
    assert "could not be loaded" in ext.choice["reason"]
    assert "truncated file" in ext.choice["reason"]


def test_without_cached_weights_auto_never_downloads_them(offline, monkeypatch):
    # Not even where a download would work: "auto" must finish offline, and
    # `--extractor inception` is the way to fetch the weights (said in the reason).
    calls = fake_inception(monkeypatch)
    ext = extractors.get_extractor("auto", image_shape=(16, 16, 1))
    assert ext.name == "random-conv" and calls == [] and offline == []
    assert "--extractor inception" in ext.choice["reason"]


def test_an_explicit_extractor_records_that_it_was_named(monkeypatch):
    ext = extractors.get_extractor("random-conv")
    assert ext.choice == {"requested": "random-conv", "extractor": "random-conv",
                          "paper_protocol": False, "reason": "named by the caller"}


def test_the_readmes_evaluate_runs_offline_sized_to_the_data(tmp_path, offline, capsys):
    # The README's line on the untrained digits preset (the trained model's
    # path would differ only in --model): every default as shipped.
    out = str(tmp_path / "eval")
    with pytest.warns(UserWarning, match="UNTRAINED"):
        rc = main(["evaluate", "--model", "digits", "--out", out,
                   "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert "fid" not in report and "kid" not in report
    assert set(report["fd"]["gen"]) == {"x_hat", "x1", "x2", "mix"}
    assert report["metric"] == "FD" and report["kid_name"] == "KD in random-conv"
    proto = report["protocol"]
    assert proto["n_samples"] == proto["n_reference"] == DIGITS_TEST_IMAGES
    assert "10,000" in proto["n_samples_choice"]
    assert proto["extractor"] == "random-conv"
    assert proto["extractor_choice"]["requested"] == "auto"
    assert proto["extractor_choice"]["paper_protocol"] is False
    captured = capsys.readouterr()
    first = captured.out.splitlines()[0]
    assert first.startswith("FD in random-conv (not an FID)")
    assert "extractor chosen by 'auto': random-conv" in captured.out
    log = [line for line in captured.err.splitlines() if line.startswith("[split_vae]")]
    assert sum("extractor: random-conv" in line for line in log) == 1
    assert any(f"samples per source: {DIGITS_TEST_IMAGES}" in line for line in log)


def old_report():
    """A report as evaluate wrote it before "fd" and "kd" (hand-written)."""
    fd = {"x_hat": 31.25, "x1": 40.5, "x2": 35.0, "mix": 37.75}
    kd = {k: {"mean": 0.0123, "sd": 0.001} for k in fd}
    return {
        "note": "an old note", "fid": {"gen": fd, "gmm": dict(fd), "real": 2.5,
                                       "reconstruction": 12.0},
        "kid": {"gen": kd, "gmm": kd, "real": kd["x1"], "reconstruction": kd["x1"]},
        "metric": "FID", "metric_protocol": "FID, paper protocol (Keras InceptionV3)",
        "kid_name": "KID", "split_kind": None,
        "latent": {"latent_dim": 8, "inactive_by_variance": 1,
                   "inactive_by_posterior_variance": 2, "variance_law_mean": 0.98},
        "model": {"parameters": 1234},
        "protocol": {"extractor": "inception", "kid": {"subsets": 100, "subset_size": 1000}},
    }


def test_an_old_report_reads_and_formats(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(old_report()))
    report = read_report(str(path))
    assert "fid" not in report and "kid" not in report
    assert report["fd"]["gen"]["x1"] == 40.5 and report["fd"]["real"] == 2.5
    assert report["kd"]["gmm"]["mix"] == {"mean": 0.0123, "sd": 0.001}
    assert report["protocol"]["kd"] == {"subsets": 100, "subset_size": 1000}
    assert normalise_report(report) == report  # a current report comes back as it is
    text = format_report(old_report())
    assert text.splitlines()[0].startswith("FID, paper protocol (Keras InceptionV3); "
                                           "extractor inception; KID")
    assert "100 subsets of 1000" in text
    assert "31.25" in text and "40.50" in text and "12.00" in text
    assert "not an FID" not in text
