"""The paper's Table 2 (each CIFAR-10 category against the test set, and a random mix)
and Figure 9 (mean images), and the CIFAR-10 labels they need. Expectations are
computed here independently: the mirror images by np.fliplr, the Fréchet distance
by scipy's sqrtm formula."""

import pickle
import warnings

import matplotlib.image
import numpy as np
import pytest
from helpers import small_extractor
from scipy import linalg

from split_vae import data
from split_vae.plotting import plot_mean_images
from split_vae.reproduce import categories
from split_vae.reproduce.categories import (category_fid, category_images,
                                            format_category_table, mean_images,
                                            mix_indices)

NAMES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
         "test_batch"]


# ---------------------------------------------------------------------------
# CIFAR-10 labels
# ---------------------------------------------------------------------------
def write_batches(directory, version, n=4, labels_of=None, drop_labels=False):
    """Fake CIFAR-10 batches; returns {batch name: (images (n,32,32,3), labels)}."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate(NAMES):
        rng = np.random.default_rng(i)
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = (rng.integers(0, 10, n) if labels_of is None else labels_of(name, n))
        planar = images.transpose(0, 3, 1, 2).reshape(n, 3072)
        if version == "bin":
            rec = np.concatenate([np.asarray(labels, np.uint8)[:, None], planar], axis=1)
            rec.tofile(directory / f"{name}.bin")
        else:
            batch = {b"data": planar}
            if not drop_labels:
                batch[b"labels"] = [int(v) for v in labels]
            with open(directory / name, "wb") as f:
                pickle.dump(batch, f, protocol=2)
        written[name] = (images, np.asarray(labels))
    return written


def test_the_ten_categories_in_label_order():
    assert data.CIFAR10_CLASSES == ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                    "frog", "horse", "ship", "truck")


@pytest.mark.parametrize("version", ["bin", "py"])
def test_labels_are_read_with_their_images(tmp_path, version):
    d = tmp_path / f"cifar-10-batches-{version}"
    written = write_batches(d, version)
    images, labels = data.read_cifar10_labelled(tmp_path, "train")
    want_images = np.concatenate([written[f"data_batch_{k}"][0] for k in range(1, 6)])
    want_labels = np.concatenate([written[f"data_batch_{k}"][1] for k in range(1, 6)])
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(data.read_cifar10_labels(d, "test"), written["test_batch"][1])
    np.testing.assert_array_equal(data.read_cifar10_split(d, "test"), written["test_batch"][0])


def test_labels_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 batches"):
        data.read_cifar10_labels(tmp_path / "nothing", "train")
    with pytest.raises(ValueError, match="only the splits"):
        data.read_cifar10_labels(tmp_path, "validation")
    # one training batch missing
    d = tmp_path / "missing"
    write_batches(d, "bin")
    (d / "data_batch_3.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing.*data_batch_3"):
        data.read_cifar10_labels(d, "train")
    # labels just outside 0..9 (10 in a binary record, -1 in a pickle); 9 and 0 pass
    for version, bad in (("bin", 10), ("py", -1)):
        d = tmp_path / f"range-{version}"
        write_batches(d, version, labels_of=lambda name, n, bad=bad:
                      [bad if name == "test_batch" else 9] + [0] * (n - 1))
        assert data.read_cifar10_labels(d, "train").max() == 9
        span = rf"\[{min(bad, 0)}, {max(bad, 0)}\]"
        with pytest.raises(ValueError, match=rf"labels in {span}.*0\.\.9"):
            data.read_cifar10_labels(d, "test")
    # a pickle with one label fewer than images
    d = tmp_path / "short"
    write_batches(d, "py", labels_of=lambda name, n: [1] * (n - (name == "test_batch")))
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        data.read_cifar10_labels(d, "test")
    # a pickle without labels: the labels fail clearly, the images still read
    d = tmp_path / "unlabelled"
    written = write_batches(d, "py", drop_labels=True)
    with pytest.raises(ValueError, match="no b'labels'"):
        data.read_cifar10_labelled(d, "test")
    np.testing.assert_array_equal(data.read_cifar10_split(d, "test"), written["test_batch"][0])


# ---------------------------------------------------------------------------
# Category sets
# ---------------------------------------------------------------------------
def labelled_images(per_class=8, side=8, seed=0):
    """Images with a colour per category and a left-to-right ramp (so that a
    mirror image differs), labels interleaved."""
    rng = np.random.default_rng(seed)
    n = 10 * per_class
    labels = np.tile(np.arange(10), per_class)
    rng.shuffle(labels)
    ramp = np.linspace(0, 0.5, side)[None, None, :, None]
    tint = rng.uniform(0, 0.4, (10, 3))[labels][:, None, None, :]
    noise = rng.uniform(0, 0.1, (n, side, side, 3))
    return np.clip(ramp + tint + noise, 0, 1).astype("float32"), labels


def test_category_images_are_the_category_then_its_mirror_images():
    x, y = labelled_images()
    got = category_images(x, y, "cat")
    chosen = [img for img, label in zip(x, y) if label == 3]
    want = np.stack(chosen + [np.fliplr(img) for img in chosen])
    assert got.shape == (16, 8, 8, 3)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(category_images(x, y, 3), got)
    # uint8 stays uint8
    u = (x * 255).astype(np.uint8)
    assert category_images(u, y, 0).dtype == np.uint8


def test_category_images_errors():
    x, y = labelled_images()
    with pytest.raises(ValueError, match="unknown category 'cats'"):
        category_images(x, y, "cats")
    with pytest.raises(ValueError, match="index 0..9"):
        category_images(x, y, 10)
    with pytest.raises(ValueError, match="one label per training image"):
        category_images(x, y[:-1], 0)
    with pytest.raises(ValueError, match=r"lie in \[0, 10\]"):
        category_images(x, np.where(y == 9, 10, y), 0)
    with pytest.raises(ValueError, match="integers"):
        category_images(x, y.astype(float), 0)
    with pytest.raises(ValueError, match="no training image of category 'truck'"):
        category_images(x, np.where(y == 9, 8, y), 9)


def test_mix_indices():
    a = mix_indices(50, 30, seed=1)
    np.testing.assert_array_equal(a, mix_indices(50, 30, seed=1))
    assert not np.array_equal(a, mix_indices(50, 30, seed=2))
    assert len(np.unique(a)) == 30 and a.min() >= 0 and a.max() < 100
    assert (a >= 50).any() and (a < 50).any()  # originals and mirror images both
    assert len(mix_indices(50, 100)) == 100 and len(mix_indices(50, 2)) == 2
    for bad in (101, 1):
        with pytest.raises(ValueError, match="the mix needs 2 to 100"):
            mix_indices(50, bad)


# ---------------------------------------------------------------------------
# Table 2
# ---------------------------------------------------------------------------
def fd_sqrtm(f1, f2):
    """Fréchet distance written out: |mu1-mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    m1, m2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


