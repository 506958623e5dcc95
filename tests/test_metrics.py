"""The Fréchet distance, the feature extractor wrapper and the statistics cache."""

import os
import sys

import keras
import numpy as np
import pytest
from scipy import linalg

from split_vae import metrics, paths
from split_vae.metrics import (FeatureExtractor, feature_statistics, frechet_distance,
                               reference_statistics, statistics_key, trace_sqrt_product)


def random_cov(rng, d, cond=10.0):
    """A well-conditioned SPD matrix with eigenvalues in [1, cond]."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(1.0, cond, d)) @ q.T


def scipy_fd(mu1, s1, mu2, s2):
    """The textbook formula with scipy's sqrtm, written independently here."""
    root = linalg.sqrtm(s1 @ s2)
    root = np.real(root)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


# ---------------------------------------------------------------------------
# The distance
# ---------------------------------------------------------------------------
def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(0)
    s = random_cov(rng, 20)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    assert frechet_distance(mu1, s, mu2, s) == pytest.approx(np.sum((mu1 - mu2) ** 2),
                                                             rel=1e-9, abs=1e-9)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 5, 30), rng.uniform(0.1, 5, 30)
    mu1, mu2 = rng.standard_normal(30), rng.standard_normal(30)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)


def test_singular_covariance_closed_form():
    # Zero variances make Cholesky fail: the eigh path must still be exact.
    a = np.array([0.0, 0.0, 2.0, 3.0, 0.5])
    b = np.array([1.0, 0.0, 4.0, 0.0, 0.5])
    mu = np.zeros(5)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu, np.diag(a), mu, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    assert trace_sqrt_product(np.diag(a), np.diag(b)) == pytest.approx(
        np.sum(np.sqrt(a * b)), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [8, 64])
def test_matches_scipy_sqrtm(seed, d):
    rng = np.random.default_rng(seed)
    s1, s2 = random_cov(rng, d), random_cov(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = scipy_fd(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    # The library's sqrtm formula against a route that shares nothing with it:
    # Tr((S1 S2)^(1/2)) = sum of sqrt(eigenvalues of S1^(1/2) S2 S1^(1/2)),
    # with S1^(1/2) from numpy's eigendecomposition of S1.
    w, v = np.linalg.eigh(s1)
    h = (v * np.sqrt(w)) @ v.T
    tr_root = np.sum(np.sqrt(np.linalg.eigvalsh(h @ s2 @ h)))
    independent = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_root
    assert metrics.frechet_distance_sqrtm(mu1, s1, mu2, s2) == pytest.approx(independent,
                                                                             rel=1e-9)


@pytest.mark.parametrize("fd", [frechet_distance, metrics.frechet_distance_sqrtm])
def test_commuting_covariances_closed_form(fd):
    # S1, S2 diagonal in the same rotated basis: Tr((S1 S2)^(1/2)) = sum sqrt(a b).
    rng = np.random.default_rng(4)
    d = 16
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a, b = rng.uniform(0.2, 4, d), rng.uniform(0.2, 4, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fd(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T) == pytest.approx(expected, rel=1e-9)


def test_symmetric_and_zero_on_itself():
    rng = np.random.default_rng(3)
    f1 = rng.standard_normal((200, 10))
    f2 = rng.standard_normal((200, 10)) * 1.5 + 0.3
    m1, s1 = feature_statistics(f1)
    m2, s2 = feature_statistics(f2)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(frechet_distance(m2, s2, m1, s1),
                                                             rel=1e-9)
    assert frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(m1, s1, m2, s2) > 0.5


def test_float32_input_computed_in_float64():
    rng = np.random.default_rng(4)
    s1, s2 = random_cov(rng, 32), random_cov(rng, 32)
    mu = np.zeros(32)
    exact = frechet_distance(mu, s1, mu, s2)
    s1f, s2f = s1.astype("float32"), s2.astype("float32")
    # float32 storage, float64 arithmetic: the result is that of the rounded
    # matrices computed exactly, not a float32 computation.
    assert frechet_distance(mu, s1f, mu, s2f) == pytest.approx(
        scipy_fd(mu, s1f.astype(np.float64), mu, s2f.astype(np.float64)), rel=1e-8)
    assert isinstance(exact, float)


def test_complex_root_is_an_error_not_dropped():
    d = 4
    mu = np.zeros(d)
    not_psd = np.diag([1.0, 1.0, 1.0, -0.5])
    with pytest.raises(ValueError, match="positive semidefinite|complex"):
        frechet_distance(mu, np.eye(d), mu, not_psd)
    with pytest.raises(ValueError, match="positive semidefinite|complex"):
        frechet_distance(mu, not_psd, mu, np.eye(d))


@pytest.mark.parametrize("bad, match", [
    (dict(mu1=np.zeros(3)), "match|shape"),
    (dict(sigma1=np.full((4, 4), np.nan)), "NaN"),
    (dict(sigma1=np.triu(np.ones((4, 4)))), "symmetric"),
    (dict(mu1=np.zeros((4, 1))), "vector"),
])
def test_bad_moments_are_named(bad, match):
    args = dict(mu1=np.zeros(4), sigma1=np.eye(4), mu2=np.zeros(4), sigma2=np.eye(4))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        frechet_distance(args["mu1"], args["sigma1"], args["mu2"], args["sigma2"])


def test_dimension_mismatch():
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_feature_statistics_values_and_singular_warning():
    rng = np.random.default_rng(5)
    f = rng.standard_normal((50, 6)).astype("float32")
    mu, sigma = feature_statistics(f)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-10)
    with pytest.warns(UserWarning, match="singular"):
        feature_statistics(rng.standard_normal((5, 6)))
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 6)))
    with pytest.raises(ValueError, match="NaN"):
        feature_statistics(np.full((4, 2), np.nan))


