"""pytorch-fid's network in Keras (fid_inception) and the .pth reader (pth), fast.

The features are compared with pytorch-fid's own code in test_fid_parity.py
(slow); here: the weights file formats, the restricted unpickler, the loader's
checks, the network's structure, the input protocol, the hash and the cache.
"""

import collections
import os
import pickle
import zipfile

import keras
import numpy as np
import pytest

from split_vae.metrics import fid_inception as fi
from split_vae.metrics.pth import read_state_dict

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------------
# The .pth reader
# ---------------------------------------------------------------------------
def _state():
    g = torch.Generator().manual_seed(0)
    return collections.OrderedDict(
        w=torch.randn(3, 4, 2, 2, generator=g),
        transposed=torch.arange(12, dtype=torch.float64).reshape(3, 4).t(),
        half=torch.randn(5, generator=g).half(),
        count=torch.tensor(7, dtype=torch.int64),
        flags=torch.tensor([True, False]),
        param=torch.nn.Parameter(torch.ones(2, dtype=torch.int32).float()),
        sliced=torch.arange(10.0)[2:8:2])


@pytest.mark.parametrize("zip_format", [True, False])
def test_pth_reads_both_formats_exactly(tmp_path, zip_format):
    state = _state()
    path = tmp_path / "w.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(path) == zip_format
    read = read_state_dict(path)
    assert list(read) == list(state)
    for k, v in state.items():
        expected = v.detach().numpy()
        assert read[k].dtype == expected.dtype and read[k].shape == expected.shape, k
        assert np.array_equal(read[k], expected), k


