"""Tests of split_vae.data: tfds (mocked), IDX, arrays, image folders, bad input."""

import gzip
import os
import struct
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from split_vae import data
from split_vae.data import cache as image_cache


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def write_idx(path, array, compress=None):
    """Write `array` as an IDX file (big-endian header and values)."""
    codes = {np.dtype("uint8"): 0x08, np.dtype("int16"): 0x0B, np.dtype("float32"): 0x0D}
    array = np.asarray(array)
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)


def mnist_like(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


@pytest.fixture
def idx_dir(tmp_path):
    """A directory of gzipped MNIST-format files: 30 train, 12 test images."""
    d = tmp_path / "idx"
    d.mkdir()
    x_train, x_test = mnist_like(30, 0), mnist_like(12, 1)
    write_idx(d / "train-images-idx3-ubyte.gz", x_train)
    write_idx(d / "t10k-images-idx3-ubyte.gz", x_test)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(30, dtype=np.uint8) % 10)
    return d, x_train, x_test


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test caches decoded folders in its own directory."""
    monkeypatch.setenv("SPLIT_VAE_CACHE_DIR", str(tmp_path / "cache"))


def first_batches(ds):
    return np.concatenate([b.numpy() for b in ds])


def save_png(path, array):
    from PIL import Image

    array = np.asarray(array, np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


# ---------------------------------------------------------------------------
# tensorflow-datasets paths, on mocked data with known pixels
# ---------------------------------------------------------------------------
def known_as_dataset(images):
    """A replacement of DatasetBuilder._as_dataset yielding `images` in order."""
    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        return tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": np.zeros(len(images), np.int64)})
    return as_dataset


def test_tfds_mnist_is_padded_to_32_with_the_pixels_in_the_middle():
    images = mnist_like(5, 2)[..., None]
    with tfds.testing.mock_data(as_dataset_fn=known_as_dataset(images)):
        x = data.load("mnist", "test", as_numpy=True)
        batches = first_batches(data.load("mnist", "train", batch_size=2, shuffle=False))
    assert x.shape == (5, 32, 32, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 2:30, 2:30], images / 255.0, atol=1e-7)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.all(x[:, border] == 0.0)
    np.testing.assert_array_equal(batches, x)


def test_tfds_cifar10_values_pass_through_scaled():
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    with tfds.testing.mock_data(as_dataset_fn=known_as_dataset(images)):
        x = data.load("cifar10", "train", as_numpy=True, limit=3)
    assert x.shape == (3, 32, 32, 3)
    np.testing.assert_allclose(x, images[:3] / 255.0, atol=1e-7)


def ramp_faces(n):
    """Aligned-CelebA-sized images: channel 0 = row index, 1 = column, 2 = image index."""
    rows, cols = np.meshgrid(np.arange(218), np.arange(178), indexing="ij")
    faces = np.zeros((n, 218, 178, 3), np.uint8)
    faces[..., 0] = rows
    faces[..., 1] = cols
    faces[..., 2] = np.arange(n)[:, None, None] * 10
    return faces


def expected_celeba_ramp(n):
    # Crop rows 45:173 / columns 25:153, then a bilinear halving: output pixel
    # i samples input 2i + 0.5, the mean of rows 2i and 2i+1, exact on a ramp.
    i = np.arange(64)
    out = np.zeros((n, 64, 64, 3), np.float32)
    out[..., 0] = (45 + 2 * i + 0.5)[:, None]
    out[..., 1] = (25 + 2 * i + 0.5)[None, :]
    out[..., 2] = np.arange(n)[:, None, None] * 10
    return out / 255.0


def test_tfds_celeba_crop_and_bilinear_resize_on_known_pixels():
    faces = ramp_faces(3)
    with tfds.testing.mock_data(as_dataset_fn=known_as_dataset(faces)):
        x = data.load("celeba", "test", as_numpy=True)
        y = data.load("celeb_a", "validation", as_numpy=True, limit=2)
        ds = data.load("celeba", "train", batch_size=2, seed=0)
        train = first_batches(ds)
    assert x.shape == (3, 64, 64, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x, expected_celeba_ramp(3), atol=1e-6)
    assert y.shape == (2, 64, 64, 3)
    assert ds.element_spec.shape.as_list() == [None, 64, 64, 3]
    # Shuffled: the same three images, in some order.
    order = np.argsort(train[:, 0, 0, 2])
    np.testing.assert_allclose(train[order], x, atol=1e-6)


def test_tfds_not_downloadable_offline_says_what_to_do(monkeypatch):
    def offline(self, *args, **kwargs):
        raise ConnectionError("Name or service not known")
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(FileNotFoundError, match="could not be downloaded") as e:
        data.load("cifar10", "train")
    assert "data_dir" in str(e.value) and "Name or service not known" in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32"])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5)
    a = (a % 256 if dtype == "uint8" else a * 3).astype(dtype)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, a, compress=compress)
    b = data.read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(b, a)


def test_idx_directory_is_padded_like_mnist(idx_dir):
    d, x_train, x_test = idx_dir
    for name in ("idx", "mnist", "fashion_mnist"):
        test = data.load(name, "test", data_dir=d, as_numpy=True)
        assert test.shape == (12, 32, 32, 1)
        np.testing.assert_allclose(test[:, 2:30, 2:30, 0], x_test / 255.0, atol=1e-7)
        assert test[:, :2].max() == 0 and test[:, 30:].max() == 0
        assert test[:, :, :2].max() == 0 and test[:, :, 30:].max() == 0
    labels = data.read_idx_split(d, "train", kind="labels")
    np.testing.assert_array_equal(labels, np.arange(30) % 10)


def test_idx_uncompressed_and_dotted_names(tmp_path):
    x = mnist_like(4, 5)
    write_idx(tmp_path / "train-images.idx3-ubyte", x, compress=False)
    got = data.load("idx", "train", data_dir=tmp_path, as_numpy=True, shuffle=False)
    np.testing.assert_allclose(got[:, 2:30, 2:30, 0], x / 255.0, atol=1e-7)


def test_idx_truncated_file(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", mnist_like(10, 0), compress=False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(ValueError, match="truncated.*download it again"):
        data.load("idx", "train", data_dir=tmp_path)


def test_idx_truncated_gzip(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", mnist_like(10, 0))
    raw = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        data.load("mnist", "train", data_dir=tmp_path)


def test_idx_not_an_idx_file(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.load("idx", "train", data_dir=tmp_path)


def test_idx_missing_test_file(idx_dir):
    d, _, _ = idx_dir
    os.remove(d / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        data.load("idx", "test", data_dir=d)


DEBIAN = data.DEBIAN_FASHION_MNIST


@pytest.mark.fashion_mnist
def test_real_debian_fashion_mnist():
    # Found without data_dir; the first image of both splits is an ankle boot (9).
    train = data.load("fashion_mnist", "train", as_numpy=True)
    test = data.load("fashion_mnist", "test", as_numpy=True)
    assert train.shape == (60000, 32, 32, 1) and test.shape == (10000, 32, 32, 1)
    assert train.dtype == np.float32 and 0.0 == train.min() and train.max() == 1.0
    assert train[:, :2].max() == 0 and train[:, :, 30:].max() == 0
    assert data.read_idx_split(DEBIAN, "train", kind="labels")[0] == 9
    assert data.read_idx_split(DEBIAN, "test", kind="labels")[0] == 9
    raw = data.read_idx(os.path.join(DEBIAN, "t10k-images-idx3-ubyte.gz"))
    np.testing.assert_allclose(test[:, 2:30, 2:30, 0], raw / 255.0, atol=1e-7)


def test_fashion_mnist_offline_without_debian_files(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("network unreachable")
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "absent"))
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist.*data_dir"):
        data.load("fashion_mnist", "train")


# ---------------------------------------------------------------------------
# CIFAR-10's own distribution
# ---------------------------------------------------------------------------
def cifar_records(n, seed):
    """(labels, planar pixels (N, 3072), the same images as (N, 32, 32, 3))."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    planar = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    return rng.integers(0, 10, n, dtype=np.uint8), planar, images


