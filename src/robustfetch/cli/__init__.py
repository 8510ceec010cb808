"""The ``robustfetch`` command line: one module per command, on top of the public API."""

from .main import main, run

__all__ = ["main", "run"]
