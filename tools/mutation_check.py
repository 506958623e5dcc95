"""Mutation check: does the fast test suite fail when paper-critical code is wrong?

Each mutant is one small change to the library (a factor of the loss, the
composition, the sampling noise, the balance, a checkpoint rule, a protocol
choice of the evaluation, the Fréchet distance, a preprocessing step, the
legacy loader). The tool applies it to a temporary copy of the repository,
runs the fast suite there with `-x` (the mutant's most relevant tests first,
so that a killed mutant stops early, then every other fast test file), and
prints a table and `mutants killed: K/N`.

Targets are found by pattern, never by file and line: each mutant's regular
expression is searched in every .py file under split_vae/, so it keeps working
after code moves between modules or is reformatted. A pattern that matches
nothing, or more than one place, is an error (exit status 2), so the tool
cannot rot into checking nothing.

Usage (from the repository root):

    python tools/mutation_check.py                 # every mutant
    python tools/mutation_check.py --quick         # the small subset CI runs
    python tools/mutation_check.py --only balance-min,noise-scale
    python tools/mutation_check.py --list          # where each mutant applies, no tests
    python tools/mutation_check.py --baseline      # first check the unmutated suite passes

Exit status: 0 when every mutant not marked equivalent is killed, 1 when one
survives, 2 on a pattern or setup error.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "split_vae"
IGNORED = (".git", "__pycache__", ".pytest_cache", "runs", "*.egg-info", ".ipynb_checkpoints")


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    area: str
    pattern: str          # regex searched in split_vae/**/*.py; must match exactly once
    replacement: str      # re.Match.expand template
    tests: tuple          # node ids and test files to run first (see `stages`)
    quick: bool = False   # part of the subset CI runs
    equivalent: str = ""  # why no test can kill it (not counted; run on request)


M = Mutant
MUTANTS = [
    # --- the loss ------------------------------------------------------------
    M("loss-rec-factor", "loss", r"0\.5\s*\*\s*(ops\.sum\(\s*ops\.reshape\(\s*sq)", r"1.0 * \1",
      ("tests/test_model.py",)),
    M("loss-gamma-multiplies", "loss", r"\brec\s*/\s*gamma\b", "rec * gamma",
      ("tests/test_model.py",)),
    M("loss-no-beta", "loss", r"\bbeta\s*\*\s*kl\b", "kl", ("tests/test_model.py",)),
    M("kl-std-for-var", "loss",
      r"ops\.exp\(\s*z_log_var\s*\)(\s*-\s*1(?:\.0)?\s*-\s*z_log_var)",
      r"ops.exp(0.5 * z_log_var)\1", ("tests/test_model.py",)),
    M("mse-not-squared", "loss", r"ops\.mean\(\s*sq\s*\)",
      "ops.mean(ops.sqrt(sq))", ("tests/test_model.py",)),
    M("loss-ignores-gamma", "loss",
      r'(vae_loss_terms\([^)]*?y_pred\["z_log_var"\],\s*)gamma\b', r"\g<1>1.0",
      ("tests/test_model.py::test_model_loss_uses_gamma_and_beta_of_the_model",
       "tests/test_model.py", "tests/test_training.py")),
    M("loss-divides-by-running", "loss", r"(\n\s*gamma\s*=\s*[^\n]*)\bself\.gamma\b",
      r"\1self.mse_running",
      ("tests/test_training.py::test_balance_min_clips_gamma_and_loss_of_batch_t_uses_gamma_"
       "after_t_minus_1", "tests/test_training.py")),
    M("estimate-gamma-abs", "balance",
      r"(mse\s*=\s*float\(np\.mean\()np\.square\((images\s*-\s*x_hat)\)",
      r"\1np.abs(\2)",
      ("tests/test_training.py::test_estimate_gamma_sets_gamma_to_the_reconstruction_mse",
       "tests/test_training.py")),
    M("dataset-tuple-takes-label", "data", r"lambda \*items: items\[0\]",
      "lambda *items: items[-1]",
      ("tests/test_training.py::test_dataset_of_image_label_tuples_trains_on_the_images",
       "tests/test_training.py")),
    M("eval-loss-samples", "loss",
      r"(y_pred\s*=\s*self\._forward\(\s*x\s*,\s*training\s*=\s*)False", r"\1True",
      ("tests/test_training.py::test_evaluate_and_validation_compute_the_loss_without_sampling",
       "tests/test_training.py",)),
    # --- the composition -------------------------------------------------------
    M("compose-sigma-twice", "composition", r"\(1(?:\.0)?\s*-\s*sigma\)\s*\*\s*x2",
      "sigma * x2", ("tests/test_model.py",), quick=True),
    M("x1-channels", "composition",
      r"(x1\s*=\s*decoded\[\.\.\.,\s*)1\s*:\s*1\s*\+\s*channels\]", r"\g<1>0:channels]",
      ("tests/test_model.py",)),
    # --- sampling --------------------------------------------------------------
    M("noise-scale", "sampling",
      r"ops\.exp\(\s*(?:0\.5\s*\*\s*z_log_var|z_log_var\s*/\s*2(?:\.0)?)\s*\)",
      "ops.exp(z_log_var)", ("tests/test_model.py",), quick=True),
    M("noise-at-inference", "sampling", r"if not training:(\s*\n\s*return z_mean)",
      r"if False:\1", ("tests/test_model.py",)),
    M("prior-uniform-generate", "sampling",
      r"default_rng\(seed\)\.standard_normal\(\s*(\(\s*int\(n\),\s*self\.latent_dim\s*\))",
      r"default_rng(seed).uniform(-3 ** 0.5, 3 ** 0.5, size=\1",
      ("tests/test_model.py::test_generate_draws_the_documented_prior_sample",
       "tests/test_model.py")),
    M("gmm-diag", "GMM", r'covariance_type\s*=\s*"full"', 'covariance_type="diag"',
      ("tests/test_sampling.py",)),
    M("gmm-sorted-draw", "GMM", r"z\[\s*rng\.permutation\(\s*len\(z\)\s*\)\s*\]", "z",
      ("tests/test_sampling.py",)),
    # --- the balance -----------------------------------------------------------
    M("balance-no-min", "balance",
      r"(self\._gamma\s*=\s*)min\(\s*self\._gamma\s*,\s*self\._running\s*\)",
      r"\1self._running", ("tests/test_training.py::test_balance_min_clips_gamma_and_loss_of_batch_t_uses_gamma_after_t_minus_1",
       "tests/test_training.py",), quick=True),
    M("balance-fixed-decay", "balance",
      r"self\.decay\s*\*\s*self\._running\s*\+\s*\(1(?:\.0)?\s*-\s*self\.decay\)\s*\*\s*mse",
      "0.99 * self._running + 0.01 * mse", ("tests/test_training.py::test_balance_min_clips_gamma_and_loss_of_batch_t_uses_gamma_after_t_minus_1",
       "tests/test_training.py",)),
    M("balance-nan", "balance", r"if not math\.isfinite\(\s*mse\s*\):", "if False:",
      ("tests/test_training.py::test_balance_keeps_the_last_gamma_on_a_non_finite_mse",
       "tests/test_training.py",)),
    M("balance-decay-range", "balance", r"if not 0(?:\.0)? <= decay < 1(?:\.0)?:",
      "if not 0.0 <= decay <= 1.0:", ("tests/test_training.py::test_balance_decay_range_is_checked",
       "tests/test_training.py",)),
    M("batch-mse-mean", "balance", r'LastValue\(\s*name\s*=\s*"batch_mse"\s*\)',
      'keras.metrics.Mean(name="batch_mse")', ("tests/test_training.py::test_balance_min_clips_gamma_and_loss_of_batch_t_uses_gamma_after_t_minus_1",
       "tests/test_training.py",)),
    M("last-value-alias", "balance", r"return ops\.copy\(self\.value\)",
      "return ops.convert_to_tensor(self.value)",
      ("tests/test_training.py::test_validation_keeps_the_training_value_of_last_value_metrics",
       "tests/test_training.py",)),
    # --- checkpoints and resume --------------------------------------------------
    M("ckpt-every", "checkpoints", r"if \(epoch \+ 1\) % self\.every:(\s*\n\s*return\s*\n\s*save_checkpoint\()",
      r"if epoch % self.every:\1", ("tests/test_training.py::test_checkpoint_every_n_epochs_and_only_when_finite",
       "tests/test_training.py",)),
    M("ckpt-nan-saved", "checkpoints",
      r"if loss is None or not math\.isfinite\(float\(loss\)\):(\s*\n\s*return)",
      r"if loss is None:\1", ("tests/test_training.py::test_nan_loss_stops_and_keeps_the_last_good_checkpoint",
       "tests/test_training.py",)),
    M("ckpt-epoch-count", "checkpoints", r'(save_checkpoint\(self\.model, self\.path, \{\s*"epoch":\s*)epoch\s*\+\s*1\b', r"\1epoch",
      ("tests/test_training.py::test_checkpoint_every_n_epochs_and_only_when_finite",
       "tests/test_training.py",)),
    M("write-not-atomic", "checkpoints", r"write_fn\(tmp\)", "write_fn(path)",
      ("tests/test_training.py::test_atomic_write_keeps_the_old_file_when_a_write_fails",
       "tests/test_training.py",)),
    M("seed-state-not-restored", "checkpoints",
      r'if "seed_state" in list\(store\.keys\(\)\):', "if False:",
      ("tests/test_training.py::test_resume_continues_weights_optimizer_epoch_and_gamma",
       "tests/test_training.py",)),
    M("history-resume-drops-row", "checkpoints", r'r\["epoch"\]\s*<=\s*epoch\b',
      'r["epoch"] < epoch', ("tests/test_training.py::test_history_writer_rows_and_resume",
       "tests/test_training.py",)),
    M("cli-no-resume-ignored", "checkpoints",
      r"resume\s*=\s*not\s+args\.no_resume", "resume=True",
      ("tests/test_cli.py::test_balance_resume_and_no_resume_have_their_effect",
       "tests/test_cli.py",)),
    M("cli-resume-from-0", "checkpoints",
      r'initial_epoch\s*=\s*int\(state\["epoch"\]\)',
      "initial_epoch = 0", ("tests/test_cli.py::test_balance_resume_and_no_resume_have_their_effect",
       "tests/test_cli.py",)),
    M("ckpt-prev-not-kept", "checkpoints",
      r"if os\.path\.exists\(path\) and _is_complete_zip\(path\):", "if False:",
      ("tests/test_training.py::test_checkpoint_state_lives_in_the_file_and_keras_still_loads_it",
       "tests/test_training.py",)),
    M("ckpt-damaged-kept-as-prev", "checkpoints", r"\s+and _is_complete_zip\(path\)", "",
      ("tests/test_training.py::test_a_damaged_checkpoint_is_named_and_the_previous_one_resumes",
       "tests/test_training.py",)),
    M("ckpt-no-fallback", "checkpoints", r"for candidate in \(path, prev\):",
      "for candidate in (path,):",
      ("tests/test_training.py::test_a_damaged_checkpoint_is_named_and_the_previous_one_resumes",
       "tests/test_training.py",)),
    M("ckpt-state-outside", "checkpoints",
      r"model\.save\(tmp\)\n(\s*)with zipfile\.ZipFile\(tmp, \"a\"\) as z:\n\s*z\.writestr\(STATE_ENTRY, json\.dumps\(state\)\)\n\n(\s*)atomic_write\(path, write\)",
      "model.save(tmp)\n\n\\2atomic_write(path, write)\n\\2with zipfile.ZipFile(path, \"a\") as z:\n"
      "\\2    z.writestr(STATE_ENTRY, json.dumps(state))",
      ("tests/test_training.py::test_a_kill_between_weights_and_state_cannot_make_them_disagree",
       "tests/test_training.py",)),
    M("cli-no-balance-ignored", "balance", r"if not args\.no_balance:", "if True:",
      ("tests/test_cli.py::test_balance_resume_and_no_resume_have_their_effect",
       "tests/test_cli.py",)),
    M("cli-seed-ignored", "checkpoints", r"(keras\.utils\.set_random_seed\()args\.seed(\))(?=(?:[^\n]*\n){1,3}[^\n]*initial_epoch)",
      r"\g<1>0\2", ("tests/test_cli.py::test_seed_fixes_the_initial_weights",
       "tests/test_cli.py",)),
    M("cli-beta-ignored", "loss", r'\("beta",\s*"beta"\),\s*', "", ("tests/test_cli.py::test_beta_learning_rate_and_latent_dim_reach_the_model",
       "tests/test_cli.py",)),
    M("cli-figure-no-input-row", "figures", r"inputs\s*=\s*test_images\[:n\]", "inputs=None",
      ("tests/test_plotting.py::test_training_figures_show_prior_samples_and_test_reconstructions",
       "tests/test_cli.py::test_vanilla_run_draws_the_x_hat_row_only",
       "tests/test_cli.py",)),
    M("figure-rows-swapped", "figures", r'map_names\(k\) \+ part_names\(k\) \+ \("x_hat",\)',
      'map_names(k) + part_names(k)[::-1] + ("x_hat",)', ("tests/test_plotting.py",)),
    M("figure-input-row-dropped", "figures",
      r'rows\s*=\s*\[\("input",\s*inputs\)\]\s*if inputs is not None else \[\]', "rows = []",
      ("tests/test_plotting.py",)),
    M("figure-colour-as-grey", "figures",
      r"a\[\.\.\., 0\] if a\.shape\[-1\] == 1 else a\b", "a[..., 0]",
      ("tests/test_plotting.py",)),
    M("figure-empty-not-named", "figures", r"if not rows:", "if False:",
      ("tests/test_plotting.py",)),
    M("mosaic-column-major", "figures",
      r"reshape\(side, side, h, w\)\.transpose\(0, 2, 1, 3\)",
      "reshape(side, side, h, w).transpose(1, 2, 0, 3)", ("tests/test_plotting.py",)),
    M("history-epoch-shifted", "checkpoints", r'row\s*=\s*\{"epoch":\s*epoch\s*\+\s*1\}',
      'row = {"epoch": epoch}',
      ("tests/test_training.py::test_history_writer_during_fit_matches_the_history",
       "tests/test_training.py")),
    M("cli-learning-rate-ignored", "loss", r'\("learning_rate",\s*"learning_rate"\),\s*', "",
      ("tests/test_cli.py::test_beta_learning_rate_and_latent_dim_reach_the_model",
       "tests/test_cli.py")),
    # --- latent statistics -------------------------------------------------------
    M("latent-std-for-var", "latent statistics", r"var_mean\s*=\s*z_mean\.var\(axis=0\)",
      "var_mean = z_mean.std(axis=0)", ("tests/test_evaluate.py::test_latent_statistics_counts_and_variance_law",
       "tests/test_evaluate.py",)),
    M("latent-posterior-std", "latent statistics",
      r"mean_sigma2\s*=\s*np\.exp\(\s*z_log_var\s*\)", "mean_sigma2 = np.exp(0.5 * z_log_var)",
      ("tests/test_evaluate.py::test_latent_statistics_counts_and_variance_law",
       "tests/test_evaluate.py",)),
    M("latent-inactive-inverted", "latent statistics",
      r"inactive_var\s*=\s*var_mean\s*<\s*var_threshold",
      "inactive_var = var_mean > var_threshold", ("tests/test_evaluate.py::test_latent_statistics_counts_and_variance_law",
       "tests/test_evaluate.py",)),
    M("latent-threshold-inclusive", "latent statistics",
      r"inactive_var\s*=\s*var_mean\s*<\s*var_threshold",
      "inactive_var = var_mean <= var_threshold", ("tests/test_evaluate.py",),
      equivalent="a variance exactly equal to the threshold 0.05 has probability zero for "
                 "real encoders; the paper's 'below 0.05' does not say which side it falls"),
    # --- the evaluation protocol ---------------------------------------------------
    M("eval-gmm-on-train", "evaluation protocol",
      r"(step\(\"GEN samples\"\)\s*\n\s*gmm = )sampling\.fit_gmm\(\s*z_mean\s*,\s*k\s*,",
      r"\1sampling.fit_gmm(model.encode(train_images if train_images is "
      "not None else test_images, batch_size=batch_size)[0], k,", ("tests/test_evaluate.py::test_evaluate_model_follows_the_papers_protocol",
       "tests/test_evaluate.py",)),
    M("eval-gen-seed", "evaluation protocol",
      r"(samples = \{\"gen\": model\.generate\(\s*n,\s*seed=)seed\b",
      r"\1seed + 1", ("tests/test_evaluate.py::test_evaluate_model_follows_the_papers_protocol",
       "tests/test_evaluate.py",)),
    M("eval-rec-mse-zero", "evaluation protocol",
      r'rec_mse\s*=\s*float\(np\.mean\(np\.square\(rec\["x_hat"\]\s*-\s*test_images\)\)\)',
      "rec_mse = 0.0", ("tests/test_evaluate.py::test_evaluate_model_follows_the_papers_protocol",
       "tests/test_evaluate.py",)),
    M("eval-mix-swapped", "evaluation protocol",
      r'mix_images\(\*\(feats\[k\] for k in images\)\)',
      'mix_images(*(feats[k] for k in reversed(images)))', ("tests/test_evaluate.py::test_evaluate_model_split",
       "tests/test_evaluate.py",)),
    M("mix-half-rounds-up", "evaluation protocol",
      r"a\[i \* n // k:\(i \+ 1\) \* n // k\]", "a[-(-i * n // k):-(-(i + 1) * n // k)]",
      ("tests/test_evaluate.py::test_mix_takes_x1_first_half_x2_second",
       "tests/test_evaluate.py")),
    # --- the evaluation's defaults offline (the README's evaluate line) -------------
    M("samples-default-ignores-reference", "evaluation protocol",
      r"return min\(PAPER_SAMPLES,\s*int\(n_reference\)\)", "return PAPER_SAMPLES",
      ("tests/test_evaluate_offline.py::"
       "test_samples_default_is_the_papers_10000_or_the_reference_set",
       "tests/test_evaluate_offline.py")),
    M("samples-default-threshold-moved", "evaluation protocol",
      r"return min\(PAPER_SAMPLES,\s*int\(n_reference\)\)",
      "return min(PAPER_SAMPLES + 1, int(n_reference))",
      ("tests/test_evaluate_offline.py::"
       "test_samples_default_is_the_papers_10000_or_the_reference_set",
       "tests/test_evaluate_offline.py")),
    M("auto-fallback-any-grayscale", "evaluation protocol",
      r"if shape == tuple\(FD_FMNIST_SHAPE\):", "if shape[-1] == FD_FMNIST_SHAPE[-1]:",
      ("tests/test_evaluate_offline.py::"
       "test_the_offline_fallback_is_chosen_by_the_image_shape",
       "tests/test_evaluate_offline.py")),
    M("auto-ignores-cached-weights", "evaluation protocol",
      r"cached = cached_inception_weights\(\)", "cached = None",
      ("tests/test_evaluate_offline.py::"
       "test_cached_weights_give_the_papers_inception_without_network",
       "tests/test_evaluate_offline.py")),
    M("cli-paths-unchecked", "command line",
      r"if args\.check_inputs is not None:", "if False:",
      ("tests/test_cli_inputs.py",)),
    # --- the Fréchet distance ------------------------------------------------------
    M("fd-cross-term-once", "Fréchet distance",
      r"(np\.trace\(sigma2\)\s*)-\s*2\.0\s*\*\s*tr\b", r"\1- tr", ("tests/test_metrics.py",),
      quick=True),
    M("fd-sqrtm-cross-term-once", "Fréchet distance",
      r"(np\.trace\(sigma2\)\s*)-\s*2\.0\s*\*\s*np\.trace\(root\)", r"\1- np.trace(root)",
      ("tests/test_metrics.py",)),
    M("fd-no-sqrt", "Fréchet distance", r"np\.sqrt\((np\.clip\(eig,\s*0\.0,\s*None\))\)",
      r"\1", ("tests/test_metrics.py",)),
    M("fd-complex-dropped", "Fréchet distance", r"if eig\.min\(\)\s*<\s*-rtol\s*\*\s*top:",
      "if False:", ("tests/test_metrics.py",)),
    M("fd-ddof0", "Fréchet distance", r"centred\.T\s*@\s*centred\s*/\s*\(n\s*-\s*1\)",
      "centred.T @ centred / n", ("tests/test_metrics.py",)),
    # --- KID and the literature's FID (pytorch-fid's network and protocol) ---------
    M("kid-biased", "KID",
      r"\(kxx\.sum\(\) - np\.trace\(kxx\) \+ kyy\.sum\(\) - np\.trace\(kyy\)\) / \(m \* \(m - 1\)\)",
      "(kxx.sum() + kyy.sum()) / (m * m)", ("tests/test_kid.py",)),
    M("kid-quadratic-kernel", "KID", r"return k \* k \* k",
      "return k * k", ("tests/test_kid.py",)),
    M("kid-gathered-subsets-wrong-block", "KID", r"kab\[np\.ix_\(i, j\)\]",
      "kab[np.ix_(i, i % len(b))]", ("tests/test_kid.py",)),
    M("fid-7c-average-pool", "fid-inception", r'_block_e\(x, "Mixed_7c", max_pool=True\)',
      '_block_e(x, "Mixed_7c", max_pool=False)', ("tests/test_fid_inception.py",)),
    M("fid-bn-epsilon", "fid-inception", r"BatchNormalization\(epsilon=1e-3,",
      "BatchNormalization(epsilon=1e-5,", ("tests/test_fid_inception.py",)),
    M("fid-pool-counts-padding", "fid-inception",
      r'return layers\.AveragePooling2D\(3, strides=1, padding="same", dtype=_DTYPE\)\(x\)',
      'return layers.AveragePooling2D(3, strides=1, padding="valid", '
      'dtype=_DTYPE)(layers.ZeroPadding2D(1)(x))', ("tests/test_fid_inception.py",)),
    M("fid-no-uint8-rounding", "fid-inception",
      r'np\.rint\((np\.clip\(np\.asarray\(images, dtype="float32"\), 0\.0, 1\.0\) \* 255\.0)\)',
      r"(\1)", ("tests/test_fid_inception.py",)),
    M("fid-input-0-1", "fid-inception",
      r"(super\(\)\.__init__\(model, name=name, value_range=)\(-1\.0, 1\.0\)",
      r"\1(0.0, 1.0)", ("tests/test_fid_inception.py",)),
    # --- data preprocessing --------------------------------------------------------
    M("mnist-pad-corner", "data", r"\(\(0, 0\), \(2, 2\), \(2, 2\), \(0, 0\)\)",
      "((0, 0), (0, 4), (0, 4), (0, 0))", ("tests/test_data.py::test_tfds_mnist_is_padded_to_32_with_the_pixels_in_the_middle",
       "tests/test_data.py",), quick=True),
    M("celeba-crop-shift", "data", r"CELEBA_CROP\s*=\s*\(45, 173, 25, 153\)",
      "CELEBA_CROP = (44, 172, 25, 153)", ("tests/test_data.py::test_tfds_celeba_crop_and_bilinear_resize_on_known_pixels",
       "tests/test_data.py",)),
    # The one bilinear resize of the data package: CelebA from tfds, from its
    # folder, and generic folders resized to image_shape all go through it.
    M("celeba-nearest", "data",
      r'(return tf\.image\.resize\(x, hw, method=)"bilinear"', r'\1"nearest"',
      ("tests/test_data.py::test_tfds_celeba_crop_and_bilinear_resize_on_known_pixels",
       "tests/test_data.py::test_celeba_folder_resize_is_bilinear_not_nearest",
       "tests/test_data.py")),
    # The pixel scale lives in checks.py alone: its array path, its tensor path
    # (tf.data pipelines) and its inverse each have a mutant.
    M("pixel-scale-array-256", "data", r"np\.multiply\(x, _UNIT_PER_PIXEL,",
      "np.multiply(x, np.float32(1.0 / 256.0),",
      ("tests/test_checks.py", "tests/test_data.py")),
    M("pixel-scale-tensor-256", "data", r"return x \* _UNIT_PER_PIXEL",
      "return x * np.float32(1.0 / 256.0)",
      ("tests/test_checks.py::test_a_uint8_dataset_is_scaled_by_1_over_255",
       "tests/test_data.py")),
    M("pixel-inverse-254", "data", r"to_uint8\(np\.asarray\(x\) \* PIXEL_MAX\)",
      "to_uint8(np.asarray(x) * (PIXEL_MAX - 1.0))",
      ("tests/test_data.py::test_aligned_celeba_arrays_get_the_paper_crop_and_resize",
       "tests/test_data.py")),
    # --- the legacy loader ---------------------------------------------------------
    M("legacy-sort-by-name", "legacy loader", r"items\.sort\(key=lambda item: item\.index\)",
      "items.sort(key=lambda item: item.name)", ("tests/test_legacy.py::test_outputs_match_keras2",
       "tests/test_legacy.py",)),
    M("legacy-last-weight-skipped", "legacy loader",
      r"(for var, value in match_weights\([^)]*\)):", r"\1[:-1]:", ("tests/test_legacy.py::test_outputs_match_keras2",
       "tests/test_legacy.py",)),
    M("legacy-split-not-recognised", "legacy loader",
      r"if out_channels == 2 \* channels \+ 1:", "if out_channels == 2 * channels:",
      ("tests/test_legacy.py::test_outputs_match_keras2",
       "tests/test_legacy.py",)),
    M("legacy-transpose-as-conv", "legacy loader",
      r'return CONV_T if "transpose" in layer_name else CONV', "return CONV",
      ("tests/test_legacy.py::test_outputs_match_keras2",
       "tests/test_legacy.py",)),
    M("legacy-latent-from-z-log-var", "legacy loader", r"lat\.layers\[DENSE\]\[0\]",
      "lat.layers[DENSE][1]", ("tests/test_legacy.py",),
      equivalent="z_mean's and z_log_var's kernels both have shape (emb_dim, latent_dim): "
                 "the configuration inferred from either is the same"),
    # --- several replicas and workers (distribute.py) ---------------------------
    # The per-replica arithmetic is killed by two real worker processes
    # compared with one (a fast test of about a minute); the TF_CONFIG, chief
    # and port rules by in-process tests.
    M("replica-loss-unscaled", "distribute", r"return loss if n == 1 else loss / n",
      "return loss", ("tests/test_multiworker.py::test_two_workers_take_the_same_steps_as_one_process",)),
    M("replica-noise-same-rows", "distribute", r"tf\.range\(rows\) \+ first", "tf.range(rows)",
      ("tests/test_multiworker.py::test_two_workers_take_the_same_steps_as_one_process",)),
    M("replica-bn-unsynchronized", "distribute", r"sync_bn = replicas_in_sync\(\) > 1",
      "sync_bn = False", ("tests/test_multiworker.py::test_two_workers_take_the_same_steps_as_one_process",)),
    M("worker-logs-scalar", "distribute", r"tf\.reshape\(v, \(1,\)\)", "v", ("tests/test_multiworker.py::test_two_workers_take_the_same_steps_as_one_process",)),
    M("tf-config-index-range", "distribute", r"0 <= index < count", "0 <= index <= count",
      ("tests/test_multiworker.py::test_a_wrong_tf_config_is_refused_naming_the_problem",)),
    M("chief-ignores-chief-task", "distribute",
      r"self\.task_type == \"chief\" or \(not has_chief and self\.index == 0\)",
      "self.index == 0",
      ("tests/test_multiworker.py::test_the_chief_and_the_workers_read_from_tf_config",)),
    M("every-worker-writes", "distribute", r"if is_chief\(\):\n(\s*)return os\.fspath\(out\)",
      r"if True:\n\1return os.fspath(out)",
      ("tests/test_multiworker.py::test_output_dir_is_the_run_directory_on_the_chief_only",)),
    M("port-not-checked", "distribute", r"s\.bind\(\(\"\", port\)\)", "pass",
      ("tests/test_multiworker.py::test_a_port_in_use_is_refused_and_a_free_one_passes",)),
    M("startup-unbounded", "distribute",
      r"cluster_register_timeout_in_ms=int\(startup_timeout \* 1000\)",
      "cluster_register_timeout_in_ms=0",
      ("tests/test_multiworker.py::test_a_worker_that_never_comes_up_stops_the_others_after_"
       "the_startup_timeout",)),
    # --- the step bound of several workers (watchdog.py, train --step-timeout) ------
    M("step-bound-inclusive", "watchdog", r"elapsed > bound\b", "elapsed >= bound",
      ("tests/test_watchdog.py::test_an_explicit_bound_fires_just_over_it_and_not_just_under", "tests/test_watchdog.py")),
    M("step-floor-lower", "watchdog", r"\bFLOOR = 120\.0", "FLOOR = 119.0",
      ("tests/test_watchdog.py::test_the_default_is_factor_times_the_slowest_step_with_a_floor", "tests/test_watchdog.py")),
    M("step-factor-lower", "watchdog", r"\bFACTOR = 50\.0", "FACTOR = 49.0",
      ("tests/test_watchdog.py::test_the_default_is_factor_times_the_slowest_step_with_a_floor", "tests/test_watchdog.py")),
    M("step-first-bounded", "watchdog", r"len\(self\.durations\) < self\.untimed:",
      "len(self.durations) < 0:", ("tests/test_watchdog.py::test_the_first_step_is_not_bounded", "tests/test_watchdog.py")),
    M("step-sample-keeps-compile", "watchdog",
      r"basis = timed if len\(timed\) >= self\.sample else self\.durations",
      "basis = self.durations",
      ("tests/test_watchdog.py::test_the_default_comes_from_the_sample_steps_after_the_first", "tests/test_watchdog.py")),
    M("step-sample-one-short", "watchdog", r"len\(timed\) >= self\.sample\b",
      "len(timed) >= self.sample - 1",
      ("tests/test_watchdog.py::test_the_default_comes_from_the_sample_steps_after_the_first", "tests/test_watchdog.py")),
    M("step-zero-not-disabling", "watchdog", r"if self\.timeout == 0 or len", "if len",
      ("tests/test_watchdog.py::test_zero_disables_the_bound", "tests/test_watchdog.py")),
    M("step-gap-timed", "watchdog",
      r"(def on_train_batch_end\(self, batch, logs=None\):\n\s*)self\.watchdog\.disarm\(\)",
      r"\1pass", ("tests/test_watchdog.py::test_the_callback_bounds_the_steps_after_the_first", "tests/test_watchdog.py")),
    M("step-timeout-negative-read", "watchdog",
      r"if not \(math\.isfinite\(seconds\) and seconds >= 0\):",
      "if not math.isfinite(seconds):",
      ("tests/test_watchdog.py::test_a_wrong_step_timeout_is_an_argparse_error_naming_the_option", "tests/test_watchdog.py")),
    M("jax-any-error-is-a-lost-worker", "watchdog",
      r"return any\(word in text for word in _JAX_LOST\)", "return True",
      ("tests/test_watchdog.py::test_a_jax_error_counts_as_a_lost_worker_only_when_it_says_so", "tests/test_watchdog.py")),
    M("jax-any-valueerror-is-a-lost-worker", "watchdog",
      r'return "gloo" in text or "heartbeat" in text', "return True",
      ("tests/test_watchdog.py::test_a_jax_error_counts_as_a_lost_worker_only_when_it_says_so", "tests/test_watchdog.py")),
    # --- reproduce: the paper's tables with one command ----------------------------
    M("reproduce-batches-shuffled", "reproduce",
      r"shuffle=False, verbose=0, callbacks=\[balance, stop\]",
      "verbose=0, callbacks=[balance, stop]",
      ("tests/test_reproduce.py::test_a_training_interrupted_after_a_chunk_resumes_to_the_"
       "same_weights",)),
    M("reproduce-unpaired-difference", "reproduce",
      r"(_value\(b, c, \"x_hat\"\)\n\s*)for a, b in zip\(split, vanilla\)",
      r"\1for a, b in zip(split, vanilla[::-1])",
      ("tests/test_reproduce.py::test_the_table_holds_means_spreads_and_paired_differences",)),
    M("reproduce-history-point-repeated", "reproduce", r"    if epoch in epochs:\n",
      "    if False:\n",
      ("tests/test_reproduce.py::test_a_point_measured_before_a_kill_is_replaced_not_repeated",)),
    M("reproduce-workers-overlap", "reproduce", r"return runs\[i::n\]", "return runs[i:]",
      ("tests/test_reproduce.py::test_runs_are_paired_by_seed_and_shared_between_workers_"
       "without_overlap",)),
    M("reproduce-paper-cell-invented", "reproduce",
      r'(for c, _ in columns\)\n\s*)\+ f" \| \{NOT_AVAILABLE\} \|"\)',
      r'\1+ " | " + _pm(cells["gen"]) + " |")',
      ("tests/test_reproduce.py::test_the_table_holds_means_spreads_and_paired_differences",)),
    # --- K components (networks.py, model.py, parts.py, config.py) -----------------
    M("components-maps-not-softmax", "components",
      r"ops\.softmax\(logits,\s*axis=-1\)", "ops.sigmoid(logits)",
      ("tests/test_components.py::test_k3_composition_is_the_softmax_mix_of_its_images",
       "tests/test_components.py")),
    M("components-images-linear", "components",
      r"ops\.sigmoid\(images\)\]", "images]",
      ("tests/test_components.py::test_k3_composition_is_the_softmax_mix_of_its_images",
       "tests/test_components.py")),
    M("components-last-part-dropped", "components",
      r"zip\(maps\[1:\],\s*images\[1:\]\)", "zip(maps[1:-1], images[1:-1])",
      ("tests/test_components.py::test_k3_composition_is_the_softmax_mix_of_its_images",
       "tests/test_components.py")),
    M("components-images-read-from-the-maps", "components",
      r"decoded\[\.\.\.,\s*k \+ i \* channels:k \+ \(i \+ 1\) \* channels\]",
      "decoded[..., i * channels:(i + 1) * channels]",
      ("tests/test_components.py::test_k3_composition_is_the_softmax_mix_of_its_images",
       "tests/test_components.py")),
    M("components-channel-count", "components",
      r"return self\.components \* \(self\.channels \+ 1\)",
      "return self.components * self.channels + 1",
      ("tests/test_components.py::test_the_decoder_has_k_maps_and_k_images",
       "tests/test_components.py")),
    M("components-specialised-heads-share-a-branch", "components",
      r"name=f\"dec_out_part\{k \+ 1\}\"\)\(b\)", "name=f\"dec_out_part{k + 1}\")(branches[0])",
      ("tests/test_components.py::test_specialised_branches_each_give_a_logit_and_an_image",
       "tests/test_components.py")),
    M("components-mix-slices-floored", "components",
      r"a\[i \* n // k:\(i \+ 1\) \* n // k\]", "a[i * (n // k):(i + 1) * (n // k)]",
      ("tests/test_components.py::test_mix_of_k_parts_takes_equal_consecutive_slices",
       "tests/test_components.py")),
    M("components-entropy-prior-sign", "components",
      r"terms\[\"loss\"\] \+ self\.config\.map_entropy \* ops\.mean\(h\)",
      "terms[\"loss\"] - self.config.map_entropy * ops.mean(h)",
      ("tests/test_components.py::test_the_map_prior_adds_its_weight_times_the_maps_entropy",
       "tests/test_components.py")),
    M("components-entropy-mean-over-pixels", "components",
      r"return ops\.sum\(ops\.reshape\(h,", "return ops.mean(ops.reshape(h,",
      ("tests/test_components.py::test_the_map_prior_adds_its_weight_times_the_maps_entropy",
       "tests/test_components.py")),
    M("components-splitkind-rest-unweighted", "components",
      r"mj\[\.\.\., None\] \* \(xk - xj\)", "(xk - xj)",
      ("tests/test_components.py::test_the_split_kind_of_k_maps_at_k_2_is_the_papers",
       "tests/test_components.py")),
    # --- the kind of split (split_kind.py) ------------------------------------------
    M("splitkind-unweighted", "split kind", r"w\s*=\s*_action_weight\(x1,\s*x2,\s*s\.shape\)",
      "w = np.ones_like(s)", ("tests/test_split_kind.py",)),
    M("splitkind-colour-weight-summed", "split kind",
      r"np\.sqrt\(np\.sum\(\(a\s*-\s*b\)\s*\*\*\s*2,\s*axis=-1\)\)",
      "np.sum(np.abs(a - b), axis=-1)",
      ("tests/test_split_kind.py::test_colour_parts_weigh_sigma_by_the_length_of_x1_minus_x2",
       "tests/test_split_kind.py")),
    M("splitkind-plain-mean", "split kind",
      r"c\s*=\s*\(w2\s*\*\s*s\)\.sum\(axis=\(1,\s*2\),\s*keepdims=True\)\s*/[^\n]*",
      "c = s.mean(axis=(1, 2), keepdims=True)", ("tests/test_split_kind.py",)),
    M("splitkind-weight-not-squared", "split kind", r"w2\s*=\s*w\s*\*\s*w\b", "w2 = w",
      ("tests/test_split_kind.py",)),
    M("splitkind-cutoff-inclusive", "split kind", r"(fy\s*\*\*\s*2\)\s*)>\s*cutoff",
      r"\1>= cutoff", ("tests/test_split_kind.py",)),
    M("splitkind-cutoff-value", "split kind", r"SPLIT_KIND_CUTOFF\s*=\s*0\.25\b",
      "SPLIT_KIND_CUTOFF = 0.27", ("tests/test_split_kind.py",)),
    M("splitkind-threshold-value", "split kind", r"SPLIT_KIND_THRESHOLD\s*=\s*0\.5\b",
      "SPLIT_KIND_THRESHOLD = 0.52", ("tests/test_split_kind.py",)),
    M("splitkind-min-variance-value", "split kind",
      r"SPLIT_KIND_MIN_VARIANCE\s*=\s*1e-4\b", "SPLIT_KIND_MIN_VARIANCE = 1.03e-4", ("tests/test_split_kind.py",)),
    M("splitkind-variance-per-pixel", "split kind",
      r"variance\s*=\s*total\s*/\s*\(s\.shape\[1\]\s*\*\s*s\.shape\[2\]\)\s*/\s*weight",
      "variance = total / (s.shape[1] * s.shape[2]) / s.size", ("tests/test_split_kind.py",)),
]


# ---------------------------------------------------------------------------
# Finding and applying
# ---------------------------------------------------------------------------
class PatternError(Exception):
    pass


def source_files(root=ROOT):
    for base, dirs, files in os.walk(os.path.join(root, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py"):
                yield os.path.relpath(os.path.join(base, f), root)


def prose_spans(text):
    """(start, end) offsets of the docstrings, strings and comments of a source."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.STRING, tokenize.COMMENT):
            spans.append((starts[tok.start[0] - 1] + tok.start[1],
                          starts[tok.end[0] - 1] + tok.end[1]))
    return spans


