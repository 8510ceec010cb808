"""Collection rules for the whole repository (the doctests of src/ included)."""

from __future__ import annotations

import importlib.util

# Where urllib3 is not installed (the stdlib-only CI run), its transport
# module cannot even be imported for its doctests.
collect_ignore = []
if importlib.util.find_spec("urllib3") is None:
    collect_ignore.append("src/robustfetch/transport/urllib3_backend.py")
