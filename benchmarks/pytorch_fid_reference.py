"""pytorch-fid's own code as the reference for our `fid-inception` extractor.

pytorch-fid (https://github.com/mseitzer/pytorch-fid) downloads its weights
when its network is built; there is no network here, so its
`fid_inception_v3` is built with a random state dict instead, and the
BatchNorm statistics are calibrated on images (random statistics make the
2048 features of so deep a network practically constant, which would hide
a wrong layer). The same state dict, saved as a .pth file, is what our
extractor loads. tests/test_fid_parity.py uses these functions; run as a
script, this compares pytorch-fid's `fid_score` on two image folders (e.g.
two `python -m split_vae generate` outputs) with our number:

    pip install --no-deps "torchvision==0.28.*" pytorch-fid
    python benchmarks/pytorch_fid_reference.py --weights /tmp/random_fid.pth \\
        --write-random-weights
    python benchmarks/pytorch_fid_reference.py --weights /tmp/random_fid.pth \\
        DIR_A/x_hat DIR_B/x_hat

Installing: the registries here have no CPU build of torchvision, and
`pip install pytorch-fid` would pull a CUDA torch of several GB. torchvision
0.28 beside the CPU torch 2.13 imports once the registrations of its
compiled operators (which need its C++ library) are skipped; the Inception
modules pytorch-fid uses are pure Python.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def import_pytorch_fid():
    """pytorch_fid.inception, with torchvision's compiled-op registrations
    (`torch.library.register_fake("torchvision::...")`) skipped during import.
    ImportError when torch, torchvision or pytorch-fid is missing."""
    import torch

    original = torch.library.register_fake

    def register_fake(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            return lambda fn=None, *a, **k: fn
        return original(op, *args, **kwargs)

    torch.library.register_fake = register_fake
    try:
        import torchvision  # noqa: F401
        from pytorch_fid import inception
    finally:
        torch.library.register_fake = original
    return inception


def to_torch(images_u8):
    """uint8 images (N, H, W, C) -> float (N, 3, H, W) in [0, 1], as
    pytorch-fid's ToTensor of an RGB-converted PNG gives them."""
    import torch

    x = torch.from_numpy(np.asarray(images_u8, dtype=np.float32) / 255.0).permute(0, 3, 1, 2)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def random_pytorch_fid(calibration_u8, seed: int = 0):
    """(pytorch-fid's InceptionV3 wrapper, its Inception's state dict).

    The network is pytorch-fid's `fid_inception_v3()` (its patched blocks),
    its state dict random (BatchNorm scales in [0.5, 1.5], offsets ~N(0,
    0.2)), with the running statistics of every BatchNorm set to those of
    the calibration images (one pass in training mode, cumulative average).
    The state dict has the weights file's keys, the 1008-class head included.
    """
    import torch

    inception = import_pytorch_fid()
    import torchvision  # imported (by import_pytorch_fid) once its registrations are skipped

    torch.manual_seed(seed)
    donor = torchvision.models.inception_v3(num_classes=1008, aux_logits=False,
                                            init_weights=False, weights=None)
    state = donor.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            if key.endswith("bn.weight"):
                value.uniform_(0.5, 1.5)
            elif key.endswith("bn.bias"):
                value.normal_(0.0, 0.2)
    download, build = inception.load_state_dict_from_url, inception.fid_inception_v3
    try:
        inception.load_state_dict_from_url = lambda *a, **k: state
        net = inception.fid_inception_v3()
        inception.fid_inception_v3 = lambda: net
        wrapper = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    finally:
        inception.load_state_dict_from_url, inception.fid_inception_v3 = download, build
    for m in wrapper.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative: one batch sets the statistics
    wrapper.train()
    with torch.no_grad():
        wrapper(to_torch(calibration_u8))
    wrapper.eval()
    return wrapper, net.state_dict()


def pytorch_fid_features(wrapper, images_u8) -> np.ndarray:
    """pytorch-fid's 2048 features of uint8 images (its resize and scaling)."""
    import torch

    with torch.no_grad():
        return wrapper(to_torch(images_u8))[0][:, :, 0, 0].numpy().astype(np.float64)


