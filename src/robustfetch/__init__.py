"""robustfetch: download from ordered sources, verify while streaming, explain failures."""

from typing import TYPE_CHECKING

from ._version import __version__
from .api import Fetcher, fetch, fetch_many
from .errors import Attempt, FetchError, Reason
from .policy.digests import WeakHashWarning
from .policy.rewrite import rewrite_url
from .results import FetchResult, ProgressEvent, Request

# The diagnostics (probe, probe_host and their reports) load on first use:
# every program that downloads would otherwise pay for them at import.
_LAZY = {
    "AddressReport": "diagnose.host",
    "Capabilities": "diagnose.client",
    "CertificateInfo": "diagnose.certificates",
    "HostReport": "diagnose.host",
    "probe": "diagnose.client",
    "probe_host": "diagnose.host",
    "read_metalink": "sources.metalink",
}

__all__ = [
    "AddressReport",
    "Attempt",
    "Capabilities",
    "CertificateInfo",
    "FetchError",
    "FetchResult",
    "Fetcher",
    "HostReport",
    "ProgressEvent",
    "Reason",
    "Request",
    "WeakHashWarning",
    "__version__",
    "fetch",
    "fetch_many",
    "probe",
    "probe_host",
    "read_metalink",
    "rewrite_url",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'robustfetch' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .diagnose.certificates import CertificateInfo
    from .diagnose.client import Capabilities, probe
    from .diagnose.host import AddressReport, HostReport, probe_host
    from .sources.metalink import read_metalink
