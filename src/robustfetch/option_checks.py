"""Checks of each option's value: the value to keep, or a ValueError naming the bad one."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from .policy.digests import normalise_algorithm, parse_digests
from .policy.rewrite import LIST_WHERE, Rule, parse_rules
from .policy.secrets import HOST_BOUND, redact, remember, remember_url
from .policy.urls import check_url, split_host_port

__all__ = [
    "MIRROR_ORDERS",
    "TRANSPORT_CHOICES",
    "TRUST_CHOICES",
    "check",
    "check_file",
    "check_filename",
    "check_mirrors",
    "read_config",
    "urllib3_available",
]

TRUST_CHOICES = ("certifi", "system", "truststore")
TRANSPORT_CHOICES = ("auto", "urllib3", "stdlib")
MIRROR_ORDERS = ("given", "fastest")
_BAD_HEADER = re.compile(r"[\r\n\x00]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check(name: str, value: Any) -> Any:
    """``value`` checked as option ``name``; an option without a check is kept as given."""
    return _CHECKS.get(name, _identity)(name, value)


def _identity(name: str, value: Any) -> Any:
    return value


def _check_seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return number


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    return value


def _check_split(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"split must be a whole number >= 1, not {value!r}")
    return value


def _check_optional_size(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a number of bytes >= 0, not {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return value


def _check_choice(choices: Sequence[str]) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value

    return check


def check_file(name: str, value: Any) -> Path:
    path = Path(os.fspath(value)).expanduser()
    if not path.is_file():
        raise ValueError(f"{name} {str(path)!r} is not a readable file")
    return path


def _check_folders(name: str, value: Any) -> tuple[Path, ...]:
    if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of folders, not {value!r}")
    return tuple(Path(os.fspath(folder)).expanduser() for folder in value)


def _check_cache_dir(name: str, value: Any) -> Optional[Path]:
    if value is None or value is False:
        return None
    if isinstance(value, bool):
        raise ValueError(f"cache_dir must be a folder, None or False, not {value!r}")
    return Path(os.fspath(value)).expanduser()


def check_mirrors(name: str, value: Any) -> tuple[str, ...]:
    """Base URLs or folders (as ``file://`` URLs); ``{filename}``/``{sha256}`` kept as given."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of base URLs or folders, not {value!r}")
    bases = []
    for base in value:
        if isinstance(base, os.PathLike) or (isinstance(base, str) and _is_local_path(base)):
            base = _folder_url(base)
        if not isinstance(base, str):
            raise ValueError(f"{name} must be base URLs (strings), not {base!r}")
        remember_url(base)  # its password is never printed
        check_url(base.replace("{filename}", "f").replace("{sha256}", "0"))
        bases.append(base)
    return tuple(bases)


def check_filename(name: str, value: Any) -> Optional[str]:
    """A plain file name (no folder, ``..``, NUL or control character, at most 255 bytes)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a file name (a string), not {value!r}")
    if (
        value.strip() in ("", ".", "..")
        or "/" in value
        or "\\" in value
        or _CONTROL.search(value)
        or len(value.encode("utf-8", "surrogatepass")) > 255
    ):
        raise ValueError(
            f"{name} {value!r} is not a plain file name (no folders, at most 255 bytes)"
        )
    return value


def _check_pages(name: str, value: Any) -> tuple[str, ...]:
    """``index_urls`` and ``find_links``: URLs, or local folders (as ``file://`` URLs)."""
    if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of URLs or folders, not {value!r}")
    pages = []
    for page in value:
        if isinstance(page, os.PathLike) or (isinstance(page, str) and _is_local_path(page)):
            if not os.fspath(page):
                raise ValueError(f"{name}: empty path")
            page = Path(os.fspath(page)).expanduser().absolute().as_uri()
        if not isinstance(page, str):
            raise ValueError(f"{name} must be URLs or folders (strings), not {page!r}")
        remember_url(page)  # its password is never printed
        check_url(page)
        pages.append(page)
    return tuple(pages)


def _is_local_path(text: str) -> bool:
    """Absolute, ``~`` or ``./`` paths name folders; ``mirror.example/dist`` is a mistake."""
    return "://" not in text and (os.path.isabs(text) or text.startswith(("~", ".")))


def _folder_url(folder: Any) -> str:
    """A local mirror folder as a ``file://`` base URL."""
    if not os.fspath(folder):
        raise ValueError("empty mirror path")
    uri = Path(os.fspath(folder)).expanduser().absolute().as_uri()
    return uri.replace("%7Bfilename%7D", "{filename}").replace("%7Bsha256%7D", "{sha256}")


def _check_connect_to(name: str, value: Any) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"connect_to must be a mapping of 'host:port' to 'addr:port', not {value!r}"
        )
    result = {}
    for key, target in value.items():
        if not isinstance(key, str) or not isinstance(target, str):
            raise ValueError(f"connect_to entries must be strings: {key!r}: {target!r}")
        try:
            result[split_host_port(key)] = split_host_port(target)
        except ValueError as exc:
            raise ValueError(f"bad connect_to entry {key!r}: {target!r}: {exc}") from None
    return result


def _check_headers(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping of header names to values, not {_shown(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str) or _BAD_HEADER.search(key + item):
            # A credential's value is never shown; other values are, for the fix.
            shown = redact(key) if isinstance(key, str) else key
            secret = isinstance(key, str) and key.strip().lower() in HOST_BOUND
            what = f"{shown!r}" if secret else f"{shown!r}: {_shown(item)}"
            raise ValueError(
                f"bad header {what}: names and values must be strings without CR, LF or NUL"
            )
    remember(item for key, item in value.items() if key.lower() in HOST_BOUND)
    return dict(value)


def _shown(value: Any) -> str:
    """``repr(value)`` for a message, unless it may hold a credential."""
    text = repr(value)
    return type(value).__name__ if any(n in text.lower() for n in HOST_BOUND) else redact(text)


def _check_hashes(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"hashes must map algorithm names to digests, not {value!r}")
    for algorithm, digest in value.items():
        if not isinstance(algorithm, str):
            raise ValueError(f"hashes entry {algorithm!r}: {digest!r}: the key must be a string")
        parse_digests(normalise_algorithm(algorithm), digest, f"hashes[{algorithm!r}]")
    return dict(value)


def _check_auth(name: str, value: Any) -> Any:
    """The ``auth`` option (:mod:`robustfetch.credentials` loads with the first one given)."""
    from .credentials import check_auth

    return check_auth(name, value)


def _check_integrity(name: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    from .policy.sri import parse_integrity  # loads with the first integrity= only

    parse_integrity(value)
    return str(value)


def _check_rules(name: str, value: Any) -> tuple[Rule, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"rules must be a list of rule lines, not {value!r}")
    if all(isinstance(rule, Rule) for rule in value):
        return tuple(value)
    if not all(isinstance(line, str) for line in value):
        raise ValueError(f"rules must be strings like 'block *', not {value!r}")
    return tuple(parse_rules(value, LIST_WHERE))


def read_config(path: Optional[Path]) -> tuple[Rule, ...]:
    """The rules of a downloader config file; errors name the file and line."""
    if path is None:
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"cannot read config file {str(path)!r}: {exc}") from None
    return tuple(parse_rules(text.splitlines(), str(path)))


def _check_progress(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ValueError(f"progress must be callable, not {value!r}")
    return value


def _check_proxies(name: str, value: Any) -> Optional[dict[str, str]]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(
            f"proxies must be a mapping like {{'https': 'http://proxy:3128'}}, not {_shown(value)}"
        )
    result = {}
    for key, url in value.items():
        key = str(key).lower()
        if key not in ("http", "https", "all", "no"):
            raise ValueError(f"proxies key {redact(key)!r} is not one of http, https, all, no")
        if url and key != "no":
            if not isinstance(url, str):
                raise ValueError(f"proxies[{key!r}] must be a URL string")
            remember_url(url)
            try:
                full = check_url(url if "://" in url else "http://" + url)
                if not full.lower().startswith(("http://", "https://")):
                    raise ValueError(f"proxy {key}={url!r} must be an http:// or https:// URL")
            except ValueError as exc:
                # check_url quotes the URL: the password must not travel with it.
                raise ValueError(f"proxies[{key!r}]: {redact(str(exc))}") from None
        if url:
            result[key] = url
    return result


def _check_transport(name: str, value: Any) -> str:
    choice = str(_check_choice(TRANSPORT_CHOICES)(name, value))
    if choice == "urllib3" and not urllib3_available():
        raise ValueError("transport='urllib3' but urllib3 is not installed: use 'auto'")
    return choice


#: The check of each option that has one (others are kept as given).
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "mirrors": check_mirrors,
    "hashed_mirrors": check_mirrors,
    "filename": check_filename,
    "index_urls": _check_pages,
    "find_links": _check_pages,
    "cache_dir": _check_cache_dir,
    "cache_dirs_readonly": _check_folders,
    "offline": _check_bool,
    "connect_timeout": _check_seconds,
    "stall_timeout": _check_seconds,
    "hedge_after": lambda n, v: None if v is None else _check_seconds(n, v),
    "split": _check_split,
    "min_speed": lambda n, v: _check_seconds(n, v, allow_zero=True),
    "min_speed_window": _check_seconds,
    "retries": _check_count,
    "backoff": lambda n, v: _check_seconds(n, v, allow_zero=True),
    "max_retry_after": lambda n, v: _check_seconds(n, v, allow_zero=True),
    "max_redirects": _check_count,
    "allow_http": _check_bool,
    "ca_bundle": lambda n, v: None if v is None else check_file(n, v),
    "trust": lambda n, v: None if v is None else _check_choice(TRUST_CHOICES)(n, v),
    "connect_to": _check_connect_to,
    "rewrite": _check_bool,
    "rules": _check_rules,
    "config": lambda n, v: None if v is None else check_file(n, v),
    "size": _check_optional_size,
    "max_size": _check_optional_size,
    "deadline": lambda n, v: None if v is None else _check_seconds(n, v),
    "mirror_order": _check_choice(MIRROR_ORDERS),
    "progress": _check_progress,
    "headers": _check_headers,
    "auth": _check_auth,
    "netrc": _check_bool,
    "hashes": _check_hashes,
    "integrity": _check_integrity,
    "user_agent": lambda n, v: _check_headers(n, {"User-Agent": v})["User-Agent"],
    "proxies": _check_proxies,
    "transport": _check_transport,
    "pool_size": lambda n, v: max(1, _check_count(n, v)),
}


def urllib3_available() -> bool:
    """Whether urllib3 can be imported (without importing it yet): ``transport="auto"`` asks too."""
    import importlib.util

    try:
        return importlib.util.find_spec("urllib3") is not None
    except (ImportError, ValueError):  # sys.modules["urllib3"] = None, a broken install
        return False
