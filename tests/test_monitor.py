"""The split while it trains: grids every N epochs, TensorBoard events read back
with TensorBoard's own reader, the chief alone writing, `train`'s flags."""

import io
import json
import os

import matplotlib

matplotlib.use("Agg")  # render off-screen; the library forces no backend

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import TINY_TRAIN_FLAGS, run_cli, tiny_images, tiny_model  # noqa: E402
from split_vae.monitor import SplitGrids, is_chief  # noqa: E402


def read_events(directory):
    """{tag: [(step, value), ...]} of every summary in a TensorBoard log folder,
    read with TensorBoard's EventAccumulator; images come back as uint8 arrays."""
    import matplotlib.pyplot as plt
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(directory), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        values = []
        for event in acc.Tensors(tag):
            array = tensor_util.make_ndarray(event.tensor_proto)
            if plugin == "images":        # [width, height, PNG bytes]
                png = plt.imread(io.BytesIO(array[2]), format="png")
                value = np.round(png[..., :3] * 255).astype("uint8")
            else:
                value = float(array)
            values.append((event.step, value))
        out[tag] = values
    return out


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:3"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
     True),
    ({"cluster": {"chief": ["c:3"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
     False),
])
def test_the_chief_is_the_chief_task_or_worker_0(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_chief() is chief


def test_grids_every_n_epochs_and_after_the_last(tmp_path):
    model = tiny_model()
    images = tiny_images(3, seed=2)
    grids = SplitGrids(tmp_path / "grids", images=images, n=3, every=2, seed=5,
                       tensorboard_dir=tmp_path / "tb", dataset="blobs")
    model.fit(tiny_images(64), epochs=5, batch_size=32, verbose=0, callbacks=[grids])
    names = sorted(os.listdir(tmp_path / "grids"))
    assert names == [f"epoch_{e:04d}_{k}.png" for e in (2, 4, 5)
                     for k in ("generated", "reconstructed")]
    # the fixed codes: the documented prior draw
    np.testing.assert_array_equal(
        grids.z, np.random.default_rng(5).standard_normal((3, 4)).astype("float32"))
    events = read_events(tmp_path / "tb")
    assert [s for s, _ in events["generated"]] == [2, 4, 5]
    assert [s for s, _ in events["reconstructed"]] == [2, 4, 5]
    assert [s for s, _ in events["split/high_frequency_fraction"]] == [2, 4, 5]
    # TensorBoard holds the very figure of the PNG file
    import matplotlib.pyplot as plt

    png = plt.imread(tmp_path / "grids" / "epoch_0005_reconstructed.png")
    png = np.round(png[..., :3] * 255).astype("uint8")
    np.testing.assert_array_equal(events["reconstructed"][-1][1], png)


def test_only_the_chief_writes_but_every_worker_decodes(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    model = tiny_model()
    calls = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda z, **kw: calls.append(len(z)) or decode(z))
    grids = SplitGrids(tmp_path / "grids", n=2, every=1, tensorboard_dir=tmp_path / "tb")
    model.fit(tiny_images(32), epochs=2, batch_size=32, verbose=0, callbacks=[grids])
    assert calls == [2, 2]
    assert not os.path.exists(tmp_path / "grids") and not os.path.exists(tmp_path / "tb")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="directory"):
        SplitGrids()
    with pytest.raises(ValueError, match="every"):
        SplitGrids("d", every=0)
    with pytest.raises(ValueError, match="grid images"):
        SplitGrids("d", images=np.full((2, 16, 16, 1), np.nan, "float32"))


@pytest.mark.slow
def test_train_writes_grids_and_tensorboard_scalars_images_and_validation(tmp_path):
    out, tb = tmp_path / "run", tmp_path / "tb"
    run_cli("train", *TINY_TRAIN_FLAGS, "--epochs", "3", "--grid-every", "2", "--tensorboard",
        str(tb), "--validation", "test", "--out", str(out), check=True)
    assert sorted(os.listdir(out / "grids")) == [
        f"epoch_{e:04d}_{k}.png" for e in (2, 3) for k in ("generated", "reconstructed")]
    history = json.loads((out / "history.json").read_text())
    train = read_events(tb / "train")
    for name in ("loss", "mse", "kl", "gamma", "kl_weight"):
        got = [v for _, v in train[f"epoch_{name}"]]
        assert got == pytest.approx([row[name] for row in history], rel=1e-6), name
    validation = read_events(tb / "validation")
    for name in ("loss", "mse"):
        got = [v for _, v in validation[f"epoch_{name}"]]
        assert got == pytest.approx([row[f"val_{name}"] for row in history], rel=1e-6)
    images = read_events(tb / "grids")
    assert [s for s, _ in images["generated"]] == [2, 3]
    assert images["reconstructed"][0][1].ndim == 3


def test_validation_flag_values(tmp_path):
    from split_vae.cli.train import parse_validation

    assert parse_validation("none") is None and parse_validation("test") == "test"
    assert parse_validation("0.1") == 0.1
    for bad in ("0", "1", "1.5", "-0.1", "tenth", "nan"):
        with pytest.raises(ValueError, match="--validation"):
            parse_validation(bad)


def test_a_validation_fraction_holds_out_the_end_of_the_training_split():
    import argparse

    from split_vae import data
    from split_vae.cli.train import load_training_data
    from split_vae.config import get_preset

    args = argparse.Namespace(validation="0.25", data_dir=None, limit=96, seed=0)
    config = get_preset("digits").replace(batch_size=32)
    train, held = load_training_data(args, config, "digits")
    first = data.load("digits", "train", as_numpy=True, limit=96)
    np.testing.assert_array_equal(held, first[72:])
    seen = np.concatenate(list(train.as_numpy_iterator()))
    assert len(seen) == 72
    # the training batches hold exactly the other 72 images (shuffled)
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert key(seen) == key(first[:72])
    args.validation, args.limit = "0.001", 96
    with pytest.raises(ValueError, match="leaves no image"):
        load_training_data(args, config, "digits")
