"""Split VAE vs vanilla VAE on real Fashion-MNIST: does splitting help?

The paper (Asperti, Bugo, Filippini, IEEE Access 2022, arXiv 2202.02738)
reports that the Split VAE generates better than the "vanilla" VAE with the
same layers, and that its parts x1, x2 often beat x_hat itself. This script
tests that claim on the real Fashion-MNIST test set with a reduced network
that trains on two CPU cores, several seeds, paired models.

    python benchmarks/fashion_mnist_study.py --train            # resumable
    python benchmarks/fashion_mnist_study.py --evaluate-only    # the table
    python benchmarks/fashion_mnist_study.py --evaluate-only --subset   # CI size

--train trains every model of the study (split and vanilla for each seed) and
saves each as a preset directory under weights/fashion_mnist/<name>/. Running
it again skips finished models and resumes a partial one from its last
checkpoint (runs/fashion_mnist_study/<name>/, written after every chunk of a
third of an epoch). The two models of a seed are paired: the same seed is set
before building them, so every layer but the last convolution (the only one
that differs) starts from the same weights, and they see the same batches in
the same order.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WEIGHTS_DIR = os.path.join(ROOT, "weights", "fashion_mnist")
WORK_DIR = os.path.join(ROOT, "runs", "fashion_mnist_study")

# === The reduced configuration ===
# Everything not listed is the paper's fashion_mnist preset: 32x32x1 input
# (28x28 zero-padded), latent_dim 32, beta 8, kernel 3, 4 scales
# (num_scale 4: the decoder runs 4, 8, 16, 32 as the paper's), one residual
# block of depth 2 per scale, batches of 100, 20 GMM components.
REDUCED = dict(
    # A quarter of the paper's width (64 -> 16, 512 -> 128): 0.81M instead of
    # 12.8M parameters, ~450 images/s on two idle CPU cores instead of ~20.
    base_dim=16,
    emb_dim=128,
    # 2 epochs (1,200 steps) instead of 300: six trainings must fit in about
    # an hour of a shared two-core machine.
    epochs=2,
    # A short run needs a larger step and a faster BatchNorm average (the
    # paper's 1e-4 and 0.999 are tuned for hundreds of thousands of steps;
    # 0.999 would leave the inference statistics nearly at their init).
    learning_rate=1e-3,
    bn_momentum=0.99,
)
SEEDS = (0, 1, 2)
CHUNKS_PER_EPOCH = 3  # a checkpoint every third of an epoch


def study_config(split: bool):
    import split_vae

    return split_vae.get_preset("fashion_mnist").replace(split=split, **REDUCED)


def model_names(seeds=SEEDS):
    """Training order: the two models of a seed one after the other."""
    return [(f"{kind}_seed{seed}", kind == "split", seed)
            for seed in seeds for kind in ("split", "vanilla")]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training images in an epoch: a function of (seed,
    epoch) alone, so a resumed run and the paired model see the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------
def _read_json(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def train_one(name: str, split: bool, seed: int, train_images: np.ndarray) -> None:
    import keras

    from split_vae import GammaBalance, SplitVAE, StopOnNonFinite
    from split_vae.fileio import atomic_write, atomic_write_text

    preset_dir = os.path.join(WEIGHTS_DIR, name)
    if os.path.exists(os.path.join(preset_dir, "metadata.json")):
        print(f"[study] {name}: finished, skipped ({preset_dir})", flush=True)
        return
    work = os.path.join(WORK_DIR, name)
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "checkpoint.keras")
    state_file = os.path.join(work, "state.json")
    config = study_config(split)
    state = _read_json(state_file, {"chunk": 0, "train_seconds": 0.0, "history": []})
    if state["chunk"] > 0 and os.path.exists(ckpt):
        model = keras.saving.load_model(ckpt)
        print(f"[study] {name}: resuming after chunk {state['chunk']} "
              f"({state['train_seconds']:.0f} s of training so far)", flush=True)
    else:
        state = {"chunk": 0, "train_seconds": 0.0, "history": []}
        keras.utils.set_random_seed(seed)  # same init of the shared layers in a pair
        model = SplitVAE(config, seed=seed)
        model.compile()
        print(f"[study] {name}: {model.count_params():,} parameters, "
              f"{config.epochs} epochs of {len(train_images)} images", flush=True)

    n = len(train_images)
    bounds = np.linspace(0, n, CHUNKS_PER_EPOCH + 1).astype(int)
    total = config.epochs * CHUNKS_PER_EPOCH
    balance, stop = GammaBalance(), StopOnNonFinite()
    for chunk in range(state["chunk"], total):
        epoch, part = divmod(chunk, CHUNKS_PER_EPOCH)
        order = epoch_order(seed, epoch, n)[bounds[part]:bounds[part + 1]]
        start = time.time()
        hist = model.fit(train_images[order], batch_size=config.batch_size, epochs=1,
                         shuffle=False, verbose=0, callbacks=[balance, stop])
        seconds = time.time() - start
        if stop.stopped_at is not None:
            raise SystemExit(f"[study] {name}: non-finite loss in chunk {chunk}; "
                             f"{ckpt} keeps the last good state")
        logs = {k: float(v[-1]) for k, v in hist.history.items()}
        state["chunk"] = chunk + 1
        state["train_seconds"] += seconds
        state["history"].append({"chunk": chunk + 1, "epoch": epoch + 1,
                                 "seconds": round(seconds, 2), **logs})
        atomic_write(ckpt, model.save)
        atomic_write_text(state_file, json.dumps(state, indent=1))
        print(f"[study] {name}: chunk {chunk + 1}/{total} in {seconds:.0f} s, "
              f"loss {logs['loss']:.2f} mse {logs['mse']:.5f} kl {logs['kl']:.2f} "
              f"gamma {logs['gamma']:.5f}", flush=True)

    source = {"study": "benchmarks/fashion_mnist_study.py", "seed": seed,
              "train_images": n, "steps": int(total * np.ceil(n / CHUNKS_PER_EPOCH
                                                             / config.batch_size)),
              "train_seconds": round(state["train_seconds"], 1),
              "final": state["history"][-1]}
    save_without_optimizer(model, preset_dir, source)
    print(f"[study] {name}: saved {preset_dir} "
          f"({state['train_seconds']:.0f} s of training)", flush=True)


def save_without_optimizer(model, preset_dir: str, source: dict) -> None:
    """Save a preset of the network alone. A compiled model's weights file also
    holds Adam's two moments (3x the size: 9.6 MB here); an uncompiled copy
    with the same weights (gamma included) writes 3.3 MB."""
    from split_vae import SplitVAE

    slim = SplitVAE(model.config, seed=model.seed)
    for mine, theirs in zip(slim.weights, model.weights):
        if mine.path != theirs.path:
            raise RuntimeError(f"weights out of order: {mine.path} vs {theirs.path}")
        mine.assign(theirs)
    slim.save_to_preset(preset_dir, dataset="fashion_mnist", source=source)


def train_all(seeds=SEEDS) -> None:
    from split_vae import data

    train_images = data.load("fashion_mnist", "train", as_numpy=True)
    for name, split, seed in model_names(seeds):
        train_one(name, split, seed, train_images)
    print("[study] every model is trained", flush=True)


def train_fd_fmnist_classifier(epochs: int = 8) -> None:
    """Train the FD-FMNIST classifier and ship it in split_vae/assets/."""
    from split_vae.metrics import fd_fmnist

    model, card = fd_fmnist.train_classifier(epochs=epochs)
    path = fd_fmnist.save_classifier(model, card)
    print(f"[study] FD-FMNIST classifier: test accuracy {100 * card['test_accuracy']:.2f}% "
          f"after {epochs} epochs ({card['train_seconds']:.0f} s) -> {path}", flush=True)


# ---------------------------------------------------------------------------
# Evaluation: the table
# ---------------------------------------------------------------------------
STUDY_JSON = os.path.join(WEIGHTS_DIR, "study.json")
SUBSET_JSON = os.path.join(WEIGHTS_DIR, "study_subset.json")
FULL = dict(n_images=10_000, seeds=SEEDS)
# CI: one pair of models and 1,000 images (well above the 128 features).
SUBSET = dict(n_images=1_000, seeds=(0,))
EVAL_SEED = 0  # prior draws, the GMM fit and its draws
# Recomputed numbers must match the committed ones within this tolerance:
# |new - committed| <= RTOL * |committed| + ATOL. Recomputed on the machine
# that wrote them, they were identical (largest relative deviation 0.0, full
# table and subset); the margin absorbs other BLAS/oneDNN builds, thread
# counts and backends.
RTOL, ATOL = 0.02, 0.02
SAMPLE_PARTS = ("x_hat", "x1", "x2", "mix")


def _blur(images, sigma=1.0):
    """A Gaussian blur of `sigma` pixels over height and width."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0, sigma, sigma, 0)).astype("float32")


