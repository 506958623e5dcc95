"""The study of K components (the paper's Section VII): the study's models
with a decoder of K = 3 components, shared or specialised, against the
shipped vanilla and split (K = 2) models of the same seeds.

Every variant is the study's reduced configuration (training.REDUCED) with
one change, trained by the same plan of `reproduce` (same seeds, so the same
initialisation of every layer the variant shares with the paper's network,
and the same batches in the same order), and evaluated by the same protocol
(evaluation.model_row). benchmarks/components_study.py drives it.
"""

from __future__ import annotations

from . import SEEDS, WEIGHTS_DIR, WORK_DIR
from .training import study_config, train_one

# name -> the SplitVAEConfig fields it changes. "split" and "vanilla" are the
# study's own models (weights/fashion_mnist/{split,vanilla}_seed<s>).
VARIANTS = {
    "k3": dict(components=3),                      # 3 images, softmax maps, shared decoder
    "k3spec": dict(components=3, specialized=True),  # and a last scale block per part
}
BASELINES = ("vanilla", "split")


def variant_config(variant: str):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {sorted(VARIANTS)}")
    return study_config(True).replace(**VARIANTS[variant])


def variant_names(seeds=SEEDS, variants=tuple(VARIANTS)):
    """(name, variant, seed) in training order: every variant of a seed, then the next seed."""
    return [(f"{v}_seed{s}", v, s) for s in seeds for v in variants]


def train_variants(seeds=SEEDS, variants=tuple(VARIANTS), weights_dir: str = WEIGHTS_DIR,
                   work_dir: str = WORK_DIR, train_images=None) -> None:
    """Train (or resume, or skip when finished) every variant of every seed."""
    if train_images is None:
        from split_vae import data

        train_images = data.load("fashion_mnist", "train", as_numpy=True,
                                 image_shape=study_config(True).image_shape)
    for name, variant, seed in variant_names(seeds, variants):
        train_one(name, True, seed, train_images, weights_dir=weights_dir, work_dir=work_dir,
                  config=variant_config(variant))


# === Evaluation: every model's numbers, recomputed from the shipped presets ===
COMPARED_MODELS = BASELINES + tuple(VARIANTS)
LABELS = {"vanilla": "vanilla", "split": "K = 2 (the paper)", "k3": "K = 3",
          "k3spec": "K = 3, specialised"}
# The pairs read (a - b, lower is better), each on every distance of x_hat,
# the better part and the mix.
PAIRS = (("k3", "vanilla"), ("k3", "split"), ("k3spec", "split"), ("k3spec", "k3"),
         ("split", "vanilla"))


def component_row(preset_dir: str, seed: int, test, ext, n: int) -> dict:
    """One model's numbers: `reproduce`'s evaluation (FD-FMNIST and KD of GEN and
    GMM samples of every part and the mix, reconstruction, latents, split kind),
    plus the maps' shares and entropy on the reconstructed reference images."""
    import numpy as np

    from split_vae.model import SplitVAE
    from split_vae.parts import maps_of
    from split_vae.reproduce.measure import evaluate_run

    row = evaluate_run(preset_dir, test, ext, gmm=(20,), n_samples=n)
    out = {"seed": seed, **{k: row[k] for k in (
        "split", "fd_gen", "fd_gmm", "kd_gen", "fd_reconstruction", "reconstruction_mse",
        "inactive_by_variance", "parameters", "train_seconds", "split_kind")}}
    out["kd_gmm"] = row["kd_gmm_by_components"]["20"]
    if row["split"]:
        maps = maps_of(SplitVAE.from_preset(preset_dir).reconstruct(test))
        entropy = -np.sum(maps * np.log(np.maximum(maps, 1e-12)), axis=-1)
        out["maps"] = {"share": maps.mean(axis=(0, 1, 2)).tolist(),
                       "entropy_per_pixel": float(entropy.mean()),
                       "pixels_above_0.9": float((maps.max(axis=-1) > 0.9).mean())}
    return out


