"""The parser of every command, the log handler, and `main`, the entry point.

A command is a module with NAME, HELP, DESCRIPTION, `add_arguments(parser)`,
`run(args) -> exit status` and, where its arguments name files that must
exist, `check_inputs(args)` (`inputs`: run before `run`, so a wrong path is
named before Keras is imported); list it in COMMANDS. This module imports the
standard library and the command modules alone, so parsing and --help stay
instant.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from ..version import __version__
from . import convert, evaluate, explore, generate, reproduce, train
from ..quiet import filtered_native_stderr, set_log_level

# The commands, in the order --help lists them.
COMMANDS = (train, convert, evaluate, generate, explore, reproduce)

LOG_FORMAT = "[split_vae] %(message)s"


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
    parser.add_argument("--version", action="version", version=f"split_vae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION,
                           formatter_class=HelpFormatter)
        command.add_arguments(p)
        p.set_defaults(func=command.run, check_inputs=getattr(command, "check_inputs", None))
    return parser


class _CurrentStderr(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is at the time of each record."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def show_library_messages(level: int = logging.INFO) -> None:
    """Let the package's log records reach the user as "[split_vae] message" on stderr.

    The library logs with logging.getLogger(__name__) and installs no handler
    (an application decides); the command line is such an application.
    Calling it again adds nothing.
    """
    logger = logging.getLogger("split_vae")
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level)


def main(argv=None, filter_native_stderr: bool = False) -> int:
    """Parse argv (default sys.argv[1:]) and run the command; its exit status.

    filter_native_stderr: hide TensorFlow's native start-up lines while the
    command runs (`quiet.filtered_native_stderr`); parsing and --help come
    first and need no filter.
    """
    # Before any command imports TensorFlow, which reads it once.
    level = set_log_level()
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `reproduce --gpus` reruns it
    show_library_messages()
    with filtered_native_stderr(level) if filter_native_stderr else contextlib.nullcontext():
        try:
            # The paths the arguments name, before the command imports anything.
            if args.check_inputs is not None:
                args.check_inputs(args)
            return int(args.func(args) or 0)
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\ninterrupted: files already written are complete", file=sys.stderr)
            return 130


def console_main() -> int:
    """The entry point of `python -m split_vae` and of the `split-vae` script."""
    return main(filter_native_stderr=True)