@pytest.mark.parametrize("version", ["bin", "py"])
def test_cifar10_original_batches(tmp_path, version):
    import pickle

    d = tmp_path / f"cifar-10-batches-{version}"
    d.mkdir()
    expected = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        labels, planar, images = cifar_records(3, i)
        expected[name] = images
        if version == "bin":
            rec = np.concatenate([labels[:, None], planar], axis=1)
            rec.tofile(d / f"{name}.bin")
        else:
            with open(d / name, "wb") as f:
                pickle.dump({b"data": planar, b"labels": labels.tolist()}, f, protocol=2)
    test = data.load("cifar10", "test", data_dir=tmp_path, as_numpy=True)
    np.testing.assert_allclose(test, expected["test_batch"] / 255.0, atol=1e-7)
    train = data.load("cifar10", "train", data_dir=d, as_numpy=True)
    want = np.concatenate([expected[f"data_batch_{k}"] for k in range(1, 6)])
    np.testing.assert_allclose(train, want / 255.0, atol=1e-7)


def test_cifar10_truncated_bin_and_hostile_pickle(tmp_path):
    import pickle

    labels, planar, _ = cifar_records(2, 0)
    np.concatenate([labels[:, None], planar], axis=1).ravel()[:-7].tofile(
        tmp_path / "test_batch.bin")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        data.load("cifar10", "test", data_dir=tmp_path)

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    py = tmp_path / "py"
    py.mkdir()
    with open(py / "test_batch", "wb") as f:
        pickle.dump({b"data": Hostile()}, f, protocol=2)
    with pytest.raises(ValueError, match="not a readable CIFAR-10 python batch.*not allowed"):
        data.load("cifar10", "test", data_dir=py)


