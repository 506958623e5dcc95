"""Preset directories, the registry of published weights, from_pretrained and convert-legacy."""

import datetime
import json
import os
import re
import shutil
import time

import keras
import numpy as np
import pytest

import keras2_original as k2o
from helpers import ROOT, assert_same_outputs, perturbed_weights, run_cli, tiny_config
from split_vae import SplitVAE, SplitVAEConfig, get_preset, load_legacy_h5
from split_vae import cli, loader, presets
from split_vae.presets import (CONFIG_FILE, METADATA_FILE, REGISTRY, WEIGHTS_FILE,
                               PretrainedWeights, WeightsUnavailableError)
from split_vae.fileio import sha256_file

TOL = 1e-5
SMALL = tiny_config(latent_dim=8, emb_dim=32, dataset="digits")
ARCH = dict(image_shape=(16, 16, 3), latent_dim=8, base_dim=8, emb_dim=32, kernel_size=3,
            num_scale=2, block_per_scale=1, depth_per_block=2)


def _images(shape, n=4, seed=0):
    return np.random.default_rng(seed).random((n,) + tuple(shape)).astype("float32")


def _trained_like(config=SMALL, seed=0):
    """A model whose weights are not the initial ones (BatchNorm statistics too)."""
    return perturbed_weights(SplitVAE(config), seed=seed)


@pytest.fixture(scope="module")
def legacy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("legacy") / "tiny_split.hdf5"
    parts = k2o.write_checkpoint(path, seed=7, **ARCH)
    return path, parts


def _assert_matches_keras2(model, parts):
    images = _images(ARCH["image_shape"])
    z = np.random.default_rng(2).standard_normal((4, ARCH["latent_dim"])).astype("float32")
    ref_mean, ref_logvar, ref_dec = k2o.reference_outputs(parts, images, z, 3)
    z_mean, z_log_var = model.encode(images)
    np.testing.assert_allclose(z_mean, ref_mean, atol=TOL, rtol=0)
    np.testing.assert_allclose(z_log_var, ref_logvar, atol=TOL, rtol=0)
    decoded = model.decode(z)
    for key, value in ref_dec.items():
        np.testing.assert_allclose(decoded[key], value, atol=TOL, rtol=0)


