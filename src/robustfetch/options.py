"""Options shared by fetch, fetch_many, Fetcher and probe_host: defaults and environment."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Optional

from ._version import __version__
from .option_checks import MIRROR_ORDERS as MIRROR_ORDERS
from .option_checks import TRANSPORT_CHOICES as TRANSPORT_CHOICES
from .option_checks import TRUST_CHOICES as TRUST_CHOICES
from .option_checks import check, check_file, check_filename, check_mirrors, read_config
from .option_checks import urllib3_available as urllib3_available
from .policy.rewrite import Rule, RuleSet
from .results import ProgressEvent

__all__ = ["Options", "check_filename", "default_cache_dir", "make_options"]


@dataclass(frozen=True)
class Options:
    """Validated settings; build them with :func:`make_options`."""

    mirrors: tuple[str, ...] = ()
    hashed_mirrors: tuple[str, ...] = ()
    filename: Optional[str] = None
    index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    cache_dir: Optional[Path] = None
    cache_dirs_readonly: tuple[Path, ...] = ()
    offline: bool = False
    connect_timeout: float = 10.0
    stall_timeout: float = 30.0
    hedge_after: Optional[float] = 2.0
    split: int = 1
    min_speed: float = 0.0
    min_speed_window: float = 10.0
    retries: int = 2
    backoff: float = 0.5
    max_retry_after: float = 30.0
    max_redirects: int = 10
    allow_http: bool = False
    ca_bundle: Optional[Path] = None
    trust: Optional[str] = None
    connect_to: Mapping[tuple[str, Optional[int]], tuple[str, Optional[int]]] = field(
        default_factory=dict
    )
    rewrite: bool = True
    rules: tuple[Rule, ...] = ()
    config: Optional[Path] = None
    config_rules: tuple[Rule, ...] = ()
    size: Optional[int] = None
    max_size: Optional[int] = None
    deadline: Optional[float] = None
    mirror_order: str = "given"
    progress: Optional[Callable[[ProgressEvent], None]] = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Mapping[tuple[str, Optional[int]], str] = field(default_factory=dict)
    netrc: bool = True
    netrc_auth: Mapping[str, str] = field(default_factory=dict)
    user_agent: str = f"robustfetch/{__version__}"
    proxies: Optional[Mapping[str, str]] = None
    hashes: Mapping[str, Any] = field(default_factory=dict)
    integrity: Optional[str] = None
    transport: str = "auto"
    pool_size: int = 8

    def with_changes(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied and checked again."""
        return make_options(self, **changes)

    def rule_set(self) -> RuleSet:
        """User rules (``rules=``, then the config file) over the built-in ones."""
        return _rule_set(self.rules + self.config_rules, self.rewrite)


# config_rules and netrc_auth are derived from config and netrc, never given.
_FIELDS = {f.name for f in fields(Options)} - {"config_rules", "netrc_auth"}


def make_options(base: Optional[Options] = None, **given: Any) -> Options:
    """Check ``given`` (keyword options) over ``base`` or the defaults and environment.

    Every problem is a ``ValueError`` naming the bad value, raised before any I/O.
    """
    unknown = sorted(set(given) - _FIELDS - {"workers"})
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    given.pop("workers", None)
    if base is None:
        base = _from_environment(given)
    values = {name: given[name] for name in given if name in _FIELDS}
    checked = {name: check(name, value) for name, value in values.items()}
    if "config" in checked:
        checked["config_rules"] = read_config(checked["config"])
    if "netrc" in checked:
        checked["netrc_auth"] = _netrc_auth(checked["netrc"])
    options = replace(base, **checked)
    _check_combination(options)
    return options


@functools.lru_cache(maxsize=16)
def _rule_set(rules: tuple[Rule, ...], builtin: bool) -> RuleSet:
    # Built once per distinct set of rules, not once per request.
    return RuleSet(rules, builtin=builtin)


def default_cache_dir() -> Path:
    """The platform's user cache folder for robustfetch."""
    if sys.platform == "win32":
        root = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return Path(root, "robustfetch", "Cache")
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Caches/robustfetch"))
    root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(root, "robustfetch")


def _from_environment(given: Mapping[str, Any]) -> Options:
    env = os.environ
    # ROBUSTFETCH_CACHE_DIR: the cache, then read-only ones (os.pathsep-separated).
    folders = [Path(p) for p in env.get("ROBUSTFETCH_CACHE_DIR", "").split(os.pathsep) if p]
    cache = (folders[0] if folders else default_cache_dir()) if "cache_dir" not in given else None
    variable = next((v for v in ("ROBUSTFETCH_CA_BUNDLE", "SSL_CERT_FILE") if env.get(v)), None)
    mirrors = env.get("ROBUSTFETCH_MIRRORS", "").split()
    hashed = env.get("ROBUSTFETCH_HASHED_MIRRORS", "").split()
    config = env.get("ROBUSTFETCH_CONFIG") if "config" not in given else None
    config_path = check_file("$ROBUSTFETCH_CONFIG", config) if config else None
    defaults = Options(
        mirrors=check_mirrors("$ROBUSTFETCH_MIRRORS", mirrors) if mirrors else (),
        hashed_mirrors=check_mirrors("$ROBUSTFETCH_HASHED_MIRRORS", hashed) if hashed else (),
        cache_dir=cache,
        cache_dirs_readonly=tuple(folders[1:]),
        config=config_path,
        config_rules=read_config(config_path),
        offline=env.get("ROBUSTFETCH_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"),
        netrc_auth=_netrc_auth(True) if "netrc" not in given else {},
    )
    if variable and "ca_bundle" not in given and "trust" not in given:
        defaults = replace(defaults, ca_bundle=check_file(f"${variable}", env[variable]))
    return defaults


def _check_combination(options: Options) -> None:
    if (
        options.size is not None
        and options.max_size is not None
        and options.size > options.max_size
    ):
        raise ValueError(f"size={options.size} is larger than max_size={options.max_size}")
    if options.ca_bundle is not None and options.trust in ("system", "truststore"):
        raise ValueError(f"ca_bundle and trust={options.trust!r} contradict each other: pick one")


def _netrc_auth(enabled: Any) -> dict[str, str]:
    """:func:`robustfetch.credentials.netrc_auth`, loaded on the first options built."""
    from .credentials import netrc_auth

    return netrc_auth(enabled)
