"""Diagnosis: what this client can do (``probe``) and what a server demands (``probe_host``)."""
