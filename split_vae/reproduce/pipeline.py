"""`reproduce`: train, evaluate and tabulate a plan, resumable at every level.

The output directory:

    OUT/plan.json                    the plan (a rerun must ask for the same one)
    OUT/train/<run>/checkpoint.keras the run's model and progress while it trains
    OUT/models/<run>/                the finished model (a preset directory; its
                                     metadata holds the ablation curve)
    OUT/evaluations/<run>.json       the finished model's numbers
    OUT/real.json, OUT/extra/*.json  the "real" row; per-dataset extras
    OUT/table.json, OUT/table.md     the tables (rewritten from the files above)
    OUT/figures/*.png                ablation curves, grids, split kinds

Each file is written atomically and only once its work is complete, so a kill
at any moment loses at most the chunk or evaluation under way, and the same
command continues: finished trainings and evaluations are not redone.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time

from tqdm.auto import tqdm

from .. import data
from ..fileio import atomic_write_json, atomic_write_text, read_json
from ..checkpoint import read_checkpoint_state
from . import figures
from .measure import evaluate_run, history_measure, real_distance
from .runner import chunk_bounds, save_without_optimizer, train_run
from .table import format_table, tabulate

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where everything of a reproduction lives under `out` (see the module's doc)."""

    out: str
    models_dir: str | None = None  # default OUT/models
    work_dir: str | None = None    # default OUT/train

    def checkpoint(self, name):
        return os.path.join(self.work_dir or os.path.join(self.out, "train"), name,
                            "checkpoint.keras")

    def model(self, name):
        return os.path.join(self.models_dir or os.path.join(self.out, "models"), name)

    def evaluation(self, name):
        return os.path.join(self.out, "evaluations", f"{name}.json")

    def file(self, *parts):
        return os.path.join(self.out, *parts)


def is_finished(preset_dir: str) -> bool:
    """A preset directory is complete once its metadata.json (written last) exists."""
    return os.path.exists(os.path.join(preset_dir, "metadata.json"))


def plan_record(plan) -> dict:
    d = dataclasses.asdict(plan)
    d["config"] = plan.config.to_dict()
    d["gmm"] = list(plan.gmm)
    return d


def check_same_plan(path: str, plan) -> None:
    """ValueError unless the plan at path (a previous run's) equals `plan` but
    for the number of runs (more runs add seeds; fewer tabulate the first)."""
    if not os.path.exists(path):
        return
    saved, now = read_json(path, "the reproduction's plan"), plan_record(plan)
    saved.pop("runs", None)
    now.pop("runs")
    diff = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
    if diff:
        raise ValueError(
            f"{os.path.dirname(path)} holds a reproduction of another plan (saved vs "
            f"requested: {diff}); use another --out, or the same options as before")