def test_tfds_data_dir_is_recognised(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "from_tfds", lambda *args: calls.append(args) or
                        np.zeros((2, 32, 32, 1), np.uint8))
    # A folder named like the dataset but holding IDX files is not a tfds directory.
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", mnist_like(2, 0))
    with pytest.raises(FileNotFoundError, match="no mnist data found"):
        data.load("mnist", data_dir=tmp_path)
    assert calls == []
    (tmp_path / "mnist" / "3.0.1").mkdir()
    (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    assert data.load("mnist", "test", data_dir=tmp_path, as_numpy=True).shape == (2, 32, 32, 1)
    assert calls == [("mnist", "test", str(tmp_path), None)]


# ---------------------------------------------------------------------------
# .npy / .npz arrays
# ---------------------------------------------------------------------------
def test_npz_with_keras_keys_and_mnist_padding(tmp_path):
    x_train, x_test = mnist_like(8, 0), mnist_like(3, 1)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=np.zeros(8),
             x_test=x_test, y_test=np.zeros(3))
    got = data.load("mnist", "test", data_dir=tmp_path / "mnist.npz", as_numpy=True)
    assert got.shape == (3, 32, 32, 1)
    np.testing.assert_allclose(got[:, 2:30, 2:30, 0], x_test / 255.0, atol=1e-7)
    # The generic source keeps 28x28.
    generic = data.load("npz", "train", data_dir=tmp_path, as_numpy=True)
    np.testing.assert_allclose(generic[..., 0], x_train / 255.0, atol=1e-7)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_aligned_celeba_arrays_get_the_paper_crop_and_resize(tmp_path, dtype):
    # Inside the crop (rows 45:173, columns 25:153) channel 0 is twice the
    # row's offset, channel 1 twice the column's, 0 outside it. A bilinear
    # halving averages offsets 2i and 2i+1: 4i+1 exactly, a whole grey level,
    # so the uint8 the arrays pass through rounds nothing away.
    rows, cols = np.meshgrid(np.arange(218), np.arange(178), indexing="ij")
    inside = (rows >= 45) & (rows < 173) & (cols >= 25) & (cols < 153)
    faces = np.zeros((2, 218, 178, 3), np.uint8)
    faces[:, inside, 0] = 2 * (rows[inside] - 45)
    faces[:, inside, 1] = 2 * (cols[inside] - 25)
    faces[1, ..., 2] = 90
    stored = faces if dtype == "uint8" else faces.astype(np.float32) / 255.0
    np.savez(tmp_path / "celeba.npz", x_train=stored, x_test=stored[:1])
    got = data.load("celeba", "train", data_dir=tmp_path / "celeba.npz", as_numpy=True)
    assert got.shape == (2, 64, 64, 3) and got.dtype == np.float32
    i = np.arange(64)
    expected = np.zeros((2, 64, 64, 3), np.float32)
    expected[..., 0] = (4 * i + 1)[:, None]
    expected[..., 1] = (4 * i + 1)[None, :]
    expected[1, ..., 2] = 90
    np.testing.assert_allclose(got * 255.0, expected, atol=1e-3)