def test_pth_reads_a_module_state_dict_with_its_metadata(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    torch.save(net.state_dict(), tmp_path / "m.pth")
    read = read_state_dict(tmp_path / "m.pth")
    assert read["1.num_batches_tracked"].dtype == np.int64
    assert np.array_equal(read["0.weight"], net[0].weight.detach().numpy())


class _Evil:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


@pytest.mark.parametrize("zip_format", [True, False])
def test_pth_refuses_anything_but_tensors(tmp_path, zip_format):
    flag = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=zip_format)
    payload = pickle.dumps(collections.OrderedDict(w=_Evil(flag)), protocol=2)
    if zip_format:
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}
        pkl = next(n for n in members if n.endswith("data.pkl"))
        members[pkl] = payload
        with zipfile.ZipFile(path, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
    else:
        with open(path, "wb") as f:
            for obj in (fi_magic(), 1001, {"little_endian": True}):
                pickle.dump(obj, f, protocol=2)
            f.write(payload)
    with pytest.raises(ValueError, match=r"system is not allowed: a weights file holds "
                                         r"tensors only"):
        read_state_dict(path)
    assert not flag.exists()


def fi_magic():
    from split_vae.metrics.pth import LEGACY_MAGIC
    return LEGACY_MAGIC


@pytest.mark.parametrize("zip_format", [True, False])
def test_pth_truncated_or_corrupt_is_a_clear_error(tmp_path, zip_format):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.randn(64, 64)}, path, _use_new_zipfile_serialization=zip_format)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r"(?s)cannot read .*w\.pth as a PyTorch state dict.*"
                                         r"truncated, corrupt or not a weights file"):
        read_state_dict(path)
    path.write_bytes(b"not a weights file at all" * 10)
    with pytest.raises(ValueError, match="cannot read"):
        read_state_dict(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pth")


def test_pth_refuses_a_pickle_that_is_no_state_dict(tmp_path):
    torch.save([torch.ones(2)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        read_state_dict(tmp_path / "list.pth")


# ---------------------------------------------------------------------------
# The network and its loader
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return fi.build_fid_inception()


def _state_for(model, seed=0):
    """A random state dict in the weights file's layout (PyTorch shapes)."""
    rng = np.random.default_rng(seed)
    state = {}
    for layer in model.layers:
        key = layer.name.replace("__", ".")
        if isinstance(layer, keras.layers.Conv2D):
            h, w, cin, cout = layer.kernel.shape
            state[f"{key}.weight"] = rng.normal(size=(cout, cin, h, w)).astype("float32")
        elif isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            for k in ("weight", "bias", "running_mean"):
                state[f"{key}.{k}"] = rng.normal(size=n).astype("float32")
            state[f"{key}.running_var"] = rng.uniform(0.5, 2, size=n).astype("float32")
            state[f"{key}.num_batches_tracked"] = np.array(0)
    state["fc.weight"] = np.zeros((1008, 2048), "float32")
    state["fc.bias"] = np.zeros(1008, "float32")
    return state


def test_network_has_pytorch_fids_structure(model):
    # 94 conv + BatchNorm pairs and 21,820,000 weights: pytorch-fid's
    # Inception without its head, counted with torchvision 0.28.
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(convs) == len(bns) == 94
    assert model.count_params() == 21_820_000
    assert all(b.scale and b.center and b.epsilon == 1e-3 for b in bns)
    assert not any(c.use_bias for c in convs)
    assert tuple(model.outputs[0].shape) == (None, 2048)
    # The pools: padding-excluding 3x3 averages ("same"), and Mixed_7c's max.
    avg = [l for l in model.layers if isinstance(l, keras.layers.AveragePooling2D)]
    assert len(avg) == 3 + 4 + 1 and all(l.padding == "same" for l in avg)
    assert not any(isinstance(l, keras.layers.ZeroPadding2D) for l in model.layers)
    pool_7c = model.get_layer("Mixed_7c__branch_pool__conv").input._keras_history.operation
    assert isinstance(pool_7c, keras.layers.MaxPooling2D) and pool_7c.strides == (1, 1)
    pool_7b = model.get_layer("Mixed_7b__branch_pool__conv").input._keras_history.operation
    assert isinstance(pool_7b, keras.layers.AveragePooling2D)


def test_keras_same_average_pool_excludes_the_padding():
    # The property the 2015 graph needs (PyTorch's count_include_pad=False): a
    # constant map stays constant at its borders.
    x = np.ones((1, 5, 5, 1), "float32")
    y = keras.layers.AveragePooling2D(3, strides=1, padding="same")(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), 1.0, rtol=1e-6)


def test_loader_maps_pytorch_layouts(model):
    state = _state_for(model)
    fi.load_state_dict(model, state)
    conv = model.get_layer("Mixed_6b__branch7x7_2__conv")  # a (1, 7) kernel
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(conv.kernel),
        state["Mixed_6b.branch7x7_2.conv.weight"].transpose(2, 3, 1, 0))
    bn = model.get_layer("Conv2d_1a_3x3__bn")
    for w, k in zip(bn.get_weights(), ("weight", "bias", "running_mean", "running_var")):
        np.testing.assert_array_equal(w, state[f"Conv2d_1a_3x3.bn.{k}"])


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("fc.weight"), "has no fc.weight: .*1008-class head is missing"),
    (lambda s: s.update({"fc.bias": np.zeros(1000, "float32")}),
     r"fc.bias is not of shape \(1008,\)"),
    (lambda s: s.pop("Mixed_7c.branch_pool.bn.running_var"),
     "has no Mixed_7c.branch_pool.bn.running_var"),
    (lambda s: s.update({"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 3, 2), "float32")}),
     r"Conv2d_1a_3x3.conv.weight has shape \(32, 3, 3, 2\), the network needs "
     r"\(32, 3, 3, 3\)"),
    (lambda s: s.update({"AuxLogits.fc.weight": np.zeros(3, "float32")}),
     "1 tensors the network does not take \\(AuxLogits.fc.weight\\)"),
])
def test_loader_names_what_is_wrong(model, change, message):
    state = _state_for(model)
    change(state)
    with pytest.raises(ValueError, match=message):
        fi.load_state_dict(model, state, source="w.pth")


# ---------------------------------------------------------------------------
# The extractor: protocol, names, hash, cache
# ---------------------------------------------------------------------------
def _extractor(model, digest="0" * 64, path="w.pth"):
    return fi.FIDInceptionExtractor(model, path, digest, batch_size=4)


def test_input_is_rounded_to_uint8_as_pytorch_fid_reads_png(model):
    ext = _extractor(model)
    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 8, 1)).astype("float32")
    quantized = np.rint(x * 255) / 255
    a = keras.ops.convert_to_numpy(ext.preprocess(x))
    b = keras.ops.convert_to_numpy(ext.preprocess(quantized))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 299, 299, 3) and a.min() >= -1 and a.max() <= 1
    # Off by half a grey level from a uint8 value: rounding moves it back.
    off = keras.ops.convert_to_numpy(ext.preprocess(quantized + 0.49 / 255))
    np.testing.assert_allclose(off, b, atol=1e-6)
    assert ext.preprocessing()["quantize"] == "uint8"
    # Black is -1 and white +1 (pytorch-fid's 2x - 1); grey repeated to RGB.
    ends = keras.ops.convert_to_numpy(ext.preprocess(np.stack([np.zeros((8, 8, 1)),
                                                               np.ones((8, 8, 1))])))
    np.testing.assert_array_equal(ends[0], -1.0)
    np.testing.assert_array_equal(ends[1], 1.0)