def evaluate_components(subset: bool = False, weights_dir: str = WEIGHTS_DIR,
                        rows_dir: str | None = None) -> dict:
    """Every number of the components table, recomputed from the presets.

    rows_dir: a folder where each model's row is kept once computed, so that
    an interrupted evaluation resumes (None: compute every row)."""
    import os
    import sys
    import time

    from split_vae import data
    from split_vae.fileio import atomic_write_json, read_json
    from split_vae.metrics import fd_fmnist_extractor

    from .evaluation import FULL, SUBSET

    size = SUBSET if subset else FULL
    n = size["n_images"]
    start = time.time()
    ext = fd_fmnist_extractor()
    test = data.load("fashion_mnist", "test", as_numpy=True, limit=n)
    models = {}
    for seed in size["seeds"]:
        for kind in COMPARED_MODELS:
            name = f"{kind}_seed{seed}"
            cached = os.path.join(rows_dir, f"{name}_{n}.json") if rows_dir else None
            if cached and os.path.exists(cached):
                models[name] = read_json(cached, "a row of the components study")
                continue
            t0 = time.time()
            models[name] = component_row(os.path.join(weights_dir, name), seed, test, ext, n)
            print(f"[components] evaluated {name} ({time.time() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
            if cached:
                os.makedirs(rows_dir, exist_ok=True)
                atomic_write_json(cached, models[name])
    return {
        "table": "FD-FMNIST, K components, " + ("CI subset" if subset else "full"),
        "metric": "FD-FMNIST (Fréchet distance in the 128-d penultimate features of "
                  "split_vae/assets/fd_fmnist.weights.h5; not an FID); KD: kernel distance "
                  "(unbiased MMD², KID's cubic kernel) in the same features",
        "n_reference": n, "n_samples": n, "seeds": list(size["seeds"]),
        "configs": {k: (study_config(True).with_split(False) if k == "vanilla" else
                        study_config(True) if k == "split" else variant_config(k)).to_dict()
                    for k in COMPARED_MODELS},
        "models": models,
        "analysis": analyse_components(models, size["seeds"]),
        "seconds": round(time.time() - start, 1),
    }


# === The paired reading ===
def _parts(row) -> list[str]:
    keys = [k for k in row["fd_gen"] if k[0] == "x" and k[1:].isdigit()]
    return sorted(keys, key=lambda k: int(k[1:]))


def metric_values(row, source: str, what: str, distance: str = "fd") -> float:
    """One number of a row: x_hat, mix or the better part ("best": the lowest of
    x1..xK), of GEN or GMM samples, as a Fréchet ("fd") or kernel ("kd") distance."""
    table = row[f"{distance}_{source}"]
    value = (lambda k: table[k]) if distance == "fd" else (lambda k: table[k]["mean"])
    if what == "best":
        parts = _parts(row)
        return min(value(k) for k in parts) if parts else value("x_hat")
    return value(what)


METRICS = [(f"{d}_{s}_{w}", f"{d.upper()} {s.upper()} {label}")
           for d in ("fd", "kd") for s in ("gen", "gmm")
           for w, label in (("x_hat", "x̂"), ("best", "better part"), ("mix", "mix"))]


def analyse_components(models: dict, seeds) -> dict:
    """Per metric and pair (a, b): the differences a - b paired by seed, their
    mean and sd, whether a is lower in every seed, and whether the mean
    difference exceeds the seed spread (the larger sd of a and b over seeds),
    the reading of the Fashion-MNIST study."""
    from split_vae.reproduce.analysis import _verdict, stats

    out = {}
    for key, label in METRICS:
        d, s, w = key.split("_", 2)
        values = {}
        for kind in COMPARED_MODELS:
            rows = [models[f"{kind}_seed{seed}"] for seed in seeds]
            if w == "x_hat" or rows[0]["split"]:
                values[kind] = [metric_values(r, s, w, d) for r in rows]
        pairs = {}
        for a, b in PAIRS:
            if a in values and b in values:
                spread = max(stats(values[a])["std"], stats(values[b])["std"])
                pairs[f"{a} - {b}"] = _verdict(
                    [x - y for x, y in zip(values[a], values[b])], spread)
        out[key] = {"label": label, "values": {k: stats(v) for k, v in values.items()},
                    "pairs": pairs}
    return out


# === The report ===
def _pm(st, digits=2):
    return f"{st['mean']:.{digits}f} ± {st['std']:.{digits}f}"


def _digits(key):
    return 4 if key.startswith("kd") else 2


def format_components(result: dict) -> str:
    """The components study as markdown: each model's distances (mean ± sd over
    seeds), the paired differences with their reading, the maps, per seed."""
    seeds, models, an = result["seeds"], result["models"], result["analysis"]
    kinds = [k for k in COMPARED_MODELS if f"{k}_seed{seeds[0]}" in models]
    lines = [f"{result['metric']}; {result['n_reference']:,} test images as reference, "
             f"{result['n_samples']:,} samples per source; seeds {seeds}; lower is better.", "",
             "| metric | " + " | ".join(LABELS[k] for k in kinds) + " |",
             "|---|" + "---|" * len(kinds)]
    for key, entry in an.items():
        d = _digits(key)
        lines.append(f"| {entry['label']} | " + " | ".join(
            _pm(entry["values"][k], d) if k in entry["values"] else "—" for k in kinds) + " |")
    lines += ["", "Paired differences a − b by seed (negative: a is better); **holds** when "
              "a is better in every seed and the mean difference exceeds the seed spread "
              "(the larger sd of a and b over seeds).", "",
              "| metric | pair | " + " | ".join(f"seed {s}" for s in seeds)
              + " | mean ± sd | spread | reading |",
              "|---|---|" + "---|" * (len(seeds) + 3)]
    for key, entry in an.items():
        d = _digits(key)
        for pair, v in entry["pairs"].items():
            a, b = pair.split(" - ")
            if v["holds_every_seed"] and v["exceeds_spread"]:
                reading = f"**{LABELS[a]} better**"
            elif all(x > 0 for x in v["values"]) and abs(v["mean"]) > v["spread"]:
                reading = f"**{LABELS[b]} better**"
            elif v["holds_every_seed"]:
                reading = "a better in every seed, within the spread"
            else:
                reading = "mixed"
            lines.append(f"| {entry['label']} | {LABELS[a]} − {LABELS[b]} | "
                         + " | ".join(f"{x:+.{d}f}" for x in v["values"])
                         + f" | {_pm(v, d)} | {v['spread']:.{d}f} | {reading} |")
    lines += ["", "The maps on the reconstructed reference images, per seed: the mean share "
              "of each component, the mean entropy per pixel (nats; an even blend of K is "
              "log K) and the pixels whose largest map exceeds 0.9; the split kind.", "",
              "| model | seed | shares | entropy / pixel | pixels > 0.9 | split kind | "
              "reconstruction MSE | parameters | training (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for k in kinds:
        for s in seeds:
            r = models[f"{k}_seed{s}"]
            m = r.get("maps")
            sk = r.get("split_kind")
            lines.append(
                f"| {LABELS[k]} | {s} | "
                + (", ".join(f"{v:.2f}" for v in m["share"]) if m else "—") + " | "
                + (f"{m['entropy_per_pixel']:.3f} | {100 * m['pixels_above_0.9']:.1f}%"
                   if m else "— | —")
                + f" | {sk['kind'] + ' (%.1f%%)' % (100 * sk['high_frequency_fraction']) if sk else '—'}"
                + f" | {r['reconstruction_mse']:.5f} | {r['parameters']:,} | "
                + (f"{r['train_seconds']:.0f}" if r.get("train_seconds") else "—") + " |")
    return "\n".join(lines)


# === The figures ===
def plot_components_by_seed(result: dict, path: str) -> None:
    """FD-FMNIST of x̂, the better part and the mix, GEN and GMM, every model,
    one marker per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from split_vae.plotting import save_figure

    seeds, models = result["seeds"], result["models"]
    columns = [(s, w) for s in ("gen", "gmm") for w in ("x_hat", "best", "mix")]
    colours = {"vanilla": "tab:orange", "split": "tab:blue", "k3": "tab:green",
               "k3spec": "tab:purple"}
    fig, ax = plt.subplots(figsize=(10, 4.5))
    markers = "osD^v"
    kinds = [k for k in COMPARED_MODELS if f"{k}_seed{seeds[0]}" in models]
    width = 0.6 / max(1, len(kinds) - 1)
    for j, kind in enumerate(kinds):
        dx = -0.3 + j * width
        for i, seed in enumerate(seeds):
            row = models[f"{kind}_seed{seed}"]
            xs, ys = [], []
            for c, (s, w) in enumerate(columns):
                if w == "x_hat" or row["split"]:
                    xs.append(c + dx)
                    ys.append(metric_values(row, s, w))
            ax.plot(xs, ys, linestyle="none", marker=markers[i % len(markers)],
                    color=colours[kind], alpha=0.85,
                    label=LABELS[kind] if i == 0 else None)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([f"{s.upper()}\n{ {'x_hat': 'x̂', 'best': 'better part', 'mix': 'mix'}[w]}"
                        for s, w in columns])
    ax.set_yscale("log")
    ax.set_ylabel("FD-FMNIST (lower is better; log scale)")
    ax.set_title(f"Fashion-MNIST: vanilla vs K = 2 vs K = 3 components, {len(seeds)} seeds "
                 f"(markers o s D: seeds {', '.join(map(str, seeds))})")
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def make_component_figures(result: dict, seed: int = 0, weights_dir: str = WEIGHTS_DIR,
                           figures_dir=None) -> list[str]:
    """Grids of the K = 3 models of one seed (maps, parts, x̂; generated and
    reconstructed), their maps in colour, and the FD plot. Returns the paths."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    import matplotlib

    matplotlib.use("Agg")
    from split_vae import data
    from split_vae.model import SplitVAE
    from split_vae.plotting import plot_maps_grid, plot_split_grid

    from . import FIGURES_DIR
    from .evaluation import EVAL_SEED

    figures_dir = figures_dir or os.path.join(FIGURES_DIR, "components")
    os.makedirs(figures_dir, exist_ok=True)
    test = data.load("fashion_mnist", "test", as_numpy=True, limit=10)
    paths = []
    for kind in VARIANTS:
        name = f"{kind}_seed{seed}"
        model = SplitVAE.from_preset(os.path.join(weights_dir, name))
        sk = result["models"][name]["split_kind"]["kind"]
        for what, parts, inputs in (("generated", model.generate(10, seed=EVAL_SEED), None),
                                    ("reconstructed", model.reconstruct(test), test)):
            path = os.path.join(figures_dir, f"{name}_{what}.png")
            plot_split_grid(parts, path, n=10, inputs=inputs,
                            title=f"{LABELS[kind]}, seed {seed} ({sk} split): {what}")
            paths.append(path)
            if what == "reconstructed":
                path = os.path.join(figures_dir, f"{name}_maps.png")
                plot_maps_grid(parts, path, n=10, inputs=inputs,
                                title=f"{LABELS[kind]}, seed {seed}: the 3 maps in colour "
                                      "(red σ₁, green σ₂, blue σ₃)")
                paths.append(path)
    path = os.path.join(figures_dir, "fd_by_seed.png")
    plot_components_by_seed(result, path)
    return paths + [path]