def calibration_images(n: int = 16, size: int = 32, channels: int = 3, seed: int = 0):
    """Blocky colour fields with noise, uint8: enough variety for BatchNorm."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 4, 4, channels))
    x = np.kron(coarse, np.ones((1, size // 4, size // 4, 1)))
    x = 0.6 * x + 0.4 * rng.random((n, size, size, channels))
    return np.rint(255 * x).astype(np.uint8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help=".pth file of random calibrated weights")
    p.add_argument("--write-random-weights", action="store_true",
                   help="write the weights file (pytorch-fid's network, random, calibrated)")
    p.add_argument("folders", nargs="*", help="two folders of PNG images")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--parity", action="store_true",
                   help="print the parity test's numbers under this KERAS_BACKEND")
    args = p.parse_args(argv)
    import torch

    if args.parity:
        return parity(args.weights)

    if args.write_random_weights:
        _, state = random_pytorch_fid(calibration_images(32))
        torch.save(state, args.weights)
        print(f"wrote {args.weights}")
    if not args.folders:
        return 0
    if len(args.folders) != 2:
        p.error("give two folders")
    inception = import_pytorch_fid()
    from pytorch_fid import fid_score

    state = torch.load(args.weights)
    download = inception.load_state_dict_from_url
    inception.load_state_dict_from_url = lambda *a, **k: state
    try:
        theirs = fid_score.calculate_fid_given_paths(
            args.folders, args.batch_size, "cpu", 2048, num_workers=0)
        model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
        their_feats = [fid_score.get_activations(
            sorted(os.path.join(f, n) for n in os.listdir(f) if n.endswith(".png")),
            model, args.batch_size, 2048, "cpu", num_workers=0) for f in args.folders]
    finally:
        inception.load_state_dict_from_url = download

    from split_vae.metrics import fid_from_features, get_extractor

    ext = get_extractor(args.weights, batch_size=args.batch_size)
    feats = [ext.features(read_png_folder(f)) for f in args.folders]
    err = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(feats, their_feats))
    ours = fid_from_features(*feats)
    ours_on_theirs = fid_from_features(*their_feats)
    theirs_on_ours = fid_score.calculate_frechet_distance(
        *(stat for f in feats for stat in (f.mean(0), np.cov(f, rowvar=False))))
    print(f"images per folder: {len(feats[0])}, {len(feats[1])}")
    print(f"features, largest difference relative to the largest feature: {err:.2e}")
    print(f"pytorch-fid fid_score (its features, its Fréchet function): {theirs:.6f}")
    print(f"its Fréchet function on our features:                       {theirs_on_ours:.6f}")
    print(f"our Fréchet function on its features:                       {ours_on_theirs:.6f}")
    print(f"split_vae {ext.name} (our features, our function):  {ours:.6f}")
    print(f"relative difference, fid_score vs ours: {abs(ours - theirs) / abs(theirs):.2e}")
    return 0


def parity(path: str) -> int:
    """The numbers tests/test_fid_parity.py checks, printed (weights saved to path)."""
    import torch

    wrapper, state = random_pytorch_fid(calibration_images(16, seed=1))
    torch.save(state, path)
    import keras

    from split_vae.metrics import fid_from_features, get_extractor

    sets = {"rgb": calibration_images(6, channels=3, seed=2),
            "gray": calibration_images(6, size=24, channels=1, seed=3)}
    ext = get_extractor(path, batch_size=6)
    theirs = {k: pytorch_fid_features(wrapper, v) for k, v in sets.items()}
    ours = {k: ext.features(v / 255.0, progress=False).astype(np.float64)
            for k, v in sets.items()}
    for k in sets:
        err = np.abs(ours[k] - theirs[k]).max() / np.abs(theirs[k]).max()
        print(f"{keras.backend.backend()} features {k}: {err:.2e}")
    a, b = fid_from_features(*theirs.values()), fid_from_features(*ours.values())
    print(f"{keras.backend.backend()} FD theirs {a:.6f} ours {b:.6f} relative "
          f"{abs(a - b) / a:.2e}")
    return 0


def read_png_folder(folder):
    """The PNG files of a folder, sorted by name, as float images in [0, 1]."""
    from PIL import Image

    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))
    images = [np.asarray(Image.open(os.path.join(folder, n))) for n in names]
    x = np.stack(images).astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