def locate(mutant, root=ROOT):
    """(relative path, match) of the one place the pattern matches, or PatternError.

    Matches that start inside a string or a comment (docstrings quote the
    formulas too) are not code and are ignored.
    """
    hits = []
    for rel in source_files(root):
        with open(os.path.join(root, rel), encoding="utf8") as f:
            text = f.read()
        spans = None
        for m in re.finditer(mutant.pattern, text):
            spans = prose_spans(text) if spans is None else spans
            if not any(a <= m.start() < b for a, b in spans):
                hits.append((rel, m, text))
    if not hits:
        raise PatternError(f"{mutant.name}: pattern matches nothing under {PACKAGE}/ "
                           f"(code changed? update the mutant): {mutant.pattern!r}")
    if len(hits) > 1:
        where = ", ".join(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}"
                          for rel, m, text in hits)
        raise PatternError(f"{mutant.name}: pattern matches {len(hits)} places ({where}); "
                           "a mutant must change one")
    return hits[0]


def mutated_source(mutant, root=ROOT):
    """(relative path, line, new text of that file)."""
    rel, m, text = locate(mutant, root)
    new = text[:m.start()] + m.expand(mutant.replacement) + text[m.end():]
    if new == text:
        raise PatternError(f"{mutant.name}: the replacement changes nothing")
    try:
        compile(new, rel, "exec")
    except SyntaxError as e:
        raise PatternError(f"{mutant.name}: the mutated {rel} does not compile: {e}") from None
    return rel, text.count("\n", 0, m.start()) + 1, new


