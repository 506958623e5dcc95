"""Arguments several commands share, declared once.

Imports nothing of the package: parsing stays instant.
"""

from __future__ import annotations

MODEL_HELP = ("a .keras file, a preset directory, a legacy .h5/.hdf5 file, a published "
              "name, or a built-in preset name (untrained)")


def add_model_argument(p) -> None:
    """--model, read by `loader.for_evaluation` (evaluate, generate)."""
    p.add_argument("--model", required=True, help=MODEL_HELP)