def test_rank_deficient_statistics_still_agree_with_itself():
    # Fewer samples than features: singular covariances, FD(x, x) = 0 and
    # FD(x, y) finite and positive.
    rng = np.random.default_rng(6)
    with pytest.warns(UserWarning):
        a = feature_statistics(rng.standard_normal((10, 30)))
        b = feature_statistics(rng.standard_normal((10, 30)) + 1.0)
    assert frechet_distance(*a, *a) == pytest.approx(0.0, abs=1e-8)
    assert 25.0 < frechet_distance(*a, *b) < 200.0


def test_rank_deficient_matches_eigenvalues_of_the_product():
    # Independent route: the eigenvalues of the non-symmetric S1 S2 itself.
    rng = np.random.default_rng(7)
    with pytest.warns(UserWarning):
        m1, s1 = feature_statistics(rng.standard_normal((12, 40)))
        m2, s2 = feature_statistics(rng.standard_normal((15, 40)) * 2.0)
    eig = np.linalg.eigvals(s1 @ s2)
    assert np.abs(eig.imag).max() < 1e-8 * np.abs(eig.real).max()
    tr = np.sqrt(np.clip(eig.real, 0, None)).sum()
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(m2, s2, m1, s1) == pytest.approx(expected, rel=1e-6)


def test_zero_covariance():
    s = np.diag([1.0, 4.0])
    assert frechet_distance(np.zeros(2), np.zeros((2, 2)), np.zeros(2), s) == \
        pytest.approx(5.0, rel=1e-12)


def test_the_distance_needs_no_keras():
    # The Fréchet math is numpy and scipy only: statistics saved anywhere can be
    # compared with it, whatever the backend (the package itself loads Keras).
    import ast

    import split_vae.metrics.frechet as frechet_module

    with open(frechet_module.__file__, encoding="utf8") as f:
        tree = ast.parse(f.read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert imported <= {"__future__", "warnings", "numpy", "scipy"}, imported
    f = np.random.default_rng(0).random((50, 3))
    d = frechet_module.frechet_distance(*feature_statistics(f), *feature_statistics(f + 1.0))
    assert d == pytest.approx(3.0, abs=1e-9)


def test_the_face_exports_every_public_name():
    for name in metrics.__all__:
        assert getattr(metrics, name) is not None, name
    from split_vae.metrics import extractors, fd_fmnist, stats_cache

    assert metrics.get_extractor is extractors.get_extractor
    assert metrics.FDFMNISTExtractor is fd_fmnist.FDFMNISTExtractor
    assert metrics.reference_statistics is stats_cache.reference_statistics
    with pytest.raises(AttributeError, match="no attribute 'fid'"):
        metrics.fid


# ---------------------------------------------------------------------------
# Extractors
# ---------------------------------------------------------------------------
def flatten_extractor(side=8, channels=3, **kw):
    net = keras.Sequential([keras.Input((side, side, channels)), keras.layers.Flatten()])
    return FeatureExtractor(net, name="flat", **kw)


def conv_extractor(seed=0, interpolation="bilinear", value_range=(-1.0, 1.0)):
    keras.utils.set_random_seed(seed)
    net = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(5, 3),
                            keras.layers.GlobalAveragePooling2D()])
    return FeatureExtractor(net, name="conv", interpolation=interpolation,
                            value_range=value_range)


def test_preprocessing_resizes_repeats_gray_and_maps_range():
    ext = flatten_extractor(side=8)
    x = np.zeros((2, 4, 4, 1), "float32")
    x[1] = 1.0
    x[0, :2] = 1.0  # top half white
    f = ext.features(x, progress=False).reshape(2, 8, 8, 3)
    assert np.allclose(f[1], 1.0) and f[0].min() == pytest.approx(-1.0)
    # gray repeated: the three channels equal
    assert np.array_equal(f[..., 0], f[..., 1]) and np.array_equal(f[..., 0], f[..., 2])
    # resized to 8x8: top rows white, bottom rows black
    assert np.allclose(f[0, 0], 1.0) and np.allclose(f[0, -1], -1.0)


