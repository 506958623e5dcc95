import sys

from .cli import main
from .cli.quiet import filtered_native_stderr, set_log_level

with filtered_native_stderr(set_log_level()):
    status = main()
sys.exit(status)