@pytest.fixture(scope="module")
def table():
    x, y = labelled_images(per_class=8, seed=0)
    test, _ = labelled_images(per_class=3, seed=1)
    ext = small_extractor(seed=3)
    result = category_fid(x, y, test, ext, seed=4, n_mix=40, progress=False,
                          use_cache=False)
    return x, y, test, ext, result


def test_each_category_against_the_test_set(table):
    x, y, test, ext, result = table
    test_feats = ext.features(test, progress=False)
    assert list(result["fd"]) == list(data.CIFAR10_CLASSES) + ["mix"]
    for c in (0, 3, 9):
        chosen = x[y == c]
        images = np.concatenate([chosen, np.stack([np.fliplr(i) for i in chosen])])
        want = fd_sqrtm(ext.features(images, progress=False), test_feats)
        assert result["fd"][data.CIFAR10_CLASSES[c]] == pytest.approx(want, rel=1e-5)
        # without the mirror images the number is another
        without = fd_sqrtm(ext.features(np.concatenate([chosen, chosen]), progress=False),
                           test_feats)
        assert abs(without - want) > 1e-3 * want
    assert result["protocol"]["n_per_category"] == {n: 16 for n in data.CIFAR10_CLASSES}
    assert result["protocol"]["n_test"] == 30 and result["protocol"]["seed"] == 4
    assert result["metric"] == "FD" and result["note"] == ext.note


def test_the_mix_draws_from_every_category_and_their_mirror_images(table):
    x, y, test, ext, result = table
    index = mix_indices(len(x), 40, seed=4)
    images = np.stack([x[i] if i < len(x) else np.fliplr(x[i - len(x)]) for i in index])
    want = fd_sqrtm(ext.features(images, progress=False), ext.features(test, progress=False))
    assert result["fd"]["mix"] == pytest.approx(want, rel=1e-5)
    counts = np.bincount(y[index % len(x)], minlength=10)
    assert (counts > 0).all()
    assert result["protocol"]["mix_per_category"] == dict(zip(data.CIFAR10_CLASSES,
                                                              counts.tolist()))
    assert result["protocol"]["n_mix"] == 40
    # the draw without its mirror images (or with one category's images left out)
    # is another number
    originals = np.stack([x[i % len(x)] for i in index])
    assert abs(fd_sqrtm(ext.features(originals, progress=False),
                        ext.features(test, progress=False)) - want) > 1e-3 * want


