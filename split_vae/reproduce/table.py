"""The tables of a reproduction, in the paper's layout, and the ablation curves' means.

`tabulate` gathers the evaluated runs into one JSON-able result; `format_table`
writes it as markdown: the paper's table (rows: the Split VAE's x_hat, x1, x2,
mix and the vanilla VAE's x_hat; columns: GEN and each GMM, mean ± sd over
runs, and the paper's own number, not available), the models' other rows
(reconstruction, inactive variables, parameters), split minus vanilla per
seed, the reading (the claims of `analysis`), the split kind of each run and
the authors' published numbers beside it all, as captions, not cells.
"""

from __future__ import annotations

import numpy as np

from ..parts import row_label
from .analysis import analyse, part_keys, stats
from .plan import REFERENCE_NUMBERS, REFERENCE_SOURCE, Plan

PART_LABELS = {"x_hat": "x̂", "x1": "x̂₁", "x2": "x̂₂", "mix": "mix"}
NOT_AVAILABLE = "n/a"
# (key, label, digits) of the rows beside the paper's table
OTHER_ROWS = (("fd_reconstruction", "reconstruction (FD of x̂ from z_mean)", 2),
              ("reconstruction_mse", "reconstruction MSE", 5),
              ("inactive_by_variance", "inactive variables (var z_mean < 0.05)", 1),
              ("inactive_by_posterior_variance",
               "inactive variables (mean exp(z_log_var) > 0.95)", 1),
              ("parameters", "parameters", 0),
              ("train_seconds", "training time (s)", 0))


def _columns(gmm) -> list[tuple[str, str]]:
    """(key, header) of the distance columns: GEN, then each GMM."""
    return [("gen", "GEN")] + [(f"gmm{k}", f"GMM ({k})") for k in gmm]


def _value(row: dict, column: str, part: str):
    if column == "gen":
        return row["fd_gen"].get(part)
    return row["fd_gmm_by_components"][column[3:]].get(part)


def tabulate(plan: Plan, rows: dict, real: dict | None = None, extra: dict | None = None) -> dict:
    """Every number of the tables from the evaluated runs' rows (by run name)."""
    seeds = list(range(plan.runs))
    missing = [r.name for r in plan.run_list() if r.name not in rows]
    if missing:
        raise ValueError(f"cannot tabulate: no evaluation of {', '.join(missing)}")
    split = [rows[f"split_seed{s}"] for s in seeds]
    vanilla = [rows[f"vanilla_seed{s}"] for s in seeds]
    columns = _columns(plan.gmm)
    table = {"split": {}, "vanilla": {}}
    for kind, models, parts in (("split", split, ("x_hat", *part_keys(split[0]), "mix")),
                                ("vanilla", vanilla, ("x_hat",))):
        for part in parts:
            table[kind][part] = {c: stats([_value(r, c, part) for r in models])
                                 for c, _ in columns}
    other = {key: {kind: stats([r[key] for r in models]) for kind, models in
                   (("split", split), ("vanilla", vanilla))
                   if all(r.get(key) is not None for r in models)}
             for key, _, _ in OTHER_ROWS}
    paired = {}
    for c, header in columns:
        paired[f"x_hat {header}"] = stats([_value(a, c, "x_hat") - _value(b, c, "x_hat")
                                           for a, b in zip(split, vanilla)])
    for key in ("fd_reconstruction", "reconstruction_mse", "inactive_by_variance"):
        paired[key] = stats([a[key] - b[key] for a, b in zip(split, vanilla)])
    first = split[0]
    return {
        "dataset": plan.dataset, "scale": plan.scale, "runs": plan.runs, "seeds": seeds,
        "plan": plan.describe(), "config": plan.config.to_dict(),
        "learning_rate_source": plan.learning_rate_source,
        "metric": first["metric"], "note": first["note"],
        "n_reference": first["protocol"]["n_reference"],
        "n_samples": first["protocol"]["n_samples"],
        "gmm": list(plan.gmm),
        "table": table, "other": other, "split_minus_vanilla": paired,
        "analysis": analyse(rows, seeds),
        "split_kind": {f"split_seed{s}": rows[f"split_seed{s}"]["split_kind"] for s in seeds},
        "history": history_means(plan, rows),
        "real": real,
        "reference_numbers": ({"text": REFERENCE_NUMBERS[plan.dataset],
                               "source": REFERENCE_SOURCE}
                              if plan.dataset in REFERENCE_NUMBERS else None),
        "extra": extra or {},
    }


def history_means(plan: Plan, rows: dict) -> dict:
    """Mean and sd over runs of each ablation curve ("split x1", "vanilla x_hat", ...),
    at the epochs every run measured."""
    out = {}
    parts_of = {"split": ("x_hat", *part_keys(rows["split_seed0"])), "vanilla": ("x_hat",)}
    for kind, parts in parts_of.items():
        hists = [rows[f"{kind}_seed{s}"]["fid_history"] for s in range(plan.runs)]
        if not all(h.get("epoch") for h in hists):
            continue
        epochs = sorted(set.intersection(*(set(h["epoch"]) for h in hists)))
        for part in parts:
            values = np.array([[h[part][h["epoch"].index(e)] for e in epochs] for h in hists])
            out[f"{kind} {part}"] = {
                "epoch": epochs, "mean": values.mean(axis=0).tolist(),
                "std": (values.std(axis=0, ddof=1) if len(hists) > 1
                        else np.zeros(len(epochs))).tolist()}
    return out