# ---------------------------------------------------------------------------
# save_to_preset / from_preset
# ---------------------------------------------------------------------------
def test_preset_directory_round_trip(tmp_path):
    model = _trained_like()
    out = tmp_path / "preset"
    assert model.save_to_preset(out) == str(out)
    assert sorted(os.listdir(out)) == sorted([CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE])

    with open(out / CONFIG_FILE) as f:
        assert json.load(f) == SMALL.to_dict()
    with open(out / METADATA_FILE) as f:
        meta = json.load(f)
    assert meta["keras_version"] == keras.__version__
    assert meta["parameter_count"] == model.count_params()
    assert meta["dataset"] == "digits"
    assert meta["weights_sha256"] == sha256_file(out / WEIGHTS_FILE)
    when = datetime.datetime.fromisoformat(meta["date"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 600

    loaded = SplitVAE.from_preset(str(out))
    assert loaded.config == SMALL
    assert float(loaded.gamma) == pytest.approx(0.0123)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert_same_outputs(model, loaded, atol=TOL)
    # A fresh model of the same config differs: the weights were really loaded.
    fresh = SplitVAE(SMALL)
    assert not np.allclose(fresh.encode(_images(SMALL.image_shape))[0],
                           loaded.encode(_images(SMALL.image_shape))[0], atol=1e-3)


def test_dataset_and_source_recorded(tmp_path):
    _trained_like().save_to_preset(tmp_path / "p", dataset="mnist", source={"from": "x"})
    with open(tmp_path / "p" / METADATA_FILE) as f:
        meta = json.load(f)
    assert meta["dataset"] == "mnist" and meta["source"] == {"from": "x"}


def test_builtin_preset_names_keep_working():
    model = SplitVAE.from_preset("digits")
    assert model.config == get_preset("digits")
    with pytest.raises(ValueError, match=r"cannot read a model from 'no_such_preset'.*"
                                         r"presets: \[.*'digits'"):
        SplitVAE.from_preset("no_such_preset")


def test_legacy_to_preset_to_model(legacy_file, tmp_path):
    path, parts = legacy_file
    legacy = load_legacy_h5(path)
    legacy.save_to_preset(tmp_path / "converted")
    model = SplitVAE.from_preset(str(tmp_path / "converted"))
    assert model.config == legacy.config
    _assert_matches_keras2(model, parts)


def test_interrupted_save_keeps_the_previous_preset(tmp_path, monkeypatch):
    out = tmp_path / "preset"
    first = _trained_like(seed=0)
    first.save_to_preset(out)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}

    second = _trained_like(seed=1)

    def crash(path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(second, "save_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        second.save_to_preset(out)
    after = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert after == before            # no temporary file left, nothing replaced
    assert_same_outputs(first, SplitVAE.from_preset(str(out)), atol=TOL)


# ---------------------------------------------------------------------------
# Broken preset directories
# ---------------------------------------------------------------------------
@pytest.fixture()
def saved(tmp_path):
    out = tmp_path / "preset"
    _trained_like().save_to_preset(out)
    return out


def _edit_json(path, **changes):
    with open(path) as f:
        data = json.load(f)
    data.update(changes)
    with open(path, "w") as f:
        json.dump(data, f)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such preset directory"):
        presets.load_preset_dir(tmp_path / "absent", SplitVAE)


def test_directory_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        SplitVAE.from_preset(str(tmp_path))


def test_builtin_name_wins_over_a_directory_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "digits").mkdir()
    monkeypatch.chdir(tmp_path)
    assert SplitVAE.from_preset("digits").config == get_preset("digits")
    # An explicit path means the directory, which here is no preset.
    with pytest.raises(FileNotFoundError, match="no config.json"):
        SplitVAE.from_preset("./digits")


def test_each_reader_gives_a_bare_builtin_name_its_own_meaning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                          # no directory named digits here
    assert SplitVAE.from_preset("digits").config == get_preset("digits")
    with pytest.raises(ValueError, match=r"without published weights: use "
                                         r"SplitVAE\.from_preset\('mnist'\)"):
        SplitVAE.from_pretrained("mnist")             # digits ships trained weights
    with pytest.warns(UserWarning, match="UNTRAINED"):
        model, description = loader.for_evaluation(SplitVAE, "digits")
    assert description == "untrained preset digits"
    assert model.config == get_preset("digits")
    for read in (SplitVAE.from_preset, SplitVAE.from_pretrained):
        with pytest.raises(ValueError, match="named by a string or a path, received int"):
            read(3)


def test_missing_weights(saved):
    os.remove(saved / WEIGHTS_FILE)
    with pytest.raises(FileNotFoundError, match="has no model.weights.h5"):
        SplitVAE.from_preset(str(saved))


def test_invalid_json(saved):
    (saved / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        SplitVAE.from_preset(str(saved))


def test_unknown_or_invalid_config_field(saved):
    _edit_json(saved / CONFIG_FILE, colour="blue")
    with pytest.raises(ValueError, match=r"config.json: unknown SplitVAEConfig fields: \['colour'\]"):
        SplitVAE.from_preset(str(saved))
    _edit_json(saved / CONFIG_FILE, colour=None)
    with open(saved / CONFIG_FILE) as f:
        data = json.load(f)
    del data["colour"]
    data["image_shape"] = [15, 15, 1]
    (saved / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"config.json: image side must be 4 \* 2\*\*k"):
        SplitVAE.from_preset(str(saved))


def test_config_not_matching_weights(saved):
    _edit_json(saved / CONFIG_FILE, base_dim=16)
    with pytest.raises(ValueError, match="parameters but .*metadata.json says"):
        SplitVAE.from_preset(str(saved))
    os.remove(saved / METADATA_FILE)       # without metadata, Keras's check speaks
    with pytest.raises(ValueError, match=r"model.weights.h5 does not fit the network of .*config.json"):
        SplitVAE.from_preset(str(saved))


def test_weights_from_another_save(saved, tmp_path):
    _trained_like(seed=5).save_to_preset(tmp_path / "other")
    shutil.copy(tmp_path / "other" / WEIGHTS_FILE, saved / WEIGHTS_FILE)
    with pytest.raises(ValueError, match="SHA-256 differs"):
        SplitVAE.from_preset(str(saved))


def test_preset_dir_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        _trained_like().save_to_preset(tmp_path / "file")


# ---------------------------------------------------------------------------
# convert-legacy
# ---------------------------------------------------------------------------
def test_convert_legacy_command(legacy_file, tmp_path):
    path, parts = legacy_file
    out = tmp_path / "converted"
    proc = run_cli("convert-legacy", path, out, "--dataset", "cifar10", timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "latent_dim=8" in proc.stdout and "split=True" in proc.stdout
    model = SplitVAE.from_preset(str(out))
    assert model.config.dataset == "cifar10"
    _assert_matches_keras2(model, parts)
    with open(out / METADATA_FILE) as f:
        meta = json.load(f)
    assert meta["source"] == {"legacy_file": "tiny_split.hdf5",
                              "legacy_sha256": sha256_file(path)}
    assert meta["dataset"] == "cifar10"


def test_convert_legacy_errors(legacy_file, tmp_path, capsys):
    path, _ = legacy_file
    out = tmp_path / "converted"
    assert cli.main(["convert-legacy", str(path), str(out)]) == 0
    assert cli.main(["convert-legacy", str(path), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["convert-legacy", str(path), str(out), "--overwrite"]) == 0

    assert cli.main(["convert-legacy", str(path), str(tmp_path / "x"), "--preset", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"conv2d/kernel:0.*\(3, 3, 3, 8\).*\(3, 3, 3, 64\)", err), err
    assert not os.path.exists(tmp_path / "x")

    bad = tmp_path / "bad.hdf5"
    bad.write_text("nope")
    assert cli.main(["convert-legacy", str(bad), str(tmp_path / "y")]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err
    assert cli.main(["convert-legacy", str(tmp_path / "absent.hdf5"), str(tmp_path / "y")]) == 2
    assert "IN.hdf5 " + str(tmp_path / "absent.hdf5") + ": no such file" in \
        capsys.readouterr().err


# ---------------------------------------------------------------------------
# The registry and from_pretrained
# ---------------------------------------------------------------------------
def test_registry_entries_are_well_formed():
    assert len(REGISTRY) >= 3
    for name, entry in REGISTRY.items():
        assert entry.name == name
        assert entry.url.startswith("https://www.cs.unibo.it/~asperti/VAEcheckpoint/")
        assert entry.filename.endswith(".hdf5")
        assert entry.dataset in ("mnist", "cifar10", "celeba")
        # Nobody computed these files' hashes here: none may be claimed.
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.config is None or isinstance(entry.config, SplitVAEConfig)


def test_weights_readme_lists_every_entry():
    with open(os.path.join(ROOT, "weights", "README.md")) as f:
        text = f.read()
    for name, entry in REGISTRY.items():
        assert name in text and entry.url in text
    claimed = set(re.findall(r"\b[0-9a-f]{64}\b", text))
    known = {e.sha256 for e in REGISTRY.values() if e.sha256}
    assert claimed <= known, f"README claims hashes the registry does not record: {claimed - known}"
    assert "estimate_gamma" in text and "convert-legacy" in text


@pytest.fixture()
def fake_entry(monkeypatch, legacy_file, tmp_path):
    """A registry entry for the tiny legacy file, served from a file:// URL."""
    path, _ = legacy_file
    served = tmp_path / "server" / "tiny_split.hdf5"
    served.parent.mkdir()
    shutil.copy(path, served)
    entry = PretrainedWeights(name="tiny", url=served.as_uri(), dataset="cifar10",
                              description="test")
    monkeypatch.setitem(REGISTRY, "tiny", entry)
    monkeypatch.delenv(presets.OFFLINE_ENV, raising=False)
    return entry, served, tmp_path / "cache"


def test_from_pretrained_downloads_once(fake_entry, legacy_file):
    entry, served, cache = fake_entry
    _, parts = legacy_file
    model = SplitVAE.from_pretrained("tiny", cache_dir=cache)
    cached = cache / "tiny_split.hdf5"    # cache_dir: the folder the file goes in
    assert cached.is_file() and sha256_file(cached) == sha256_file(served)
    _assert_matches_keras2(model, parts)
    # The preset's training fields, the file's architecture.
    assert model.config.beta == get_preset("cifar10").beta
    assert model.config.dataset == "cifar10" and model.config.base_dim == 8

    os.remove(served)                     # a second call must not download
    _assert_matches_keras2(SplitVAE.from_pretrained("tiny", cache_dir=cache), parts)


def test_from_pretrained_offline_fails_at_once(monkeypatch, tmp_path):
    entry = PretrainedWeights(name="remote", url="https://example.invalid/ckpt/remote.hdf5",
                              dataset="celeba", description="test")
    monkeypatch.setitem(REGISTRY, "remote", entry)
    target = str(tmp_path / "remote.hdf5")
    for offline in ("1", None):
        if offline:
            monkeypatch.setenv(presets.OFFLINE_ENV, offline)
        else:
            monkeypatch.delenv(presets.OFFLINE_ENV, raising=False)
        start = time.monotonic()
        with pytest.raises(WeightsUnavailableError) as info:
            SplitVAE.from_pretrained("remote", cache_dir=tmp_path)
        assert time.monotonic() - start < 15
        assert entry.url in str(info.value) and target in str(info.value)
    assert not os.path.exists(target)


def test_from_pretrained_caches_under_the_split_vae_cache_root(fake_entry, legacy_file,
                                                              monkeypatch):
    # One cache root for everything split_vae keeps: $SPLIT_VAE_CACHE_DIR/weights.
    _, served, cache = fake_entry
    monkeypatch.setenv("SPLIT_VAE_CACHE_DIR", str(cache))
    monkeypatch.setenv("KERAS_HOME", str(cache / "keras_home"))
    _assert_matches_keras2(SplitVAE.from_pretrained("tiny"), legacy_file[1])
    assert sha256_file(cache / "weights" / "tiny_split.hdf5") == sha256_file(served)
    assert presets.cached_path("tiny") == str(cache / "weights" / "tiny_split.hdf5")
    assert not os.path.exists(cache / "keras_home")


def test_from_pretrained_checks_a_recorded_hash(fake_entry, monkeypatch):
    entry, served, cache = fake_entry
    good = PretrainedWeights(**{**entry.__dict__, "sha256": sha256_file(served)})
    monkeypatch.setitem(REGISTRY, "tiny", good)
    SplitVAE.from_pretrained("tiny", cache_dir=cache)
    bad = PretrainedWeights(**{**entry.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(REGISTRY, "tiny", bad)
    with pytest.raises(ValueError, match=r"SHA-256 [0-9a-f]{64}, but the registry records 0{64}"):
        SplitVAE.from_pretrained("tiny", cache_dir=cache)


def test_from_pretrained_paths(legacy_file, tmp_path):
    path, parts = legacy_file
    _assert_matches_keras2(SplitVAE.from_pretrained(str(path)), parts)
    load_legacy_h5(path).save_to_preset(tmp_path / "dir")
    _assert_matches_keras2(SplitVAE.from_pretrained(tmp_path / "dir"), parts)
    with pytest.raises(ValueError, match="Keras 3 weights file"):
        SplitVAE.from_pretrained(str(tmp_path / "dir" / WEIGHTS_FILE))
    with pytest.raises(FileNotFoundError, match="no such file"):
        SplitVAE.from_pretrained(str(tmp_path / "absent.hdf5"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        SplitVAE.from_pretrained(tmp_path / "absent")


def test_from_pretrained_unknown_names():
    with pytest.raises(ValueError, match=r"from_preset\('mnist'\)"):
        SplitVAE.from_pretrained("mnist")
    with pytest.raises(ValueError, match="published weights: .*celeba_split_two"):
        SplitVAE.from_pretrained("no_such_weights")
