"""Every model variant goes through the same round trips (keras-hub style):
its configuration through JSON and get_config, one fit step, a .keras file,
and a preset directory. A variant is a set of changes to the tiny
configuration; add one here and it is tested like the others."""

import pytest

from helpers import (assert_config_round_trip, assert_keras_round_trip, assert_same_outputs,
                     fit_one_step, tiny_config, tiny_images, tiny_model)
from split_vae import SplitVAE, presets

VARIANTS = {
    "split": {},
    "vanilla": {"split": False},
    "rgb": {"image_shape": (16, 16, 3)},
    "deeper": {"num_scale": 3, "block_per_scale": 2, "depth_per_block": 1},
    "mixed_bfloat16": {"precision": "mixed_bfloat16"},
    # K components (docs/components.md): softmax maps, a shared or specialised decoder.
    # (K = 2 specialised is round-tripped untrained in test_components.py.)
    "k3_entropy": {"components": 3, "map_entropy": 0.05},
    "k3_rgb_specialized": {"components": 3, "specialized": True, "image_shape": (16, 16, 3)},
}


@pytest.fixture(params=sorted(VARIANTS), scope="module")
def trained(request):
    """(variant name, a model of the variant after one fit step)."""
    model = tiny_model(**VARIANTS[request.param])
    fit_one_step(model, tiny_images(32, model.image_shape))
    return request.param, model


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_config_round_trips(variant):
    assert_config_round_trip(tiny_config(**VARIANTS[variant]))


def test_keras_file_round_trips(trained, tmp_path):
    _, model = trained
    loaded = assert_keras_round_trip(model, tmp_path / "m.keras")
    # The optimizer state travels too: training can go on where it stopped.
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())


def test_preset_directory_round_trips(trained, tmp_path):
    _, model = trained
    presets.save_to_preset(model, tmp_path / "preset")
    assert_same_outputs(SplitVAE.from_preset(str(tmp_path / "preset")), model)


def test_decoder_parts_match_the_variant(trained):
    name, model = trained
    h, w, c = model.image_shape
    parts = model.decode(model.encode(tiny_images(3, model.image_shape))[0])
    k = model.config.components
    expected = {"x_hat": (3, h, w, c)} if name == "vanilla" else {
        "sigma": (3, h, w, 1), "x1": (3, h, w, c), "x2": (3, h, w, c), "x_hat": (3, h, w, c)}
    if name != "vanilla" and k > 2:
        expected = {"x_hat": (3, h, w, c), **{f"sigma{i}": (3, h, w, 1) for i in range(1, k + 1)},
                    **{f"x{i}": (3, h, w, c) for i in range(1, k + 1)}}
    assert {key: v.shape for key, v in parts.items()} == expected
