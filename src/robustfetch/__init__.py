"""robustfetch: download from ordered sources, verify while streaming, explain failures."""

from ._version import __version__
from .api import Fetcher, fetch, fetch_many
from .certinfo import CertificateInfo
from .errors import Attempt, FetchError, Reason
from .hostprobe import AddressReport, HostReport, probe_host
from .probe import Capabilities, probe
from .results import FetchResult, ProgressEvent, Request
from .rewrite import rewrite_url

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
    "__version__",
    "fetch",
    "fetch_many",
    "probe",
    "probe_host",
    "rewrite_url",
]
