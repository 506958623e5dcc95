"""The one module of input checks: one rule for images and counts everywhere."""

import os

import numpy as np
import pytest

from split_vae import checks, paths


# ---------------------------------------------------------------------------
# Integers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("value, minimum, ok", [
    (1, 1, True), (np.int64(3), 1, True), (0, 0, True), (2, 2, True),
    (0, 1, False), (-1, 0, False), (1, 2, False), (True, 1, False), (1.0, 1, False),
    ("2", 1, False), (None, 1, False),
])
def test_integer(value, minimum, ok):
    if ok:
        out = checks.integer(value, "n", minimum)
        assert out == value and type(out) is int
    else:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        with pytest.raises(ValueError, match=f"n must be {what}, received {value!r}"):
            checks.integer(value, "n", minimum)


def test_valid_image_sizes_are_four_times_a_power_of_two():
    valid = {s for s in range(1, 300) if checks.is_valid_image_size(s)}
    assert valid == {4, 8, 16, 32, 64, 128, 256}


def test_image_shape_and_matching_shape():
    assert checks.image_shape([16, 16, 1]) == (16, 16, 1)
    for bad in [(16, 16), (16, 0, 1), "abc", None]:
        with pytest.raises(ValueError, match=r"image_shape must be \(H, W, C\)"):
            checks.image_shape(bad)
    checks.matching_shape((32, 32, 1), None, "x")
    checks.matching_shape((32, 32, 1), (32, 32, 1), "x")
    with pytest.raises(ValueError, match="src gives 32x32x1 images but the model expects "
                                         "64x64x3"):
        checks.matching_shape((32, 32, 1), (64, 64, 3), "src")


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------
def test_uint8_and_integer_pixels_are_scaled_by_1_over_255():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    expected = np.arange(256, dtype=np.float64).reshape(1, 16, 16, 1) / 255.0
    for dtype in (np.uint8, np.int64, np.int16):
        got = checks.images(x.astype(dtype))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match=r"integers in \[300, 300\].*0\.\.255"):
        checks.images(np.full((1, 4, 4, 1), 300, np.int32))


def test_keep_uint8_returns_the_same_memory_map(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 4, 4, 3), np.uint8))
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert checks.images(x, keep_uint8=True) is x


def test_floats_are_checked_not_changed():
    x = np.random.default_rng(0).random((3, 8, 8, 3))
    x[0, 0, 0] = 0.0  # the range is [0, 1] exactly
    got = checks.images(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x.astype(np.float32))
    for bad, match in [(1.5, r"\[0, 1\].*\[0, 1\.5\]"), (-0.25, r"\[-0\.25, 0\.9")]:
        y = x.copy()
        y[1, 2, 3, 0] = bad
        with pytest.raises(ValueError, match=match):
            checks.images(y)
    y = x.copy()
    y[2, 1, 0, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\); the first at index "
                                         r"\(2, 1, 0, 2\)"):
        checks.images(y)
    with pytest.raises(ValueError, match="numeric"):
        checks.images(np.full((1, 4, 4, 1), "a"))


@pytest.mark.parametrize("shape, match", [
    ((2, 8, 8, 4), r"4 channels .*1 \(grayscale\) or 3 \(RGB\).*x\[\.\.\., :3\]"),
    ((2, 8, 8, 2), "2 channels"),
    ((2, 8, 8), r"received an array of shape \(2, 8, 8\).*x\[\.\.\., None\]"),
    ((8, 8), r"shape \(N, H, W, C\); received an array of shape \(8, 8\)"),
    ((0, 8, 8, 1), "empty"),
])
def test_image_shapes_refused_everywhere(shape, match):
    with pytest.raises(ValueError, match=match):
        checks.images(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape, match", [
    ((2, 28, 28, 1), r"28x28, but the Split VAE needs square images of side 4 \* 2\*\*k"),
    ((2, 16, 32, 1), "16x32, but the Split VAE needs square"),
    ((2, 32, 32, 1), r"expects images of shape \(N, 16, 16, 1\); received \(2, 32, 32, 1\): "
                     "they are 32x32, not 16x16"),
    ((2, 16, 16, 3), r"they have 3 channel\(s\), not 1"),
])
def test_a_models_images_must_match_its_shape(shape, match):
    with pytest.raises(ValueError, match=match):
        checks.images(np.zeros(shape, np.float32), image_shape=(16, 16, 1))
    checks.images(np.zeros((2, 16, 16, 1), np.float32), image_shape=(16, 16, 1))


def test_an_extractor_names_itself_and_gives_its_hint():
    with pytest.raises(ValueError, match=r"the extractor 'x' expects images of shape "
                                         r"\(N, 32, 32, 1\); received \(2, 28, 28, 1\).*"
                                         "Pad them."):
        checks.images(np.zeros((2, 28, 28, 1)), image_shape=(32, 32, 1),
                      owner="the extractor 'x'", hint="Pad them.")


def test_uint8_scaling_is_logged_when_asked(caplog):
    caplog.set_level("INFO", logger="split_vae")
    checks.images(np.zeros((1, 4, 4, 1), np.uint8), "train images")
    assert caplog.text == ""
    checks.images(np.zeros((1, 4, 4, 1), np.uint8), "train images", announce_uint8=True)
    assert "train images: uint8 data scaled to [0, 1] by 1/255" in caplog.text


# ---------------------------------------------------------------------------
# The cache root
# ---------------------------------------------------------------------------
def test_one_cache_root_with_one_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLIT_VAE_CACHE_DIR", str(tmp_path / "c"))
    for kind in ("images", "fid", "weights"):
        assert paths.cache_dir(kind) == os.path.join(str(tmp_path / "c"), kind)
    monkeypatch.delenv("SPLIT_VAE_CACHE_DIR")
    home = os.path.expanduser("~")
    assert paths.cache_root() == os.path.join(home, ".cache", "split_vae")
    with pytest.raises(ValueError, match="unknown cache kind 'models'"):
        paths.cache_dir("models")


def test_a_uint8_dataset_is_scaled_by_1_over_255():
    import tensorflow as tf

    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    ds = checks.dataset(tf.data.Dataset.from_tensor_slices(np.repeat(x, 4, 0)).batch(2),
                        (16, 16, 1))
    batches = [b.numpy() for b in ds]
    assert [b.shape for b in batches] == [(2, 16, 16, 1)] * 2
    expected = np.arange(256, dtype=np.float64).reshape(16, 16, 1) / 255.0
    for b in batches:
        np.testing.assert_allclose(b, np.broadcast_to(expected, b.shape), rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match=r"images of shape \(16, 16, 1\), the model expects "
                                         r"\(8, 8, 1\)"):
        checks.dataset(tf.data.Dataset.from_tensor_slices(x).batch(1), (8, 8, 1))