def test_only_the_published_weights_give_fid_and_kid(model):
    published = _extractor(model, digest=fi.WEIGHTS_SHA256_PREFIX + "0" * 56,
                           path=fi.WEIGHTS_FILE)
    assert published.name == "fid-inception"
    assert (published.metric_name, published.protocol, published.kid_name) == (
        "FID", "FID, pytorch-fid protocol", "KID")
    other = _extractor(model, digest="6726825e" + "0" * 56, path="/x/random.pth")
    assert other.name == "fid-inception:random.pth"
    assert other.metric_name == "FD" and other.kid_name == "KD in fid-inception:random.pth"
    assert "FID" not in other.protocol and "not an FID" in other.note


def test_hash_prefix_in_the_name_is_checked(tmp_path):
    good = tmp_path / "w.bin"
    good.write_bytes(b"weights")
    import hashlib
    digest = hashlib.sha256(b"weights").hexdigest()
    named = tmp_path / f"pt_inception-2015-12-05-{digest[:8]}.pth"
    named.write_bytes(b"weights")
    assert fi.check_hash(str(named)) == digest
    wrong = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    wrong.write_bytes(b"weights")
    with pytest.raises(ValueError, match=f"damaged: its SHA-256 starts with {digest[:8]}, "
                                         "its name says 6726825d"):
        fi.check_hash(str(wrong))
    assert fi.check_hash(str(good)) == digest  # no hash in the name: not checked


def test_download_checks_the_hash_and_writes_atomically(tmp_path):
    import hashlib
    src = tmp_path / "src.pth"
    src.write_bytes(b"fid weights")
    digest = hashlib.sha256(b"fid weights").hexdigest()
    target = tmp_path / "cache" / f"pt_inception-{digest[:8]}.pth"
    fi.download_weights(src.as_uri(), str(target))
    assert target.read_bytes() == b"fid weights"
    assert (tmp_path / "cache" / (target.name + ".sha256")).read_text().strip() == digest
    bad = tmp_path / "cache" / "pt_inception-6726825d.pth"
    with pytest.raises(ValueError, match=r"could not download .*SHA-256 .*not 6726825d"):
        fi.download_weights(src.as_uri(), str(bad))
    assert sorted(os.listdir(tmp_path / "cache")) == [target.name, target.name + ".sha256"]
    with pytest.raises(ValueError, match="put it in .*--extractor PATH.pth"):
        fi.download_weights((tmp_path / "absent.pth").as_uri(), str(bad))


def test_fid_inception_name_uses_the_cache(tmp_path, monkeypatch):
    from split_vae.metrics import get_extractor
    monkeypatch.setenv("SPLIT_VAE_CACHE_DIR", str(tmp_path))
    asked = []

    def no_network(url=fi.WEIGHTS_URL, path=None):
        asked.append(path)
        raise ValueError("no network here")

    monkeypatch.setattr(fi, "download_weights", no_network)
    with pytest.raises(ValueError, match="no network here"):
        get_extractor("fid-inception")
    assert asked == [os.path.join(str(tmp_path), "weights", fi.WEIGHTS_FILE)]
    # A file in the cache whose content is not the published one: refused.
    os.makedirs(tmp_path / "weights")
    (tmp_path / "weights" / fi.WEIGHTS_FILE).write_bytes(b"something else")
    with pytest.raises(ValueError, match="damaged"):
        get_extractor("fid-inception")
    with pytest.raises(FileNotFoundError, match="missing.pth does not exist"):
        get_extractor(str(tmp_path / "missing.pth"))


def test_extractor_reads_a_saved_state_dict_end_to_end(tmp_path, model):
    state = _state_for(model, seed=1)
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
               tmp_path / "random.pth", _use_new_zipfile_serialization=False)
    ext = fi.fid_inception_extractor(str(tmp_path / "random.pth"))
    conv = ext.model.get_layer("Mixed_5b__branch5x5_2__conv")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv.kernel),
                                  state["Mixed_5b.branch5x5_2.conv.weight"].transpose(2, 3, 1, 0))
    assert ext.name == "fid-inception:random.pth" and ext.dim == 2048
