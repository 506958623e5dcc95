"""Our fid-inception extractor against pytorch-fid's own network and preprocessing.

pytorch-fid is built with a random state dict whose BatchNorm statistics are
calibrated on images (benchmarks/pytorch_fid_reference.py); the same state
dict, saved as a .pth file in both of PyTorch's formats, is loaded into ours.
Features of the same uint8 images must agree to 1e-4 (relative to the
largest feature) and the Fréchet distance of two small sets to 1e-3, both
distances computed with the same function. .ci/run runs this file under the
TensorFlow, JAX and PyTorch backends, with SPLIT_VAE_REQUIRE_PYTORCH_FID=1 so
that a missing pytorch-fid fails instead of skipping.
"""

import os
import sys

import numpy as np
import pytest

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import pytorch_fid_reference as ref  # noqa: E402

pytestmark = pytest.mark.slow

FEATURE_RTOL = 1e-4
FID_RTOL = 1e-3


def _require_pytorch_fid():
    try:
        ref.import_pytorch_fid()
    except ImportError as e:
        if os.environ.get("SPLIT_VAE_REQUIRE_PYTORCH_FID") == "1":
            raise
        pytest.skip(f"pytorch-fid is not installed ({e}); see .ci/run")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """pytorch-fid's features of an RGB and a grayscale set, and the weights
    file (zip and legacy formats) of its random calibrated network."""
    _require_pytorch_fid()
    import torch

    wrapper, state = ref.random_pytorch_fid(ref.calibration_images(16, seed=1))
    rgb = ref.calibration_images(6, channels=3, seed=2)
    gray = ref.calibration_images(6, size=24, channels=1, seed=3)
    d = tmp_path_factory.mktemp("pytorch_fid")
    paths = {"zip": str(d / "random_zip.pth"), "legacy": str(d / "random_legacy.pth")}
    torch.save(state, paths["zip"])
    torch.save(state, paths["legacy"], _use_new_zipfile_serialization=False)
    return {"paths": paths, "state": {k: v.numpy() for k, v in state.items()},
            "wrapper": wrapper,
            "rgb": rgb, "gray": gray,
            "theirs": {"rgb": ref.pytorch_fid_features(wrapper, rgb),
                       "gray": ref.pytorch_fid_features(wrapper, gray)}}


@pytest.fixture(scope="module")
def ours(reference):
    from split_vae.metrics import get_extractor

    ext = get_extractor(reference["paths"]["zip"], batch_size=6)
    return {k: ext.features(reference[k] / 255.0, progress=False).astype(np.float64)
            for k in ("rgb", "gray")}


def _relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_both_file_formats_hold_the_state_dict(reference):
    from split_vae.metrics.pth import read_state_dict

    for kind, path in reference["paths"].items():
        read = read_state_dict(path)
        assert list(read) == list(reference["state"]), kind
        for k, v in reference["state"].items():
            assert read[k].dtype == v.dtype and np.array_equal(read[k], v), (kind, k)
    assert read["fc.weight"].shape == (1008, 2048)


def test_calibrated_features_vary_with_the_image(reference):
    # Random BatchNorm statistics give features that hardly depend on the
    # image; calibrated ones must, or the comparison below proves little.
    for kind, f in reference["theirs"].items():
        spread = f.std(axis=0).mean() / np.abs(f).mean()
        assert spread > 0.1, (kind, spread)


@pytest.mark.parametrize("kind", ["rgb", "gray"])
def test_features_equal_pytorch_fids(reference, ours, kind):
    err = _relative(ours[kind], reference["theirs"][kind])
    assert err <= FEATURE_RTOL, f"{kind}: features differ by {err:.2e} (relative)"


def test_frechet_distance_equals_pytorch_fids(reference, ours):
    from split_vae.metrics import fid_from_features

    with pytest.warns(UserWarning, match="singular"):
        theirs = fid_from_features(reference["theirs"]["rgb"], reference["theirs"]["gray"])
        mine = fid_from_features(ours["rgb"], ours["gray"])
    assert theirs > 1.0
    assert abs(mine - theirs) <= FID_RTOL * theirs, (mine, theirs)


def test_pytorch_fid_reads_generates_folders_as_they_are(reference, ours, tmp_path):
    # The PNG files `generate` writes, read by pytorch-fid's own file loader
    # (PIL, RGB, ToTensor), give the features ours gives the same images.
    from pytorch_fid import fid_score

    from split_vae.export import write_samples

    written = write_samples({"x_hat": reference["gray"] / 255.0}, "x_hat", str(tmp_path),
                            progress=False)
    files = sorted(os.path.join(written["folders"]["x_hat"], f)
                   for f in os.listdir(written["folders"]["x_hat"]))
    theirs = fid_score.get_activations(files, reference["wrapper"], batch_size=6, dims=2048,
                                       device="cpu", num_workers=0)
    err = _relative(ours["gray"], theirs)
    assert err <= FEATURE_RTOL, f"features of the PNG files differ by {err:.2e}"