def test_npy_per_split_files_float(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.random((6, 8, 8, 3), np.float32), rng.random((2, 8, 8, 3), np.float32)
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "test.npy", test)
    np.testing.assert_array_equal(
        data.load("array", "test", data_dir=tmp_path, as_numpy=True), test)
    with pytest.raises(FileNotFoundError, match="none for the validation split"):
        data.load("array", "validation", data_dir=tmp_path)


def test_single_array_warns_that_test_is_train(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "all.npy", x)
    with pytest.warns(UserWarning, match="no held-out data"):
        test = data.load("array", "test", data_dir=tmp_path / "all.npy", as_numpy=True)
    np.testing.assert_allclose(test[..., 0], x / 255.0, atol=1e-7)


def test_corrupt_npz(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=mnist_like(20, 0))
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated .npz"):
        data.load("array", "train", data_dir=tmp_path / "d.npz")


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "x.npy", mnist_like(20, 0))
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:-500])
    with pytest.raises(ValueError, match="not a readable .npy"):
        data.load("array", "train", data_dir=tmp_path / "x.npy")


def test_four_channel_array_is_refused_naming_the_channels(tmp_path):
    # RGBA (or any 4-channel) arrays are refused, not silently cut to RGB.
    np.save(tmp_path / "rgba.npy", np.zeros((3, 8, 8, 4), np.uint8))
    with pytest.raises(ValueError,
                       match=r"rgba\.npy have 4 channels.*1 \(grayscale\) or 3 \(RGB\)"):
        data.load("array", data_dir=tmp_path / "rgba.npy")