def test_extractor_rejects_bad_models_and_images():
    image_out = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="vectors"):
        FeatureExtractor(image_out)
    ext = flatten_extractor()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ext.features(np.full((2, 8, 8, 3), 2.0, "float32"), progress=False)
    with pytest.raises(ValueError, match="NaN"):
        ext.features(np.full((2, 8, 8, 3), np.nan, "float32"), progress=False)
    with pytest.raises(ValueError, match="shape"):
        ext.features(np.zeros((2, 8, 8), "float32"), progress=False)


def test_get_extractor_names_and_paths(tmp_path):
    with pytest.raises(ValueError, match="unknown extractor"):
        metrics.get_extractor("vgg")
    with pytest.raises(FileNotFoundError):
        metrics.get_extractor(str(tmp_path / "missing.keras"))
    net = conv_extractor().model
    path = str(tmp_path / "ext.keras")
    net.save(path)
    ext = metrics.get_extractor(path)
    assert ext.input_size == (8, 8) and ext.dim == 5
    # Same weights loaded back: same fingerprint.
    assert ext.fingerprint() == FeatureExtractor(net).fingerprint()


def test_missing_imagenet_weights_message(monkeypatch):
    def no_download(**kwargs):
        raise OSError("URL fetch failure")
    monkeypatch.setattr(keras.applications, "InceptionV3", no_download)
    with pytest.raises(ValueError) as err:
        metrics.get_extractor("inception")
    msg = str(err.value)
    assert "inception-random" in msg and ".keras" in msg
    assert metrics.INCEPTION_WEIGHTS_FILE in msg


# ---------------------------------------------------------------------------
# Cache key and cache
# ---------------------------------------------------------------------------
def test_cache_key_changes_with_images_extractor_and_preprocessing():
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 3)).astype("float32")
    ext = conv_extractor(seed=0)
    key = statistics_key(x, ext)
    assert statistics_key(x.copy(), ext) == key  # content, not identity
    y = x.copy()
    y[3, 4, 4, 1] = np.nextafter(y[3, 4, 4, 1], 0)
    assert statistics_key(y, ext) != key  # one pixel
    assert statistics_key(x[:5], ext) != key  # fewer images
    assert statistics_key(x, conv_extractor(seed=1)) != key  # other weights
    assert statistics_key(x, conv_extractor(interpolation="nearest")) != key
    assert statistics_key(x, conv_extractor(value_range=(0.0, 1.0))) != key
    assert statistics_key(x, conv_extractor(seed=0)) == key  # rebuilt identically


class CountingExtractor(FeatureExtractor):
    calls = 0

    def features(self, images, desc=None, progress=True):
        CountingExtractor.calls += 1
        return super().features(images, desc, progress=False)


def test_reference_statistics_cached_by_content(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 8, 3)).astype("float32")
    ext = CountingExtractor(conv_extractor().model, name="conv")
    CountingExtractor.calls = 0
    mu, sigma = reference_statistics(x, ext, cache_dir=str(tmp_path))
    assert CountingExtractor.calls == 1 and len(os.listdir(tmp_path)) == 1
    mu2, sigma2 = reference_statistics(x.copy(), ext, cache_dir=str(tmp_path))
    assert CountingExtractor.calls == 1  # served from the cache
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    direct = feature_statistics(ext.features(x))
    np.testing.assert_allclose(mu, direct[0], rtol=1e-12)
    x[0] = 0.0
    reference_statistics(x, ext, cache_dir=str(tmp_path))
    assert len(os.listdir(tmp_path)) == 2  # changed images: another entry


def test_statistics_go_to_the_fid_folder_of_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLIT_VAE_CACHE_DIR", str(tmp_path / "c"))
    x = np.random.default_rng(0).random((6, 8, 8, 3)).astype("float32")
    reference_statistics(x, flatten_extractor())
    assert [p.suffix for p in (tmp_path / "c" / "fid").iterdir()] == [".npz"]
    monkeypatch.delenv("SPLIT_VAE_CACHE_DIR")
    assert paths.cache_dir("fid") == os.path.join(
        os.path.expanduser("~"), ".cache", "split_vae", "fid")


def test_corrupt_cache_file_is_named(tmp_path):
    x = np.random.default_rng(2).random((6, 8, 8, 3)).astype("float32")
    ext = conv_extractor()
    reference_statistics(x, ext, cache_dir=str(tmp_path))
    (path,) = [os.path.join(tmp_path, f) for f in os.listdir(tmp_path)]
    with open(path, "wb") as f:
        f.write(b"not a numpy file")
    with pytest.raises(ValueError, match="corrupt") as err:
        reference_statistics(x, ext, cache_dir=str(tmp_path))
    assert path in str(err.value)
