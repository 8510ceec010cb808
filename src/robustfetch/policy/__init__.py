"""Pure decisions, no I/O: URLs and names, rules, planning, digests, classification, backoff.

Nothing here opens a socket or a file, starts a thread or imports another layer
of the package; the import-linter contracts in ``pyproject.toml`` keep it so.
"""