def test_array_out_of_range_and_wrong_keys(tmp_path):
    np.save(tmp_path / "x.npy", np.full((2, 8, 8), 3.0, np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.load("array", data_dir=tmp_path / "x.npy")
    np.savez(tmp_path / "k.npz", a=np.zeros((2, 8, 8)), b=np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="x_train and x_test"):
        data.load("array", data_dir=tmp_path / "k.npz")


# ---------------------------------------------------------------------------
# Image folders and the cache
# ---------------------------------------------------------------------------
@pytest.fixture
def image_folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    x = np.random.default_rng(4).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    for i, img in enumerate(x):
        save_png(d / f"im{i:02d}.png", img)
    (d / "notes.txt").write_text("not an image")
    return d, x


def test_folder_lossless_values_and_cache(image_folder, tmp_path, monkeypatch):
    d, x = image_folder
    got = data.load("folder", "train", data_dir=d, as_numpy=True)
    np.testing.assert_allclose(got, x / 255.0, atol=1e-7)
    cached = list((tmp_path / "cache" / "images").glob("*.npy"))
    assert len(cached) == 1
    # Second load: from the cache, nothing decoded.
    monkeypatch.setattr(image_cache, "_decode_into", lambda *a: pytest.fail("decoded again"))
    again = data.load("folder", "train", data_dir=d, as_numpy=True, limit=4)
    np.testing.assert_array_equal(again, got[:4])


def test_folder_change_invalidates_cache(image_folder, tmp_path):
    d, x = image_folder
    data.load("folder", data_dir=d, as_numpy=True)
    save_png(d / "im00.png", 255 - x[0])
    got = data.load("folder", data_dir=d, as_numpy=True)
    np.testing.assert_allclose(got[0], (255 - x[0]) / 255.0, atol=1e-7)
    assert len(list((tmp_path / "cache" / "images").glob("*.npy"))) == 2
    assert not list((tmp_path / "cache" / "images").glob(".tmp-*"))


def test_folder_resized_and_converted_to_image_shape(tmp_path):
    # A horizontal ramp, 32 wide: bilinear halving averages column pairs.
    ramp = np.tile((np.arange(32) * 8).astype(np.uint8)[None, :, None], (32, 1, 3))
    for i in range(2):
        save_png(tmp_path / f"{i}.png", ramp)
    got = data.load("folder", data_dir=tmp_path, as_numpy=True, image_shape=(16, 16, 1))
    assert got.shape == (2, 16, 16, 1)
    expected = np.round((np.arange(16) * 16 + 4)) / 255.0
    np.testing.assert_allclose(got[0, 5, :, 0], expected, atol=1e-6)


def test_folder_train_test_subfolders_and_pipeline(tmp_path):
    for split, n in (("train", 5), ("test", 2)):
        (tmp_path / split).mkdir()
        for i in range(n):
            save_png(tmp_path / split / f"{i}.png", np.full((8, 8, 1), 40 * i + 3, np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = data.load("folder", "test", data_dir=tmp_path, as_numpy=True)
    assert test.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(test[:, 0, 0, 0], (np.arange(2) * 40 + 3) / 255.0, atol=1e-7)
    ds = data.load("folder", "train", data_dir=tmp_path, batch_size=2, seed=1)
    values = first_batches(ds)[:, 0, 0, 0]
    assert sorted(np.round(values * 255).astype(int)) == [3, 43, 83, 123, 163]


def test_folder_mixed_sizes(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((16, 16, 3)))
    save_png(tmp_path / "b.png", np.zeros((20, 16, 3)))
    with pytest.raises(ValueError, match="mixed sizes.*b.png is 16x20"):
        data.load("folder", data_dir=tmp_path)


def test_folder_corrupt_image(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((16, 16, 3)))
    (tmp_path / "b.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="b.png is not a readable image"):
        data.load("folder", data_dir=tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        data.load("folder", data_dir=tmp_path)


def write_celeba(folder, numbers):
    faces = ramp_faces(len(numbers))
    folder.mkdir(parents=True)
    for k, face in zip(numbers, faces):
        save_png(folder / f"{k:06d}.png", face)
    return faces


def test_celeba_folder_official_numbering(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    write_celeba(folder, [1, 2, 162771, 182638, 182639])
    train = data.load("celeba", "train", data_dir=tmp_path / "celeba", as_numpy=True)
    test = data.load("celeba", "test", data_dir=folder, as_numpy=True)
    val = data.load("celeba", "validation", data_dir=folder, as_numpy=True)
    assert (len(train), len(val), len(test)) == (2, 1, 2)
    ramp = expected_celeba_ramp(5)
    # The cache holds uint8: half a grey level of rounding.
    np.testing.assert_allclose(train, ramp[:2], atol=0.51 / 255)
    np.testing.assert_allclose(test, ramp[3:], atol=0.51 / 255)


def test_celeba_folder_resize_is_bilinear_not_nearest(tmp_path):
    # Rows (channel 0) and columns (channel 1) alternating 0 and 200: a
    # bilinear halving averages each pair to 100; nearest neighbours would
    # keep 0 or 200. (The ramps above cannot tell: the two differ by half a
    # grey level there, which the uint8 cache rounds away.)
    rows, cols = np.meshgrid(np.arange(218), np.arange(178), indexing="ij")
    face = np.zeros((218, 178, 3), np.uint8)
    face[..., 0] = 200 * (rows % 2)
    face[..., 1] = 200 * (cols % 2)
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    save_png(folder / "000001.png", face)
    train = data.load("celeba", "train", data_dir=tmp_path, as_numpy=True)
    assert train.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(train[0, ..., :2], 100 / 255, atol=0.51 / 255)


def test_celeba_folder_partition_file(tmp_path):
    folder = tmp_path / "img_align_celeba"
    write_celeba(folder, [1, 2, 3])
    (tmp_path / "list_eval_partition.csv").write_text(
        "image_id,partition\n000001.png,2\n000002.png,0\n000003.png,2\n")
    test = data.load("celeba", "test", data_dir=tmp_path, as_numpy=True)
    assert len(test) == 2
    np.testing.assert_allclose(test[:, ..., 2], expected_celeba_ramp(3)[[0, 2], ..., 2],
                               atol=0.51 / 255)


def test_celeba_folder_wrong_size(tmp_path):
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    save_png(folder / "000001.png", np.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match="178x218"):
        data.load("celeba", "train", data_dir=tmp_path)


# ---------------------------------------------------------------------------
# The pipeline, digits, and argument errors
# ---------------------------------------------------------------------------
def test_pipeline_epochs_are_permutations_and_seeded():
    x = np.arange(23, dtype=np.uint8).reshape(23, 1, 1, 1) * 10
    ds = data.array_pipeline(x, batch_size=5, shuffle=True, seed=7)
    first, second = first_batches(ds), first_batches(ds)
    assert [b.shape[0] for b in ds] == [5, 5, 5, 5, 3]
    for epoch in (first, second):
        np.testing.assert_allclose(np.sort(epoch.ravel()), x.ravel() / 255.0, atol=1e-7)
    assert not np.array_equal(first, second)  # reshuffled each epoch
    np.testing.assert_array_equal(
        first, first_batches(data.array_pipeline(x, batch_size=5, shuffle=True, seed=7)))
    ordered = first_batches(data.array_pipeline(x, batch_size=5, shuffle=False))
    np.testing.assert_allclose(ordered.ravel(), x.ravel() / 255.0, atol=1e-7)


def test_limit_takes_the_first_images_before_shuffling(idx_dir):
    d, x_train, _ = idx_dir
    ds = data.load("mnist", "train", data_dir=d, limit=7, batch_size=100, seed=0)
    got = first_batches(ds)[:, 2:30, 2:30, 0]
    assert len(got) == 7
    assert sorted(map(bytes, np.round(got * 255).astype(np.uint8))) == \
        sorted(map(bytes, x_train[:7]))


def test_digits_splits():
    train = data.load("digits", "train", as_numpy=True)
    test = data.load("digits", "test", as_numpy=True)
    assert train.shape == (1797 - 359, 16, 16, 1) and test.shape == (359, 16, 16, 1)
    from sklearn.datasets import load_digits

    first = load_digits().images[0] / 16.0
    np.testing.assert_allclose(test[0, ::2, ::2, 0], first, atol=1e-7)
    np.testing.assert_allclose(test[0, 1::2, 1::2, 0], first, atol=1e-7)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*mnist.*folder"):
        data.load("imagenet")


def test_missing_directory(tmp_path):
    for name in ("mnist", "idx", "folder", "celeba"):
        with pytest.raises(FileNotFoundError, match="does not exist.*--data-dir"):
            data.load(name, data_dir=tmp_path / "nowhere")


def test_directory_without_the_dataset(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match="no mnist data found.*train-images-idx3"):
        data.load("mnist", data_dir=tmp_path)


def test_image_shape_mismatch(idx_dir):
    d, _, _ = idx_dir
    with pytest.raises(ValueError, match="gives 32x32x1 images but the model expects 64x64x3"):
        data.load("mnist", data_dir=d, image_shape=(64, 64, 3))


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "dev"}, "split must be one of"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"limit": -1}, "limit must be a positive integer"),
    ({"image_shape": (16, 16)}, r"image_shape must be \(H, W, C\)"),
    ({"data_dir": "/tmp"}, "takes no data_dir"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load("digits", **kwargs)


def test_generic_source_needs_data_dir():
    with pytest.raises(ValueError, match="pass data_dir"):
        data.load("folder")


# ---------------------------------------------------------------------------
# End to end: the training CLI on IDX files
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_trains_on_an_idx_directory(idx_dir, tmp_path):
    from split_vae.cli import main

    d, _, _ = idx_dir
    out = tmp_path / "run"
    rc = main(["train", "--preset", "mnist", "--dataset", "mnist", "--data-dir", str(d),
               "--out", str(out), "--epochs", "1", "--batch-size", "10", "--samples", "2",
               "--set", "base_dim=4", "--set", "emb_dim=8", "--set", "num_scale=2",
               "--verbose", "0"])
    assert rc == 0
    assert (out / "model.keras").exists() and (out / "reconstructed.png").exists()
