"""The package version, kept as a constant so a vendored copy needs no metadata."""

__version__ = "0.1.0"
