"""Proxy selection from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY, as Python clients do."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Optional
from urllib.parse import urlsplit

from ..policy.secrets import redact, remember_url

__all__ = ["bypasses_proxy", "check_proxy_url", "proxies_from_environment", "proxy_for"]


def proxies_from_environment(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """``{"https": ..., "http": ..., "no": ...}`` from the environment; lower case wins.

    ``HTTP_PROXY`` is ignored in a CGI process (httpoxy), as urllib does. A
    malformed value is a :class:`ValueError` naming the variable (never its password).

    >>> proxies_from_environment({"HTTPS_PROXY": "http://p:3128", "no_proxy": "a.example"})
    {'https': 'http://p:3128', 'no': 'a.example'}
    """
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for scheme in ("https", "http", "all", "no"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            if name in env:
                # A set but empty lower-case variable switches the proxy off.
                value = env[name].strip()
                if value:
                    found[scheme] = value if scheme == "no" else check_proxy_url(value, name)
                break
    if "REQUEST_METHOD" in env:
        found.pop("http", None)
    return found


def check_proxy_url(value: str, name: str) -> str:
    """``value`` if it is a usable ``http://`` or ``https://`` proxy URL, else ``ValueError``.

    >>> check_proxy_url("http://user:secret@[bad", "HTTPS_PROXY")
    Traceback (most recent call last):
    ...
    ValueError: HTTPS_PROXY='http://user:***@[bad' is not a usable proxy URL: Invalid IPv6 URL
    """
    remember_url(value)
    shown = redact(value)
    try:
        parts = urlsplit(value if "://" in value else "http://" + value)
        parts.port  # noqa: B018 - urlsplit checks the port lazily
        host = parts.hostname
    except ValueError as exc:
        raise ValueError(f"{name}={shown!r} is not a usable proxy URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError(
            f"{name}={shown!r} is not a usable proxy URL: give http://host:port "
            "(or https://host:port)"
        )
    return value


def proxy_for(url: str, proxies: Mapping[str, str]) -> Optional[str]:
    """The proxy URL for ``url``, or ``None`` for a direct connection.

    >>> proxy_for("https://a.example/f", {"https": "http://p:3128", "no": ".example"})
    >>> proxy_for("https://b.test/f", {"https": "p:3128"})
    'http://p:3128'
    """
    if all(key == "no" for key in proxies):
        return None  # no proxy at all (NO_PROXY alone changes nothing): no parse per request
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if bypasses_proxy(host, port, proxies.get("no", "")):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else "http://" + proxy


def bypasses_proxy(host: str, port: Optional[int], no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts ``host``: ``*``, domain suffixes, IPs, CIDR ranges, ports."""
    host = host.lower().strip("[]").rstrip(".")
    for entry in (e.strip().lower() for e in no_proxy.replace(" ", ",").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and port is not None and entry_port != str(port):
            continue
        name = name.strip("[]").lstrip("*").rstrip(".")
        if _in_network(host, name):
            return True
        bare = name.lstrip(".")
        if host == bare or host.endswith("." + bare):
            return True
    return False


def _in_network(host: str, entry: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
        return address in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