def evaluate_models(subset: bool = False, progress: bool = False, wait: bool = False) -> dict:
    """Every number of the table, recomputed from the shipped weights."""
    if not progress:
        os.environ.setdefault("TQDM_DISABLE", "1")
    import keras

    from split_vae import data, metrics
    from split_vae.evaluation import evaluate_model
    from split_vae.metrics import fd_fmnist_extractor
    from split_vae.model import SplitVAE

    size = SUBSET if subset else FULL
    n = size["n_images"]
    start = time.time()
    ext = fd_fmnist_extractor()
    test = data.load("fashion_mnist", "test", as_numpy=True, limit=n)
    train = data.load("fashion_mnist", "train", as_numpy=True, limit=n)
    ref = metrics.feature_statistics(ext.features(test, progress=False))

    def fd(images):
        return metrics.frechet_distance(
            *metrics.feature_statistics(ext.features(images, progress=False)), *ref)

    calibration = {"real_test_vs_train": fd(train),
                   "test_vs_blurred_test_1px": fd(_blur(test, 1.0))}
    models = {}
    for name, split, seed in model_names(size["seeds"]):
        preset_dir = os.path.join(WEIGHTS_DIR, name)
        while wait and not os.path.exists(os.path.join(preset_dir, "metadata.json")):
            print(f"[study] waiting for {name} to finish training", file=sys.stderr,
                  flush=True)
            time.sleep(30)
        keras.utils.set_random_seed(EVAL_SEED)
        model = SplitVAE.from_preset(preset_dir)
        with open(os.path.join(preset_dir, "metadata.json")) as f:
            meta = json.load(f)
        report, _ = evaluate_model(model, test, None, extractor=ext, n_samples=n,
                                   seed=EVAL_SEED, use_cache=False)
        row = {"split": split, "seed": seed,
               "fd_gen": report["fid"]["gen"], "fd_gmm": report["fid"]["gmm"],
               "fd_reconstruction": report["fid"]["reconstruction"],
               "reconstruction_mse": report["reconstruction_mse"],
               "inactive_by_variance": report["latent"]["inactive_by_variance"],
               "inactive_by_posterior_variance":
                   report["latent"]["inactive_by_posterior_variance"],
               "parameters": report["model"]["parameters"],
               "train_seconds": meta["source"]["train_seconds"],
               "gmm_components": report["protocol"]["gmm"]["components"]}
        if split:
            row["split_kind"] = report["split_kind"]
        models[name] = row
        print(f"[study] evaluated {name} ({report['seconds']:.0f} s)", file=sys.stderr,
              flush=True)
    return {
        "table": "FD-FMNIST study, " + ("CI subset" if subset else "full"),
        "metric": "FD-FMNIST (Fréchet distance in the 128-d penultimate features of "
                  "split_vae/assets/fd_fmnist.weights.h5; not an FID)",
        "classifier_test_accuracy": ext.card.get("test_accuracy"),
        "n_reference": n, "n_samples": n, "seeds": list(size["seeds"]),
        "eval_seed": EVAL_SEED,
        "config": study_config(True).to_dict(),
        "calibration": calibration,
        "models": models,
        "analysis": analyse(models, size["seeds"]),
        "seconds": round(time.time() - start, 1),
    }