def _num(v: float, digits: int = 2, scale: float | None = None, sign: str = "") -> str:
    # Distances with two decimals as the paper's tables; where the numbers of a
    # cell are below 1 (small extractors), three significant digits of the
    # scale rather than 0.00.
    scale = abs(v) if scale is None else abs(scale)
    if digits == 2 and 0 < scale < 1:
        digits = min(8, 2 - int(np.floor(np.log10(scale))))
    return f"{v:{sign}.{digits}f}"


def _pm(st: dict, digits: int = 2) -> str:
    scale = max(abs(v) for v in st["values"]) if st["values"] else st["mean"]
    if len(st["values"]) < 2:
        return _num(st["mean"], digits, scale)
    return f"{_num(st['mean'], digits, scale)} ± {_num(st['std'], digits, scale)}"


def format_table(result: dict) -> str:
    """The result as markdown (table.md)."""
    columns = _columns(result["gmm"])
    n = result["runs"]
    what = "mean ± sd over" if n > 1 else "one"
    lines = [f"# Reproduction: {result['dataset']}, {result['scale']} scale", "",
             result["plan"] + ".", "",
             f"{result['metric']}; {result['n_reference']:,} reference (test) images, "
             f"{result['n_samples']:,} samples per source; {what} {n} run(s) of each model.",
             "", f"> {result['note']}", "",
             "| model | " + " | ".join(h for _, h in columns) + " | paper |",
             "|---|" + "---|" * (len(columns) + 1)]
    for kind, label in (("split", "Split VAE"), ("vanilla", "vanilla VAE")):
        for part, cells in result["table"][kind].items():
            lines.append(f"| {label} {row_label(part)} | "
                         + " | ".join(_pm(cells[c]) for c, _ in columns)
                         + f" | {NOT_AVAILABLE} |")
    if result.get("real"):
        lines.append(f"| real (test vs train) | {_num(result['real']['fd'])} | "
                     + " | ".join("—" for _ in columns[1:]) + f" | {NOT_AVAILABLE} |")
    lines += ["", "GEN: z from N(0, I); GMM (k): z from a k-component Gaussian mixture "
              "fitted on z_mean of the reference images; mix: x̂₁ for the first half of the "
              f"samples, x̂₂ for the second. \"paper\": the paper's tables are {NOT_AVAILABLE} "
              "here (not invented)."]
    ref = result.get("reference_numbers")
    lines += ["", f"The authors' published number for {result['dataset']}: "
              f"\"{ref['text']}\" ({ref['source']}); not comparable cell by cell."
              if ref else f"The authors published no number for {result['dataset']} "
              "that we can cite."]
    lines += ["", "| | Split VAE | vanilla VAE |", "|---|---|---|"]
    for key, label, digits in OTHER_ROWS:
        cells = result["other"].get(key, {})
        if cells:
            lines.append(f"| {label} | " + " | ".join(
                _pm(cells[k], digits) if k in cells else NOT_AVAILABLE
                for k in ("split", "vanilla")) + " |")
    lines += ["", "Split minus vanilla, paired by seed (negative: the split model's number "
              "is lower; lower is better in every row):", "",
              "| | " + " | ".join(f"seed {s}" for s in result["seeds"]) + " | mean ± sd |",
              "|---|" + "---|" * (len(result["seeds"]) + 1)]
    for key, st in result["split_minus_vanilla"].items():
        digits = 5 if key == "reconstruction_mse" else 2
        scale = max(abs(v) for v in st["values"])
        lines.append(f"| {key} | " + " | ".join(_num(v, digits, scale, "+")
                                                for v in st["values"])
                     + f" | {_pm(st, digits)} |")
    lines += ["", "## Reading", "", "| claim | diffs per seed | mean | holds in every seed "
              "| beyond the seeds' spread |", "|---|---|---|---|---|"]
    for claim, v in result["analysis"]["claims"].items():
        scale = max(abs(x) for x in v["values"])
        beyond = "n/a (1 run)" if v["exceeds_spread"] is None else \
            ("yes" if v["exceeds_spread"] else "no") + f" (spread {_num(v['spread'])})"
        lines.append(f"| {claim} | " + ", ".join(_num(x, 2, scale, "+") for x in v["values"])
                     + f" | {_num(v['mean'], 2, scale, '+')} | "
                     f"{'yes' if v['holds_every_seed'] else 'no'} | {beyond} |")
    lines += ["", "Split kind of each run: " + ", ".join(
        f"{name}: {k['kind']} ({100 * k['high_frequency_fraction']:.1f}% of σ's energy "
        "high-frequency)" for name, k in result["split_kind"].items()) + "."]
    for extra in result["extra"].values():
        if extra.get("markdown"):
            lines += ["", extra["markdown"]]
    return "\n".join(lines) + "\n"
