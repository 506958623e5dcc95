"""The parser of every command, and `main`, the entry point."""

from __future__ import annotations

import argparse
import sys

from . import convert, evaluate, train
from .common import show_library_messages
from .quiet import set_log_level

# The commands, in the order --help lists them.
COMMANDS = (train, convert, evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m split_vae",
        description="Split Variational Autoencoder (Asperti, Bugo, Filippini, "
                    "IEEE Access 2022) in Keras 3.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None) -> int:
    # Before any command imports TensorFlow, which reads it once.
    set_log_level()
    args = build_parser().parse_args(argv)
    show_library_messages()
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: files already written are complete", file=sys.stderr)
        return 130