def copy_repo(dest):
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*IGNORED), symlinks=True)


# ---------------------------------------------------------------------------
# Running the tests
# ---------------------------------------------------------------------------
# The tool's own test checks that every pattern applies, which a mutated copy
# no longer satisfies by construction: it would "kill" every mutant. The
# packaging test checks that the installed package is the checkout it runs
# in, which a copy never is (it is imported through PYTHONPATH).
NOT_RUN = ("tests/test_mutation_check.py", "tests/test_packaging.py")


def fast_test_files(root=ROOT):
    tests = os.path.join(root, "tests")
    return sorted(f"tests/{f}" for f in os.listdir(tests)
                  if f.startswith("test_") and f.endswith(".py") and f"tests/{f}" not in NOT_RUN)


def run_pytest(workdir, targets, timeout, extra=()):
    """(status, failing test or None, output tail). status: passed, failed, timeout."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = workdir + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow", "-p",
           "no:cacheprovider", "-rfE", "--no-header", *extra, *targets]
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"(timeout after {timeout} s)", ""
    out = proc.stdout + proc.stderr
    if proc.returncode in (0, 5):  # 5: nothing collected (e.g. all slow)
        return "passed", None, out[-2000:]
    failing = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    return "failed", failing[0] if failing else f"(pytest exit {proc.returncode})", out[-3000:]


def stages(mutant, all_files):
    """The test runs of a mutant, in order, until one fails: the tests named
    by node id (the likeliest to fail, seconds), the files of every test it
    names, then the rest of the fast suite."""
    nodes = [t for t in mutant.tests if "::" in t]
    files = list(dict.fromkeys(t.split("::")[0] for t in mutant.tests))
    rest = [f for f in all_files if f not in files]
    return [s for s in (nodes, files, rest) if s]


def check_mutant(mutant, timeout, keep=False):
    """Apply mutant to a fresh copy and run its tests, then the rest of the fast suite."""
    rel, line, new = mutated_source(mutant)
    t0 = time.time()
    work = tempfile.mkdtemp(prefix=f"mutant-{mutant.name}-")
    try:
        repo = os.path.join(work, "repo")
        copy_repo(repo)
        with open(os.path.join(repo, rel), "w", encoding="utf8") as f:
            f.write(new)
        status, killer, tail = "passed", None, ""
        for stage in stages(mutant, fast_test_files(repo)):
            status, killer, tail = run_pytest(repo, stage, timeout)
            if status != "passed":
                break
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result = "survived" if status == "passed" else "killed"
    return {"name": mutant.name, "area": mutant.area, "where": f"{rel}:{line}",
            "result": result, "killed_by": killer or "", "seconds": time.time() - t0,
            "equivalent": mutant.equivalent, "tail": tail if result == "survived" else ""}


def run_unmutated(label, targets, timeout):
    """run_pytest on targets(repo) of a fresh unmutated copy, then remove it."""
    work = tempfile.mkdtemp(prefix=f"mutant-{label}-")
    try:
        repo = os.path.join(work, "repo")
        copy_repo(repo)
        return run_pytest(repo, targets(repo), timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def baseline(timeout):
    """The unmutated copy must pass the fast suite, or every mutant looks killed."""
    status, failing, tail = run_unmutated("baseline", fast_test_files, timeout)
    if status != "passed":
        print(tail)
        raise SystemExit(f"baseline: the unmutated fast suite does not pass ({failing}); "
                         "fix it before reading any mutation result")
    print("baseline: the unmutated fast suite passes")


def precheck(chosen, timeout):
    """The tests the chosen mutants name must pass unmutated, or a broken setup
    (a package not installed, a renamed test) would count every mutant killed."""
    nodes = list(dict.fromkeys(t for m in chosen if not m.equivalent for t in m.tests
                               if "::" in t))
    if not nodes:
        return
    status, failing, tail = run_unmutated("precheck", lambda repo: nodes, timeout)
    if status != "passed":
        print(tail)
        raise SystemExit(f"precheck: a test the mutants name fails unmutated ({failing}); "
                         "fix it (or the setup) before reading any mutation result")
    print(f"precheck: the {len(nodes)} tests the mutants name pass unmutated", flush=True)


def select(names=None, quick=False):
    chosen = [m for m in MUTANTS if not quick or m.quick]
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if not any(fnmatch.fnmatch(m.name, n) for m in MUTANTS)]
        if unknown:
            raise SystemExit(f"unknown mutant(s) {unknown}; --list shows them")
        chosen = [m for m in chosen if any(fnmatch.fnmatch(m.name, n) for n in wanted)]
    return chosen


def print_table(rows):
    w = max([len(r["name"]) for r in rows] + [6])
    ww = max([len(r["where"]) for r in rows] + [5])
    print(f"{'mutant':<{w}}  {'where':<{ww}}  {'result':<22}  {'seconds':>7}  killed by")
    for r in rows:
        result = r["result"] + (" (equivalent)" if r["equivalent"] else "")
        print(f"{r['name']:<{w}}  {r['where']:<{ww}}  {result:<22}  {r['seconds']:>7.1f}  "
              f"{r['killed_by']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated mutant names (shell wildcards allowed)")
    p.add_argument("--quick", action="store_true", help="the small subset CI runs")
    p.add_argument("--list", action="store_true",
                   help="print each mutant and where it applies, run nothing")
    p.add_argument("--baseline", action="store_true",
                   help="first run the unmutated fast suite (it must pass)")
    p.add_argument("--timeout", type=int, default=1800,
                   help="seconds for one pytest run of a mutant (a hang counts as killed)")
    p.add_argument("--keep", action="store_true", help="keep the mutated copies")
    p.add_argument("--run-equivalent", action="store_true",
                   help="also run the mutants marked equivalent (each survives the whole "
                        "fast suite, which takes long)")
    args = p.parse_args(argv)

    chosen = select(args.only, args.quick)
    errors = []
    for m in chosen:
        try:
            mutated_source(m)
        except PatternError as e:
            errors.append(str(e))
    if errors:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            rel, line, _ = mutated_source(m)
            eq = f"  [equivalent: {m.equivalent}]" if m.equivalent else ""
            print(f"{m.name:<30} {m.area:<20} {rel}:{line}  tests first: "
                  f"{', '.join(m.tests)}{eq}")
        return 0
    if args.baseline:
        baseline(args.timeout)
    else:
        precheck(chosen, args.timeout)

    rows = []
    for m in chosen:
        if m.equivalent and not args.run_equivalent:
            rel, line, _ = mutated_source(m)
            rows.append({"name": m.name, "area": m.area, "where": f"{rel}:{line}",
                         "result": "not run", "killed_by": "", "seconds": 0.0,
                         "equivalent": m.equivalent, "tail": ""})
            continue
        r = check_mutant(m, args.timeout, keep=args.keep)
        rows.append(r)
        print(f"[{len(rows)}/{len(chosen)}] {r['name']}: {r['result']} "
              f"({r['seconds']:.0f} s) {r['killed_by']}", flush=True)
    print()
    print_table(rows)
    counted = [r for r in rows if not r["equivalent"]]
    killed = sum(r["result"] == "killed" for r in counted)
    print(f"\nmutants killed: {killed}/{len(counted)}")
    equivalent = [r for r in rows if r["equivalent"]]
    for r in equivalent:
        m = next(m for m in MUTANTS if m.name == r["name"])
        print(f"equivalent, not counted: {r['name']} ({r['result']}): {m.equivalent}")
    for r in counted:
        if r["result"] == "survived":
            print(f"\nSURVIVED: {r['name']} at {r['where']}\n{r['tail']}")
    return 0 if killed == len(counted) else 1


if __name__ == "__main__":
    sys.exit(main())
