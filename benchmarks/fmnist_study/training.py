"""The study's models: its reduced configuration and its plan for `reproduce`.

The training itself is `split_vae.reproduce`'s (split_vae/reproduce/runner.py):
the two models of a seed are paired (same initialisation of the shared layers,
same batches in the same order), and training is checkpointed after every
chunk (here a third of an epoch) with weights and progress in one file, so a
kill at any moment resumes on weights and progress that belong together.
"""

from __future__ import annotations

import numpy as np

from . import SEEDS, WEIGHTS_DIR, WORK_DIR

# === The reduced configuration ===
# Everything not listed is the paper's fashion_mnist preset: 32x32x1 input
# (28x28 zero-padded), latent_dim 32, beta 8, kernel 3, 4 scales
# (num_scale 4: the decoder runs 4, 8, 16, 32 as the paper's), one residual
# block of depth 2 per scale, batches of 100, 20 GMM components.
REDUCED = dict(
    # A quarter of the paper's width (64 -> 16, 512 -> 128): 0.81M instead of
    # 12.8M parameters, which trains on two CPU cores.
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
CHUNKS_PER_EPOCH = 3  # a checkpoint every third of an epoch
EVAL_IMAGES = 10_000  # the reference (test) images and the samples per source


def study_config(split: bool):
    import split_vae

    return split_vae.get_preset("fashion_mnist").replace(split=split, **REDUCED)


def study_plan(runs: int = len(SEEDS), eval_images: int = EVAL_IMAGES, config=None):
    """The study as a plan of `split_vae.reproduce`: its runs are the pairs
    split/vanilla of seeds 0..runs-1, trained on every training image in chunks
    of a third of an epoch, evaluated in FD-FMNIST with a 20-component GMM."""
    from split_vae.reproduce import Plan

    return Plan(dataset="fashion_mnist", scale="custom",
                config=config or study_config(True), runs=runs, gmm=(20,),
                history_every=None, chunks_per_epoch=CHUNKS_PER_EPOCH,
                train_images=None, eval_images=eval_images, extractor="fd-fmnist")


def study_layout(weights_dir: str = WEIGHTS_DIR, work_dir: str = WORK_DIR, out=None):
    """Where the study's presets (weights_dir/<name>) and checkpoints
    (work_dir/<name>/checkpoint.keras) live, `reproduce`'s other files in out."""
    from split_vae.reproduce import Layout

    return Layout(out or work_dir, models_dir=weights_dir, work_dir=work_dir)


def model_names(seeds=SEEDS):
    """(name, split, seed) in training order: the two models of a seed one after the other."""
    return [(f"{kind}_seed{seed}", kind == "split", seed)
            for seed in seeds for kind in ("split", "vanilla")]


def train_one(name: str, split: bool, seed: int, train_images: np.ndarray,
              weights_dir: str = WEIGHTS_DIR, work_dir: str = WORK_DIR, config=None) -> None:
    """Train one model of the study into the preset directory weights_dir/name,
    resuming from work_dir/name/checkpoint.keras; a finished model is skipped.
    `reproduce`'s training of one run (`pipeline.train_and_save`)."""
    from split_vae.reproduce.pipeline import is_finished, train_and_save
    from split_vae.reproduce.plan import Run

    layout = study_layout(weights_dir, work_dir)
    if is_finished(layout.model(name)):
        print(f"[study] {name}: finished, skipped ({layout.model(name)})", flush=True)
        return
    plan = study_plan(runs=seed + 1, config=config.replace(split=True) if config else None)
    train_and_save(plan, layout, Run(name, split, seed), train_images)
    print(f"[study] {name}: saved {layout.model(name)}", flush=True)


def train_all(runs: int = len(SEEDS)) -> None:
    """Train every model of the study (`reproduce` without its evaluation)."""
    from split_vae.reproduce import reproduce

    reproduce(study_plan(runs), WORK_DIR, layout=study_layout(), evaluate=False)
    print("[study] every model is trained", flush=True)


def train_fd_fmnist_classifier(epochs: int = 8) -> None:
    """Train the FD-FMNIST classifier and ship it in split_vae/assets/."""
    from split_vae.metrics import fd_fmnist

    model, card = fd_fmnist.train_classifier(epochs=epochs)
    path = fd_fmnist.save_classifier(model, card)
    print(f"[study] FD-FMNIST classifier: test accuracy {100 * card['test_accuracy']:.2f}% "
          f"after {epochs} epochs ({card['train_seconds']:.0f} s) -> {path}", flush=True)
