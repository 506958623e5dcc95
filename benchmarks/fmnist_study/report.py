"""The study's numbers as a markdown table: per-seed values, paired
differences, claims, split kinds."""

from __future__ import annotations

import numpy as np

from .analysis import stats


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
    times = {k: stats([models[f"{k}_seed{s}"]["train_seconds"] for s in seeds])
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
