"""The generate command and split_vae.export: PNG folders and .npz, as evaluate draws."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from helpers import small_extractor
from split_vae import SplitVAE, data
from split_vae.cli import main
from split_vae.evaluation import evaluate_model, mix_images
from split_vae.export import draw_samples, parse_parts, write_samples

PARTS = "x_hat,x1,x2,sigma,mix"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = SplitVAE.from_preset("digits", seed=0)
    path = str(tmp_path_factory.mktemp("generate") / "digits.keras")
    model.save(path)
    return model, path


def _png(path):
    return np.asarray(Image.open(path))


def _pixels(x):
    # Independent of the code under test: x * 255 rounded half to even, clipped.
    return np.clip(np.round(np.asarray(x, np.float64) * 255), 0, 255).astype(np.uint8)


def test_prior_samples_are_generates_draw_as_png_and_npz(model_file, tmp_path, capsys):
    model, path = model_file
    out = tmp_path / "out"
    assert main(["generate", "--model", path, "--n", "5", "--source", "prior",
                 "--parts", PARTS, "--out", str(out), "--seed", "3"]) == 0
    expected = model.generate(5, seed=3)
    expected["mix"] = mix_images(expected["x1"], expected["x2"])
    with np.load(out / "samples.npz") as f:
        arrays = dict(f)
    assert sorted(arrays) == sorted(PARTS.split(",") + ["z"])
    np.testing.assert_array_equal(arrays["z"], expected["z"])
    for part in PARTS.split(","):
        folder = out / part
        assert sorted(os.listdir(folder)) == [f"{i:05d}.png" for i in range(5)]
        np.testing.assert_allclose(arrays[part], expected[part], atol=1e-6)
        for i in range(5):
            png = _png(folder / f"{i:05d}.png")
            assert png.dtype == np.uint8 and png.shape == model.image_shape[:2]
            np.testing.assert_array_equal(png, _pixels(expected[part][i])[..., 0])
    printed = capsys.readouterr().out
    assert f"x_hat: {out / 'x_hat'} (5 PNG files)" in printed


def test_gmm_samples_are_what_evaluate_draws(model_file, tmp_path):
    model, path = model_file
    out = tmp_path / "gmm"
    assert main(["generate", "--model", path, "--n", "12", "--source", "gmm",
                 "--parts", "x_hat,mix", "--gmm-components", "4", "--out", str(out),
                 "--seed", "4"]) == 0
    test = data.load("digits", "test", as_numpy=True, limit=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, samples = evaluate_model(model, test, None, extractor=small_extractor(),
                                    n_samples=12, gmm_components=4, seed=4, use_cache=False)
    with np.load(out / "samples.npz") as f:
        np.testing.assert_array_equal(f["z"], samples["gmm"]["z"])
        np.testing.assert_allclose(f["x_hat"], samples["gmm"]["x_hat"], atol=1e-6)
        np.testing.assert_allclose(
            f["mix"], mix_images(samples["gmm"]["x1"], samples["gmm"]["x2"]), atol=1e-6)
    # Another seed, another draw.
    other = draw_samples(model, 12, "gmm", seed=5, test_images=test, gmm_components=4)
    assert not np.array_equal(other["z"], samples["gmm"]["z"])


def test_rgb_samples_are_rgb_png(tmp_path):
    images = np.random.default_rng(0).random((3, 8, 8, 3)).astype("float32")
    write_samples({"x_hat": images}, ["x_hat"], str(tmp_path), progress=False)
    png = _png(tmp_path / "x_hat" / "00002.png")
    assert png.shape == (8, 8, 3)
    np.testing.assert_array_equal(png, _pixels(images[2]))


def test_existing_samples_are_kept_unless_overwrite(tmp_path):
    first = np.zeros((3, 4, 4, 1), "float32")
    write_samples({"x_hat": first}, "x_hat", str(tmp_path), progress=False)
    second = np.ones((2, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match="already holds 3 PNG files.*--overwrite"):
        write_samples({"x_hat": second}, "x_hat", str(tmp_path), progress=False)
    assert sorted(os.listdir(tmp_path / "x_hat")) == ["00000.png", "00001.png", "00002.png"]
    write_samples({"x_hat": second}, "x_hat", str(tmp_path), overwrite=True, progress=False)
    assert sorted(os.listdir(tmp_path / "x_hat")) == ["00000.png", "00001.png"]
    assert _png(tmp_path / "x_hat" / "00001.png").max() == 255


@pytest.mark.parametrize("text", ["", "x_hat,z", "x_hat,x_hat", "image"])
def test_parts_are_checked(text):
    with pytest.raises(ValueError, match="parts must be distinct names from "
                                         "x_hat,x1,x2,sigma,mix"):
        parse_parts(text)


def test_vanilla_model_has_no_split_parts(tmp_path):
    with pytest.raises(ValueError, match="the samples have no x1 .*x_hat only"):
        write_samples({"x_hat": np.zeros((2, 4, 4, 1))}, "x_hat,x1", str(tmp_path),
                      progress=False)
    assert not os.path.exists(tmp_path / "x_hat")


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n must be a positive integer, received 0"),
    (["--n", "2", "--parts", "x_hat,depth"], "parts must be distinct names"),
    (["--n", "2", "--gmm-components", "0"], "--gmm-components must be a positive integer"),
])
def test_generate_command_errors(tmp_path, capsys, args, message, model_file):
    rc = main(["generate", "--model", model_file[1], "--out", str(tmp_path / "o"), *args])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")
