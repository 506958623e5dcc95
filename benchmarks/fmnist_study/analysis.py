"""The check of recomputed numbers against the committed ones. The paired
analysis (split - vanilla of the same seed, mean and spread over seeds, the
claims) is the library's, `split_vae.reproduce.analysis`, re-exported here."""

from __future__ import annotations

from split_vae.reproduce.analysis import analyse, stats  # noqa: F401 (the study's names)

# Recomputed numbers must match the committed ones within this tolerance:
# |new - committed| <= RTOL * |committed| + ATOL. The margin absorbs other
# BLAS/oneDNN builds, thread counts and backends; on the machine that wrote
# them they were identical.
RTOL, ATOL = 0.02, 0.02


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


def largest_deviation(new: dict, committed: dict, parts=COMPARED) -> float:
    """max |new - committed| / max(|committed|, 1e-12) over the compared numbers."""
    worst = 0.0
    for part in parts:
        a, b = dict(_flatten(new[part])), dict(_flatten(committed[part]))
        for k, old in b.items():
            if isinstance(old, (int, float)) and not isinstance(old, bool) and k in a \
                    and not any(x in k for x in NOT_COMPARED):
                worst = max(worst, abs(a[k] - old) / max(abs(old), 1e-12))
    return worst


def compare(new: dict, committed: dict, rtol=RTOL, atol=ATOL, parts=COMPARED) -> list[str]:
    """The numbers of `new` that differ from `committed` beyond the tolerance
    (in the entries `parts` of both)."""
    bad = []
    for part in parts:
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
