"""robustfetch: download from ordered sources, verify while streaming, explain failures."""

from ._version import __version__
from .api import Fetcher, fetch, fetch_many
from .errors import Attempt, FetchError, Reason
from .results import FetchResult, ProgressEvent, Request
from .rewrite import rewrite_url

__all__ = [
    "Attempt",
    "FetchError",
    "FetchResult",
    "Fetcher",
    "ProgressEvent",
    "Reason",
    "Request",
    "__version__",
    "fetch",
    "fetch_many",
    "rewrite_url",
]
