"""Command line: `python -m split_vae COMMAND ...`.

One module per command (train, convert, evaluate), each declaring its name,
help and arguments; `main` (in cli/main.py) parses and runs. Commands are thin: they read
arguments and call the library. Parsing and --help import neither Keras nor
TensorFlow (each command imports the library inside its run function).
"""

from .main import build_parser, console_main, main

__all__ = ["build_parser", "console_main", "main"]
