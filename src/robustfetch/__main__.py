"""``python -m robustfetch``: the command line."""

from .cli.main import run

run()
