"""Command line: `python -m split_vae COMMAND ...`.

Each command lives in its own module exposing `register(subparsers)`, which
adds a sub-parser whose defaults carry `func=run`; list it in COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules providing sub-commands, in the order --help lists them.
COMMANDS = [
    "split_vae.cli_train",
    "split_vae.cli_convert",
    "split_vae.cli_evaluate",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None and where the help text already says one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or action.default is False:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m split_vae",
        description="Split Variational Autoencoder (Asperti, Bugo, Filippini, "
                    "IEEE Access 2022) in Keras 3.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: files already written are complete", file=sys.stderr)
        return 130
