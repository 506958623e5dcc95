"""What every command shares: the help layout, sub-parser creation, the log handler.

Imports the standard library alone, so that parsing and --help stay instant.
"""

from __future__ import annotations

import argparse
import logging
import sys

LOG_FORMAT = "[split_vae] %(message)s"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None and where the help text already says one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or action.default is False:
            return text
        return super()._get_help_string(action)


def add_command(subparsers, name: str, run, help: str, description: str):
    """A sub-parser for command `name` whose parsed arguments go to run(args)."""
    p = subparsers.add_parser(name, help=help, description=description,
                              formatter_class=HelpFormatter)
    p.set_defaults(func=run)
    return p


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
