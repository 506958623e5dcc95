"""The trained digits model shipped in the package: from_pretrained("digits"),
offline, a local directory of that name first, in the wheel, and what
tools/build_digits_model.py measured of it."""

import fnmatch
import json
import os

import numpy as np
import pytest

from helpers import ROOT, run_cli
from split_vae import SplitVAE, data
from split_vae.loader import SHIPPED


@pytest.fixture(scope="module")
def digits():
    return SplitVAE.from_pretrained("digits")


@pytest.fixture(scope="module")
def test_images():
    return data.load("digits", "test", as_numpy=True)


def test_shipped_digits_model_is_trained(digits, test_images, monkeypatch):
    monkeypatch.setenv("SPLIT_VAE_OFFLINE", "1")
    assert SplitVAE.from_pretrained("digits").count_params() == digits.count_params()
    mse = float(np.mean((digits.reconstruct(test_images)["x_hat"] - test_images) ** 2))
    untrained = SplitVAE(digits.config, seed=0)
    untrained_mse = float(np.mean(
        (untrained.reconstruct(test_images)["x_hat"] - test_images) ** 2))
    assert mse < 0.4 * untrained_mse, (mse, untrained_mse)
    # what the build script recorded is what the weights give
    with open(os.path.join(SHIPPED["digits"], "metadata.json")) as f:
        measured = json.load(f)["source"]["measured"]
    assert mse == pytest.approx(measured["test_reconstruction_mse"], rel=1e-3)
    assert measured["parameters"] == digits.count_params()


def test_a_local_directory_named_digits_comes_first(tmp_path, monkeypatch, digits):
    other = SplitVAE(digits.config.replace(latent_dim=3), seed=1)
    monkeypatch.chdir(tmp_path)
    other.save_to_preset("digits")
    assert SplitVAE.from_pretrained("digits").latent_dim == 3
    # and the other built-in names still have no weights
    with pytest.raises(ValueError, match="without published weights"):
        SplitVAE.from_pretrained("mnist")


def test_the_wheel_carries_the_shipped_model():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["split_vae"]
    files = os.listdir(SHIPPED["digits"])
    assert sorted(files) == ["config.json", "metadata.json", "model.weights.h5"]
    for name in files:
        rel = os.path.relpath(os.path.join(SHIPPED["digits"], name),
                              os.path.join(ROOT, "split_vae"))
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel
    size = sum(os.path.getsize(os.path.join(SHIPPED["digits"], f)) for f in files)
    assert size < 400_000


@pytest.mark.slow
def test_explore_draws_the_shipped_model(tmp_path):
    walk, trav = tmp_path / "walk.png", tmp_path / "trav.png"
    proc = run_cli("explore", "--model", "digits", "--interpolate", "3,17", "--method",
                   "spherical", "--out", walk, check=True, env={"SPLIT_VAE_OFFLINE": "1"})
    assert "split kind along the path: syntactic" in proc.stdout
    proc = run_cli("explore", "--model", "digits", "--traverse", "all", "--out", trav,
                   check=True, env={"SPLIT_VAE_OFFLINE": "1"})
    # z[5] and z[7] barely move x_hat (0.03, 0.04): the figure marks them
    assert "6 active, 2 inactive of 8 traversed" in proc.stdout
    assert walk.stat().st_size > 10_000 and trav.stat().st_size > 10_000
