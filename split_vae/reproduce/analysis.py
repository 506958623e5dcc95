"""The reading of a reproduction: paired differences (split - vanilla of the
same seed), mean and spread over seeds, and the paper's claims checked on them.

The paper (Section VI) says the split network's x_hat improves marginally on
the vanilla one's and that x1 and x2 score significantly better; the claims
below put each into numbers: the paired differences per seed, whether the sign
holds in every seed, and whether the mean difference exceeds the spread of
the seeds.
"""

from __future__ import annotations

import numpy as np


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


def part_keys(row) -> list[str]:
    """The images a split run measured, x1..xK (the paper's x1, x2 for K = 2)."""
    keys = [k for k in row["fd_gen"] if k[0] == "x" and k[1:].isdigit()]
    return sorted(keys, key=lambda k: int(k[1:]))


def _best_part(row, source):
    return min(row[f"fd_{source}"][k] for k in part_keys(row))


def stats(values):
    v = np.asarray(values, dtype=np.float64)
    return {"values": v.tolist(), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def _verdict(diffs, spread):
    """A claim 'a < b' over seeds: the paired differences a - b."""
    d = stats(diffs)
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
        spread = max(stats(a)["std"], stats(b)["std"])
        rows[key] = {"label": label, "split": stats(a), "vanilla": stats(b),
                     "split_minus_vanilla": _verdict(np.subtract(a, b).tolist(), spread)}
    parts = {}
    for source in ("gen", "gmm"):
        for part in part_keys(split[0]) + ["mix"]:
            parts[f"fd_{source}_{part}"] = stats([r[f"fd_{source}"][part] for r in split])
    claims = {}
    for source in ("gen", "gmm"):
        x_hat_split = [r[f"fd_{source}"]["x_hat"] for r in split]
        x_hat_vanilla = [r[f"fd_{source}"]["x_hat"] for r in vanilla]
        best = [_best_part(r, source) for r in split]
        claims[f"split x_hat beats vanilla x_hat ({source.upper()})"] = \
            rows[f"fd_{source}_x_hat"]["split_minus_vanilla"]
        claims[f"split's better part (min of {', '.join(part_keys(split[0]))}) beats its "
               f"x_hat ({source.upper()})"] = \
            _verdict(np.subtract(best, x_hat_split).tolist(), stats(x_hat_split)["std"])
        claims[f"split's better part beats vanilla x_hat ({source.upper()})"] = \
            _verdict(np.subtract(best, x_hat_vanilla).tolist(),
                     max(stats(best)["std"], stats(x_hat_vanilla)["std"]))
    claims["split keeps more latent variables active (inactive by variance)"] = \
        rows["inactive_by_variance"]["split_minus_vanilla"]
    kinds = {s: models[f"split_seed{s}"]["split_kind"]["kind"] for s in seeds}
    by_kind = {}
    for kind in sorted(set(kinds.values())):
        ks = [s for s in seeds if kinds[s] == kind]
        sub = [models[f"split_seed{s}"] for s in ks]
        van = [models[f"vanilla_seed{s}"] for s in ks]
        by_kind[kind] = {"seeds": ks, **{
            f"{source}_{what}": stats(vals)
            for source in ("gen", "gmm")
            for what, vals in (("split_x_hat", [r[f"fd_{source}"]["x_hat"] for r in sub]),
                               ("split_best_part", [_best_part(r, source) for r in sub]),
                               ("split_mix", [r[f"fd_{source}"]["mix"] for r in sub]),
                               ("vanilla_x_hat", [r[f"fd_{source}"]["x_hat"] for r in van]))},
            "best_part_beats_x_hat_gen_every_seed": bool(all(
                _best_part(r, "gen") < r["fd_gen"]["x_hat"] for r in sub))}
    return {"rows": rows, "split_parts": parts, "claims": claims,
            "split_kind_by_seed": {str(s): kinds[s] for s in seeds}, "by_kind": by_kind}
