"""How fast are the evaluation's two slow parts: the extractors and the GMM fit?

Measured in one run, one table:

- images per second of each extractor at its own batch size (inception and
  fid-inception 50, fd-fmnist 500), after one warm-up batch; inception is
  measured untrained (the ImageNet weights cost the same per image) and
  fid-inception with random weights of its shape unless --fid-weights names
  pytorch-fid's file;
- the GMM fit of the presets' sizes (20 components on 32-d codes: MNIST,
  Fashion-MNIST; 100 on 150-d: CelebA; 100 on 200-d: CIFAR-10), full
  covariance, max_iter 200, on --gmm-n synthetic clustered codes:
  `split_vae.sampling.fit_gmm` (with its progress bar) against scikit-learn's
  GaussianMixture called directly, and against the one-iteration-per-call
  loop fit_gmm used before (its extra E-step per iteration cost ~30%).

Usage (the paper's sizes take long on a CPU; reduce them with the flags):
    python benchmarks/evaluation_speed.py --n 1000 --gmm-n 10000
    python benchmarks/evaluation_speed.py --n 100 --gmm-n 2000   # minutes here
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

GMM_SIZES = ((20, 32), (100, 150), (100, 200))  # (components, latent dimension)


def random_fid_weights(path: str) -> str:
    """A .pth file of fid-inception's shapes, random values (a speed test needs no
    trained weights); written with the package's own reader's counterpart, torch."""
    import torch

    from split_vae.metrics.fid_inception import HEAD, build_fid_inception

    model = build_fid_inception()
    rng = np.random.default_rng(0)
    state = {}
    for layer in model.layers:
        key = layer.name.replace("__", ".")
        for name, w in zip(("weight", "bias", "running_mean", "running_var"),
                           layer.get_weights()):
            if w.ndim == 4:
                w = rng.normal(0, 0.05, size=w.shape).transpose(3, 2, 0, 1)
            state[f"{key}.{name}"] = torch.from_numpy(np.ascontiguousarray(w, np.float32))
    for key, shape in HEAD.items():
        state[key] = torch.zeros(shape)
    torch.save(state, path)
    return path


def extractor_rows(names, n: int, fid_weights: str | None):
    from split_vae.metrics import get_extractor

    rows = []
    for name in names:
        spec = {"inception": "inception-random"}.get(name, name)
        if name == "fid-inception":
            spec = fid_weights or random_fid_weights(
                os.path.join(tempfile.mkdtemp(), "random_fid_inception.pth"))
        ext = get_extractor(spec) if name != "fd-fmnist" else get_extractor(spec,
                                                                            batch_size=500)
        shape = (n, 32, 32, 1)  # Fashion-MNIST's padded size, for every extractor
        images = np.random.default_rng(0).random(shape).astype("float32")
        ext.features(images[:ext.batch_size], progress=False)  # warm-up (compiles)
        t = time.perf_counter()
        ext.features(images, progress=False)
        seconds = time.perf_counter() - t
        rows.append((f"extractor {name}", f"batch {ext.batch_size}, {n} images",
                     f"{n / seconds:.1f} img/s", ""))
    return rows


def stepwise_fit(z, k, seed, max_iter=200):
    """The loop fit_gmm ran before: one warm-started EM iteration per fit()."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(k, covariance_type="full", max_iter=1, warm_start=True,
                          random_state=seed)
    for _ in range(max_iter):
        gmm.fit(z)
        if gmm.converged_:
            break
    return gmm


def gmm_rows(n: int, sizes=GMM_SIZES, seed: int = 0):
    from sklearn.mixture import GaussianMixture

    from split_vae.sampling import fit_gmm

    rows = []
    with warnings.catch_warnings():  # warm-up: the first fit of a process pays imports
        warnings.simplefilter("ignore")
        GaussianMixture(2, covariance_type="full").fit(np.random.default_rng(0).random((200, 4)))
    for k, d in sizes:
        # Overlapping clusters, as z_mean's are: EM takes tens of iterations.
        rng = np.random.default_rng(seed)
        centres = rng.normal(0, 0.3, size=(k, d))
        z = centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))
        times = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for label, fit in (
                    ("sklearn", lambda: GaussianMixture(k, covariance_type="full", max_iter=200,
                                                        random_state=seed).fit(z)),
                    ("ours", lambda: fit_gmm(z, k, seed=seed)),
                    ("old loop", lambda: stepwise_fit(z, k, seed))):
                t = time.perf_counter()
                gmm = fit()
                times[label] = (time.perf_counter() - t, gmm.n_iter_)
        s, o, old = times["sklearn"][0], times["ours"][0], times["old loop"][0]
        rows.append((f"GMM {k} components, {d}-d", f"{n} codes, {times['ours'][1]} EM iter",
                     f"ours {o:.1f} s, sklearn {s:.1f} s, old loop {old:.1f} s",
                     f"ours/sklearn {o / s:.2f}, old/sklearn {old / s:.2f}"))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="images per extractor")
    p.add_argument("--gmm-n", type=int, default=10000, help="latent codes per GMM fit")
    p.add_argument("--extractors", default="inception,fid-inception,fd-fmnist")
    p.add_argument("--fid-weights", default=None, help="pytorch-fid's .pth, if at hand")
    p.add_argument("--gmm-sizes", default=",".join(f"{k}x{d}" for k, d in GMM_SIZES),
                   help="components x dimension of each fit, e.g. 20x32,100x150")
    args = p.parse_args(argv)
    rows = extractor_rows([e for e in args.extractors.split(",") if e], args.n,
                          args.fid_weights)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.gmm_sizes.split(",") if s]
    rows += gmm_rows(args.gmm_n, sizes)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print("| what | size | speed | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