def test_the_mix_defaults_to_a_category_sized_draw():
    x, y = labelled_images(per_class=8, seed=0)
    test, _ = labelled_images(per_class=3, seed=1)
    result = category_fid(x, y, test, small_extractor(seed=3), progress=False,
                          use_cache=False)
    assert result["protocol"]["n_mix"] == 16 and result["protocol"]["seed"] == 0


def test_category_fid_errors():
    x, y = labelled_images(per_class=4)
    test, _ = labelled_images(per_class=3, seed=1)
    ext = small_extractor()
    with pytest.raises(ValueError, match=r"no training image of the categories \['frog'\]"):
        category_fid(x, np.where(y == 6, 5, y), test, ext, progress=False, use_cache=False)
    with pytest.raises(ValueError, match="the test images"):
        category_fid(x, y, test[:, :4], ext, progress=False, use_cache=False)
    with pytest.raises(ValueError, match="one label per training image"):
        category_fid(x, y[:5], test, ext, progress=False, use_cache=False)
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        category_fid(x, np.where(y == 9, 10, y), test, ext, progress=False, use_cache=False)
    with pytest.raises(ValueError, match=r"\[-1, 9\]"):
        category_fid(x, np.where(y == 0, -1, y), test, ext, progress=False, use_cache=False)
    with pytest.raises(ValueError, match="the mix needs 2 to 80"):
        category_fid(x, y, test, ext, n_mix=81, progress=False, use_cache=False)


def test_the_table_in_the_papers_layout(table):
    result = table[-1]
    text = format_category_table(result)
    lines = text.splitlines()
    assert lines[0].startswith("FD in small; extractor small")
    assert "| category | FD |" in lines
    rows = [line for line in lines if line.startswith("| ") and "category" not in line]
    assert [r.split("|")[1].strip() for r in rows] == list(data.CIFAR10_CLASSES) + ["mix"]
    assert rows[3] == f"| cat | {categories._fmt(result['fd']['cat'])} |"
    assert lines[-1] == f"note: {result['note']}" and "not the paper's FID" in lines[-1]
    # the paper's extractor is named FID, two decimals
    paper = dict(result, metric="FID", metric_protocol="FID, paper protocol",
                 fd={"cat": 123.456, "mix": 5.3})
    assert "| cat | 123.46 |" in format_category_table(paper)
    assert format_category_table(paper).splitlines()[0].startswith("FID, paper protocol")


def test_a_result_written_with_the_old_key_reads_and_formats(table):
    # Results written before "fd" kept the distances under "fid".
    old = {k: v for k, v in table[-1].items() if k != "fd"}
    old["fid"] = {"cat": 12.345, "mix": 0.5}
    assert categories.normalise_result(old)["fd"] == {"cat": 12.345, "mix": 0.5}
    assert "fid" not in categories.normalise_result(old)
    text = format_category_table(old)
    assert "| cat | 12.35 |" in text and "| mix | 0.5 |" in text


# ---------------------------------------------------------------------------
# Figure 9
# ---------------------------------------------------------------------------
def test_mean_images_match_numpy():
    rng = np.random.default_rng(0)
    floats = rng.uniform(0, 1, (21, 5, 6, 3))  # 4 chunks of 5, then 1.astype("float32")
    pixels = rng.integers(0, 256, (17, 4, 4, 1), dtype=np.uint8)
    means = mean_images({"a": floats, "b": pixels}, chunk=5)
    assert list(means) == ["a", "b"]
    np.testing.assert_allclose(means["a"], floats.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(means["b"], pixels.mean(0) / 255.0, rtol=1e-6)
    assert means["a"].dtype == np.float64
    np.testing.assert_allclose(mean_images({"a": floats}, chunk=100)["a"], means["a"],
                               rtol=1e-12)


def test_mean_images_errors():
    with pytest.raises(ValueError, match="empty"):
        mean_images({})
    with pytest.raises(ValueError, match=r"x: expected images \(N, H, W, C\)"):
        mean_images({"x": np.zeros((0, 4, 4, 3))})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mean_images({"x": np.full((2, 4, 4, 3), 2.0)})


def test_plot_mean_images_writes_the_figure(tmp_path):
    rng = np.random.default_rng(0)
    means = {"CIFAR-10": rng.uniform(0, 1, (32, 32, 3)), "CelebA": rng.uniform(0, 1, (64, 64, 3))}
    path = tmp_path / "figure9.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_mean_images(means, str(path))
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[1] > img.shape[0]  # side by side
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_mean_images({}, str(tmp_path / "none.png"))
    with pytest.raises(ValueError, match="'x' must be"):
        plot_mean_images({"x": np.zeros((4, 4))}, str(tmp_path / "bad.png"))
    assert not (tmp_path / "none.png").exists() and not (tmp_path / "bad.png").exists()
