"""FD-FMNIST: the shipped Fashion-MNIST classifier as a Fréchet-distance extractor."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from split_vae import SplitVAE, data, metrics
from split_vae.metrics import fd_fmnist
from split_vae.cli import main

pytestmark = pytest.mark.fashion_mnist


@pytest.fixture(scope="module")
def extractor():
    return fd_fmnist.fd_fmnist_extractor()


@pytest.fixture(scope="module")
def test_split():
    return fd_fmnist.labelled_split("test")


def test_shipped_classifier_is_accurate(extractor, test_split):
    images, labels = test_split
    # The labels come from the IDX file, read here without the library.
    import gzip
    with gzip.open(os.path.join(data.DEBIAN_FASHION_MNIST, "t10k-labels-idx1-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    np.testing.assert_array_equal(labels, raw)
    acc = fd_fmnist.accuracy(extractor, images, raw)
    assert acc > 0.90
    # The card records what the weights give (no number copied by hand).
    assert acc == pytest.approx(extractor.card["test_accuracy"], abs=1e-4)
    assert extractor.dim == 128 and extractor.name == "fd-fmnist"
    assert "FD-FMNIST" in extractor.note and "Not an FID" in extractor.note


def test_features_separate_real_from_blurred(extractor, test_split):
    images = test_split[0][:2000]
    from scipy.ndimage import gaussian_filter
    blurred = gaussian_filter(images, sigma=(0, 1, 1, 0))
    ref = metrics.feature_statistics(extractor.features(images[:1000], progress=False))
    same = metrics.feature_statistics(extractor.features(images[1000:], progress=False))
    blur = metrics.feature_statistics(extractor.features(blurred[1000:], progress=False))
    # Two halves of the test set are closer than a half and its blurred copy.
    assert metrics.frechet_distance(*ref, *same) < metrics.frechet_distance(*ref, *blur)


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (3, 32, 32, 3), (3, 64, 64, 1),
                                   (32, 32, 1)])
def test_wrong_image_size_names_the_shapes(extractor, shape):
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 1\).*" + str(shape).replace(
            "(", r"\(").replace(")", r"\)")):
        extractor.features(np.zeros(shape, "float32"), progress=False)


def test_missing_weights_file_is_named(tmp_path):
    path = str(tmp_path / "nowhere.weights.h5")
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        fd_fmnist.fd_fmnist_extractor(path)
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        metrics.get_extractor(path)


def test_damaged_weights_file_is_named(tmp_path):
    # With its card: the SHA-256 differs.
    path = str(tmp_path / "fd.weights.h5")
    shutil.copy(fd_fmnist.WEIGHTS_PATH, path)
    shutil.copy(fd_fmnist.card_path(fd_fmnist.WEIGHTS_PATH), fd_fmnist.card_path(path))
    fd_fmnist.fd_fmnist_extractor(path)  # an intact copy loads
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\x00garbage\x00")
    with pytest.raises(ValueError, match=r"fd\.weights\.h5 are damaged"):
        fd_fmnist.fd_fmnist_extractor(path)
    # Without a card: a truncated file cannot be read.
    os.remove(fd_fmnist.card_path(path))
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ValueError, match=r"cannot read .*fd\.weights\.h5"):
        fd_fmnist.fd_fmnist_extractor(path)


def test_weights_of_another_network_are_refused(tmp_path):
    other = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ValueError, match="other.weights.h5"):
        fd_fmnist.fd_fmnist_extractor(path)


def test_get_extractor_by_name_and_path(extractor):
    by_name = metrics.get_extractor("fd-fmnist")
    by_path = metrics.get_extractor(fd_fmnist.WEIGHTS_PATH)
    assert isinstance(by_name, fd_fmnist.FDFMNISTExtractor)
    assert by_name.fingerprint() == by_path.fingerprint() == extractor.fingerprint()


def test_reference_statistics_cache_with_fd_fmnist(extractor, test_split, tmp_path,
                                                    monkeypatch):
    images = test_split[0][:300]
    cache = str(tmp_path / "cache")
    mu, sigma = metrics.reference_statistics(images, extractor, cache_dir=cache)
    assert len(os.listdir(cache)) == 1
    # The second call reads the file: computing features again would fail.
    fresh = fd_fmnist.fd_fmnist_extractor()
    monkeypatch.setattr(fresh, "features", lambda *a, **k: pytest.fail("not cached"))
    mu2, sigma2 = metrics.reference_statistics(images, fresh, cache_dir=cache)
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    # Other images give another entry.
    monkeypatch.undo()
    metrics.reference_statistics(images[:299], extractor, cache_dir=cache)
    assert len(os.listdir(cache)) == 2


def test_evaluate_command_with_fd_fmnist(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    cfg = SplitVAE.from_preset("fashion_mnist").config.replace(
        base_dim=4, emb_dim=8, latent_dim=4, num_scale=2, gmm_components=2)
    preset = SplitVAE(cfg).save_to_preset(str(tmp_path / "tiny"))
    out = str(tmp_path / "out")
    rc = main(["evaluate", "--model", preset, "--out", out, "--samples", "200",
               "--extractor", "fd-fmnist", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["metric"] == "FD-FMNIST"
    assert report["protocol"]["extractor"] == "fd-fmnist"
    assert report["split_kind"]["kind"] in ("syntactic", "semantic", "none")
    printed = capsys.readouterr().out
    assert "FD-FMNIST GEN" in printed and "FID" not in printed.replace("not an FID", "") \
        .replace("Not an FID", "")
    assert "split kind:" in printed
    assert len(os.listdir(tmp_path / "cache")) == 2  # test and train statistics