# --- the comparisons --------------------------------------------------------
# (key, label, getter of one model's row); lower is better for every one.
def _metric_getters():
    out = []
    for source in ("gen", "gmm"):
        out.append((f"fd_{source}_x_hat", f"FD {source.upper()} x_hat",
                    lambda r, s=source: r[f"fd_{s}"]["x_hat"]))
    out += [("fd_reconstruction", "FD reconstruction", lambda r: r["fd_reconstruction"]),
            ("reconstruction_mse", "reconstruction MSE", lambda r: r["reconstruction_mse"]),
            ("inactive_by_variance", "inactive (var z_mean < 0.05)",
             lambda r: r["inactive_by_variance"]),
            ("inactive_by_posterior_variance", "inactive (mean exp(z_log_var) > 0.95)",
             lambda r: r["inactive_by_posterior_variance"])]
    return out


def _best_part(row, source):
    return min(row[f"fd_{source}"]["x1"], row[f"fd_{source}"]["x2"])


def _stats(values):
    v = np.asarray(values, dtype=np.float64)
    return {"values": v.tolist(), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def _verdict(diffs, spread):
    """A claim 'a < b' over seeds: the paired differences a - b."""
    d = _stats(diffs)
    d["holds_every_seed"] = bool(np.all(np.asarray(diffs) < 0))
    d["spread"] = spread
    d["exceeds_spread"] = bool(d["mean"] < 0 and abs(d["mean"]) > spread) \
        if len(diffs) > 1 else None
    return d


def analyse(models: dict, seeds) -> dict:
    """Paired differences (split - vanilla), mean and std over seeds, claims."""
    split = [models[f"split_seed{s}"] for s in seeds]
    vanilla = [models[f"vanilla_seed{s}"] for s in seeds]
    rows = {}
    for key, label, get in _metric_getters():
        a, b = [get(r) for r in split], [get(r) for r in vanilla]
        spread = max(_stats(a)["std"], _stats(b)["std"])
        rows[key] = {"label": label, "split": _stats(a), "vanilla": _stats(b),
                     "split_minus_vanilla": _verdict(np.subtract(a, b).tolist(), spread)}
    parts = {}
    for source in ("gen", "gmm"):
        for part in ("x1", "x2", "mix"):
            parts[f"fd_{source}_{part}"] = _stats([r[f"fd_{source}"][part] for r in split])
    claims = {}
    for source in ("gen", "gmm"):
        x_hat_split = [r[f"fd_{source}"]["x_hat"] for r in split]
        x_hat_vanilla = [r[f"fd_{source}"]["x_hat"] for r in vanilla]
        best = [_best_part(r, source) for r in split]
        claims[f"split x_hat beats vanilla x_hat ({source.upper()})"] = \
            rows[f"fd_{source}_x_hat"]["split_minus_vanilla"]
        claims[f"split's better part (min of x1, x2) beats its x_hat ({source.upper()})"] = \
            _verdict(np.subtract(best, x_hat_split).tolist(), _stats(x_hat_split)["std"])
        claims[f"split's better part beats vanilla x_hat ({source.upper()})"] = \
            _verdict(np.subtract(best, x_hat_vanilla).tolist(),
                     max(_stats(best)["std"], _stats(x_hat_vanilla)["std"]))
    claims["split keeps more latent variables active (inactive by variance)"] = \
        rows["inactive_by_variance"]["split_minus_vanilla"]
    kinds = {s: models[f"split_seed{s}"]["split_kind"]["kind"] for s in seeds}
    by_kind = {}
    for kind in sorted(set(kinds.values())):
        ks = [s for s in seeds if kinds[s] == kind]
        sub = [models[f"split_seed{s}"] for s in ks]
        van = [models[f"vanilla_seed{s}"] for s in ks]
        by_kind[kind] = {"seeds": ks, **{
            f"{source}_{what}": _stats(vals)
            for source in ("gen", "gmm")
            for what, vals in (("split_x_hat", [r[f"fd_{source}"]["x_hat"] for r in sub]),
                               ("split_best_part", [_best_part(r, source) for r in sub]),
                               ("split_mix", [r[f"fd_{source}"]["mix"] for r in sub]),
                               ("vanilla_x_hat", [r[f"fd_{source}"]["x_hat"] for r in van]))},
            "best_part_beats_x_hat_gen_every_seed": bool(all(
                _best_part(r, "gen") < r["fd_gen"]["x_hat"] for r in sub))}
    return {"rows": rows, "split_parts": parts, "claims": claims,
            "split_kind_by_seed": {str(s): kinds[s] for s in seeds}, "by_kind": by_kind}


# --- printing ---------------------------------------------------------------
def _pm(st, digits=3):
    return f"{st['mean']:.{digits}f} ± {st['std']:.{digits}f}"


def _num(v, digits=3):
    return str(v) if isinstance(v, (int, np.integer)) else f"{v:.{digits}f}"


def format_table(result: dict) -> str:
    """The study as markdown: per-seed values, paired differences, claims."""
    seeds = result["seeds"]
    models = result["models"]
    an = result["analysis"]
    lines = [f"{result['metric']}; {result['n_reference']:,} test images as reference, "
             f"{result['n_samples']:,} samples per source; classifier test accuracy "
             f"{100 * result['classifier_test_accuracy']:.2f}%.", "",
             f"Calibration: FD-FMNIST test vs train (\"real\") "
             f"{result['calibration']['real_test_vs_train']:.2f}; test vs test blurred by "
             f"a 1-pixel Gaussian {result['calibration']['test_vs_blurred_test_1px']:.2f}.", ""]
    head = "| metric | " + " | ".join(f"split s{s}" for s in seeds) + " | " + \
        " | ".join(f"vanilla s{s}" for s in seeds) + " | " + \
        " | ".join(f"diff s{s}" for s in seeds) + \
        " | split mean ± sd | vanilla mean ± sd | diff mean ± sd |"
    lines += [head, "|" + "---|" * (4 + 3 * len(seeds))]
    for key, row in an["rows"].items():
        d = row["split_minus_vanilla"]
        # counts as integers, the MSE with enough digits, distances with 2
        digits, pm = {"reconstruction_mse": (5, 5)}.get(
            key, (0, 2) if key.startswith("inactive") else (2, 2))
        lines.append(f"| {row['label']} | "
                     + " | ".join(_num(v, digits) for v in row["split"]["values"]) + " | "
                     + " | ".join(_num(v, digits) for v in row["vanilla"]["values"]) + " | "
                     + " | ".join(f"{v:+.{digits}f}" for v in d["values"]) + " | "
                     + f"{_pm(row['split'], pm)} | {_pm(row['vanilla'], pm)} | {_pm(d, pm)} |")
    for key, st in an["split_parts"].items():
        source, part = key.split("_")[1:]
        lines.append(f"| FD {source.upper()} {part} (split only) | "
                     + " | ".join(_num(v, 2) for v in st["values"]) + " | "
                     + " | ".join("—" for _ in seeds) + " | " + " | ".join("—" for _ in seeds)
                     + f" | {_pm(st, 2)} | — | — |")
    params = {k: models[f"{k}_seed{seeds[0]}"]["parameters"] for k in ("split", "vanilla")}
    times = {k: _stats([models[f"{k}_seed{s}"]["train_seconds"] for s in seeds])
             for k in ("split", "vanilla")}
    lines += ["", f"Parameters: split {params['split']:,}, vanilla {params['vanilla']:,}. "
              f"Training time (s, shared 2-core CPU): split {_pm(times['split'], 0)}, "
              f"vanilla {_pm(times['vanilla'], 0)}. GMM: "
              f"{models[f'split_seed{seeds[0]}']['gmm_components']} components.", "",
              "| claim | diffs per seed | mean ± sd | holds in every seed | beyond seed spread |",
              "|---|---|---|---|---|"]
    for claim, v in an["claims"].items():
        beyond = "n/a (1 seed)" if v["exceeds_spread"] is None else \
            ("yes" if v["exceeds_spread"] else "no") + f" (spread {v['spread']:.2f})"
        lines.append(f"| {claim} | " + ", ".join(f"{x:+.2f}" for x in v["values"])
                     + f" | {_pm(v, 2)} | {'yes' if v['holds_every_seed'] else 'no'} | {beyond} |")
    lines += ["", "Split kind per seed: " + ", ".join(
        f"s{s}: {an['split_kind_by_seed'][str(s)]} "
        f"({100 * models[f'split_seed{s}']['split_kind']['high_frequency_fraction']:.1f}% "
        f"high-frequency)" for s in seeds), "",
        "| kind | seeds | GEN split x_hat | GEN split best part | GEN split mix | "
        "GEN vanilla x_hat | GMM split x_hat | GMM split best part | GMM vanilla x_hat |",
        "|---|---|---|---|---|---|---|---|---|"]
    for kind, k in an["by_kind"].items():
        lines.append(f"| {kind} | {', '.join(map(str, k['seeds']))} | "
                     + " | ".join(_pm(k[c], 2) for c in (
                         "gen_split_x_hat", "gen_split_best_part", "gen_split_mix",
                         "gen_vanilla_x_hat", "gmm_split_x_hat", "gmm_split_best_part",
                         "gmm_vanilla_x_hat")) + " |")
    return "\n".join(lines)


def _flatten(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _flatten(v, f"{prefix}{k}/")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _flatten(v, f"{prefix}{i}/")
    else:
        yield prefix.rstrip("/"), d


COMPARED = ("calibration", "models")  # "analysis" follows from "models"
NOT_COMPARED = ("train_seconds",)  # copied from the presets' metadata


def largest_deviation(new: dict, committed: dict) -> float:
    """max |new - committed| / max(|committed|, 1e-12) over the compared numbers."""
    worst = 0.0
    for part in COMPARED:
        a, b = dict(_flatten(new[part])), dict(_flatten(committed[part]))
        for k, old in b.items():
            if isinstance(old, (int, float)) and not isinstance(old, bool) and k in a \
                    and not any(x in k for x in NOT_COMPARED):
                worst = max(worst, abs(a[k] - old) / max(abs(old), 1e-12))
    return worst


def compare(new: dict, committed: dict, rtol=RTOL, atol=ATOL) -> list[str]:
    """The numbers of `new` that differ from `committed` beyond the tolerance."""
    bad = []
    for part in COMPARED:
        a, b = dict(_flatten(new[part])), dict(_flatten(committed[part]))
        if set(a) != set(b):
            bad.append(f"{part}: entries differ: {sorted(set(a) ^ set(b))[:5]}")
            continue
        for k, old in b.items():
            v = a[k]
            if isinstance(old, bool) or isinstance(old, str) or old is None:
                if v != old:
                    bad.append(f"{part}/{k}: {v!r} != committed {old!r}")
            elif isinstance(old, (int, float)) and not any(x in k for x in NOT_COMPARED):
                if abs(v - old) > rtol * abs(old) + atol:
                    bad.append(f"{part}/{k}: {v:.6g} vs committed {old:.6g}")
    return bad


def evaluate_only(subset: bool, write: bool, progress: bool = False, wait: bool = False) -> int:
    from split_vae.fileio import atomic_write_text

    path = SUBSET_JSON if subset else STUDY_JSON
    result = evaluate_models(subset=subset, progress=progress, wait=wait)
    print(format_table(result))
    status = 0
    if write:
        atomic_write_text(path, json.dumps(result, indent=1) + "\n")
        print(f"[study] wrote {path}", file=sys.stderr)
    elif os.path.exists(path):
        with open(path) as f:
            committed = json.load(f)
        bad = compare(result, committed)
        if bad:
            print(f"MISMATCH with {os.path.relpath(path, ROOT)} (tolerance "
                  f"{RTOL:.0%} relative + {ATOL} absolute):\n  " + "\n  ".join(bad[:20]))
            status = 1
        else:
            print(f"every number matches {os.path.relpath(path, ROOT)} within {RTOL:.0%} "
                  f"relative + {ATOL} absolute (largest relative deviation "
                  f"{largest_deviation(result, committed):.1e}; {result['seconds']:.0f} s)")
    else:
        print(f"no committed numbers at {path} to compare with (use --write)")
    print(f"table: {result['table']} (FD-FMNIST, split vs vanilla VAE on Fashion-MNIST)")
    return status


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------
FIGURES_DIR = os.path.join(ROOT, "docs", "fashion_mnist_study")


def plot_fd_by_seed(result: dict, path: str) -> None:
    """Dots: FD-FMNIST of every part, GEN and GMM, split and vanilla, by seed;
    dashed lines: the calibration rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from split_vae.plotting import save_figure

    seeds, models = result["seeds"], result["models"]
    columns = [(src, part) for src in ("gen", "gmm") for part in SAMPLE_PARTS]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    markers = "osD^v"
    for i, seed in enumerate(seeds):
        for kind, color, dx in (("split", "tab:blue", -0.12), ("vanilla", "tab:orange", 0.12)):
            row = models[f"{kind}_seed{seed}"]
            xs, ys = [], []
            for c, (src, part) in enumerate(columns):
                if part in row[f"fd_{src}"]:
                    xs.append(c + dx)
                    ys.append(row[f"fd_{src}"][part])
            label = f"{kind} s{seed}"
            if kind == "split":
                label += f" ({row['split_kind']['kind']})"
            ax.plot(xs, ys, linestyle="none", marker=markers[i % len(markers)], color=color,
                    label=label, alpha=0.8)
    cal = result["calibration"]
    ax.axhline(cal["real_test_vs_train"], color="green", linestyle="--",
               label=f"test vs train ({cal['real_test_vs_train']:.2f})")
    ax.axhline(cal["test_vs_blurred_test_1px"], color="gray", linestyle=":",
               label=f"test vs test blurred 1 px ({cal['test_vs_blurred_test_1px']:.2f})")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([f"{src.upper()}\n{part}" for src, part in columns])
    ax.set_yscale("log")
    ax.set_ylabel("FD-FMNIST (lower is better; log scale)")
    ax.set_title(f"Fashion-MNIST, split vs vanilla VAE, {len(seeds)} seeds "
                 f"({result['n_samples']:,} samples)")
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def make_figures(result: dict, seed: int = 0) -> list[str]:
    """Grids (sigma, x1, x2, x_hat) of the split and vanilla models of one seed,
    generated and reconstructed, plus the FD plot. Returns the paths."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    import matplotlib

    matplotlib.use("Agg")
    from split_vae import data
    from split_vae.model import SplitVAE
    from split_vae.plotting import plot_split_grid

    os.makedirs(FIGURES_DIR, exist_ok=True)
    test = data.load("fashion_mnist", "test", as_numpy=True, limit=10)
    paths = []
    for kind in ("split", "vanilla"):
        name = f"{kind}_seed{seed}"
        model = SplitVAE.from_preset(os.path.join(WEIGHTS_DIR, name))
        label = "Split VAE" if kind == "split" else "vanilla VAE"
        if kind == "split":
            label += f" ({result['models'][name]['split_kind']['kind']} split)"
        for what, parts, inputs in (
                ("generated", model.generate(10, seed=EVAL_SEED), None),
                ("reconstructed", model.reconstruct(test), test)):
            path = os.path.join(FIGURES_DIR, f"{name}_{what}.png")
            plot_split_grid(parts, path, n=10, inputs=inputs,
                            title=f"{label}, seed {seed}: {what}")
            paths.append(path)
    path = os.path.join(FIGURES_DIR, "fd_by_seed.png")
    plot_fd_by_seed(result, path)
    return paths + [path]


# ---------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true",
                        help="train every model of the study (resumes, skips finished ones)")
    parser.add_argument("--train-classifier", action="store_true",
                        help="(re)train the FD-FMNIST classifier shipped in split_vae/assets/")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="recompute the table from the shipped weights, print it and "
                             "compare it with the committed numbers")
    parser.add_argument("--subset", action="store_true",
                        help="with --evaluate-only: one seed and 1,000 images (CI size)")
    parser.add_argument("--write", action="store_true",
                        help="with --evaluate-only: write the numbers as the committed ones")
    parser.add_argument("--figures", action="store_true",
                        help="draw the figures of docs/fashion_mnist_study/ from the "
                             "committed study.json and the shipped weights")
    parser.add_argument("--figure-seed", type=int, default=0,
                        help="seed of the models drawn in the grids")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.add_argument("--wait", action="store_true",
                        help="with --evaluate-only: wait for models still training")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args(argv)
    if args.train_classifier:
        train_fd_fmnist_classifier()
    if args.train:
        train_all(args.seeds)
    status = 0
    if args.evaluate_only:
        status = evaluate_only(args.subset, args.write, args.progress, args.wait)
    if args.figures:
        with open(STUDY_JSON) as f:
            for path in make_figures(json.load(f), args.figure_seed):
                print(f"[study] wrote {os.path.relpath(path, ROOT)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