class Progress:
    """One bar over the plan's training chunks and evaluations, with an estimate
    of the time left from the mean durations measured so far in this process."""

    def __init__(self, total_chunks: int, done_chunks: int, total_evals: int,
                 done_evals: int, enabled: bool = True):
        self.chunks_left = total_chunks - done_chunks
        self.evals_left = total_evals - done_evals
        self.chunk_times, self.eval_times = [], []
        self.bar = tqdm(total=total_chunks + total_evals, initial=done_chunks + done_evals,
                        desc="reproduce", unit="step", disable=not enabled,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def estimate(self) -> float | None:
        """Seconds left, or None before anything of a kind still to do was timed."""
        left = 0.0
        for count, times in ((self.chunks_left, self.chunk_times),
                             (self.evals_left, self.eval_times)):
            if count:
                if not times:
                    return None
                left += count * sum(times) / len(times)
        return left

    def chunk(self, seconds: float):
        self.chunks_left -= 1
        self.chunk_times.append(seconds)
        self._advance()

    def evaluation(self, seconds: float):
        self.evals_left -= 1
        self.eval_times.append(seconds)
        self._advance()

    def _advance(self):
        left = self.estimate()
        text = "left: unknown" if left is None else f"left ~{_duration(left)}"
        self.bar.set_postfix_str(text)
        self.bar.update(1)
        logger.debug("reproduce: %d chunks and %d evaluations to go, %s", self.chunks_left,
                     self.evals_left, text)

    def close(self):
        self.bar.close()


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _done_chunks(plan, layout, runs) -> int:
    per_run = plan.config.epochs * plan.chunks_per_epoch
    done = 0
    for run in runs:
        if is_finished(layout.model(run.name)):
            done += per_run
        elif os.path.exists(layout.checkpoint(run.name)):
            try:
                done += int(read_checkpoint_state(layout.checkpoint(run.name)).get("chunk", 0))
            except (OSError, ValueError):
                pass  # damaged: load_checkpoint reports it when the run resumes
    return done


def reproduce(plan, out: str, data_dir: str | None = None, progress: bool = True,
              worker: tuple[int, int] | None = None, layout: Layout | None = None,
              evaluate: bool = True, tabulate_results: bool = True) -> dict | None:
    """Train every run of the plan, evaluate every model, write the tables and figures.

    Args:
        plan: a `plan.Plan` (`plan.make_plan`).
        out: the output directory; rerun the same call to continue.
        worker: (i, n): train and evaluate only the runs of index i modulo n
            (one process per GPU); no table.
        layout: where models and checkpoints go (default: under out).
        evaluate, tabulate_results: False stops after training, or after the
            evaluations.
    Returns:
        the tabulated result (table.json's content), or None for a worker.
    """
    layout = layout or Layout(out)
    os.makedirs(out, exist_ok=True)
    check_same_plan(layout.file("plan.json"), plan)
    atomic_write_json(layout.file("plan.json"), plan_record(plan))
    logger.info("reproduce: %s", plan.describe())
    runs = plan.runs_of_worker(worker)
    test = data.load(plan.dataset, "test", as_numpy=True, limit=plan.eval_images,
                     data_dir=data_dir, image_shape=plan.config.image_shape)
    cache = layout.file("cache")
    bar = Progress(len(runs) * plan.config.epochs * plan.chunks_per_epoch,
                   _done_chunks(plan, layout, runs), len(runs),
                   sum(os.path.exists(layout.evaluation(r.name)) for r in runs)
                   if evaluate else 0, progress)
    try:
        to_train = [r for r in runs if not is_finished(layout.model(r.name))]
        for run in runs:
            if run not in to_train:
                logger.info("reproduce: %s finished, skipped (%s)", run.name,
                            layout.model(run.name))
        if to_train:
            train_images = data.load(plan.dataset, "train", as_numpy=True,
                                     limit=plan.train_images, data_dir=data_dir,
                                     image_shape=plan.config.image_shape)
            measure = (history_measure(plan.extractor, test, plan.history_samples,
                                       plan.history_gmm, cache_dir=cache)
                       if plan.history_every else None)
            for run in to_train:
                train_and_save(plan, layout, run, train_images, measure,
                               on_chunk=lambda i, n, s: bar.chunk(s))
        for run in runs if evaluate else ():
            path = layout.evaluation(run.name)
            if os.path.exists(path):
                continue
            start = time.time()
            row = evaluate_run(layout.model(run.name), test, plan.extractor, plan.gmm,
                               cache_dir=cache)
            atomic_write_json(path, row)
            logger.info("reproduce: evaluated %s in %.0f s", run.name, time.time() - start)
            bar.evaluation(time.time() - start)
    finally:
        bar.close()
    if worker is not None or not tabulate_results:
        return None
    return write_tables(plan, layout, test, data_dir)


def train_and_save(plan, layout, run, train_images, measure=None, on_chunk=None) -> None:
    """Train (or resume) one run of the plan and save it as a preset directory."""
    name = run.name
    model, state = train_run(
        name, plan.config_of(run), run.seed, train_images, layout.checkpoint(name),
        chunks_per_epoch=plan.chunks_per_epoch, history=measure,
        history_every=plan.history_every or 1, on_chunk=on_chunk)
    bounds = chunk_bounds(len(train_images), plan.chunks_per_epoch)
    steps = plan.config.epochs * sum(math.ceil(int(b - a) / plan.config.batch_size)
                                     for a, b in zip(bounds[:-1], bounds[1:]))
    source = {"reproduce": plan.dataset, "scale": plan.scale, "seed": run.seed,
              "train_images": int(len(train_images)), "steps": int(steps),
              "chunks": state["chunk"], "train_seconds": round(state["train_seconds"], 1),
              "final": state["history"][-1] if state["history"] else None,
              "fid_history": state["fid_history"], "history_extractor": plan.extractor}
    save_without_optimizer(model, layout.model(name), plan.dataset, source)
    logger.info("reproduce: %s finished (%.0f s of training) -> %s", name,
                state["train_seconds"], layout.model(name))


def write_tables(plan, layout, test, data_dir=None) -> dict:
    """table.json, table.md and the figures, from the evaluations on disk."""
    rows = {r.name: read_json(layout.evaluation(r.name), "an evaluation")
            for r in plan.run_list()}
    real_path = layout.file("real.json")
    if not os.path.exists(real_path):
        train = data.load(plan.dataset, "train", as_numpy=True, limit=len(test),
                          data_dir=data_dir, image_shape=plan.config.image_shape)
        atomic_write_json(real_path, real_distance(plan.extractor, test, train,
                                                   cache_dir=layout.file("cache")))
    extra = figures.dataset_extras(plan, layout, test, data_dir)
    result = tabulate(plan, rows, read_json(real_path, "the real row"), extra)
    result["figures"] = figures.write_figures(plan, layout, result)
    atomic_write_json(layout.file("table.json"), result)
    atomic_write_text(layout.file("table.md"), format_table(result))
    logger.info("reproduce: wrote %s and %s", layout.file("table.md"),
                layout.file("table.json"))
    return result


