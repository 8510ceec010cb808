"""Per-host credentials: the ``auth`` option checked, and ``$NETRC`` or ``~/.netrc`` read.

The file is read as curl, pip and Bazel read it. Every password and token
seen here is remembered by :mod:`robustfetch.policy.secrets`, so no message
shows it; no message made here shows one either.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from .policy.access import auth_header
from .policy.secrets import redact, remember
from .policy.urls import normalise_host, split_host_port

__all__ = ["check_auth", "netrc_auth", "netrc_path", "read_netrc"]

_BAD_HEADER = re.compile(r"[\r\n\x00]")
# "<scheme> <credentials>", as an Authorization header carries them ("Bearer <token>").
_AUTH_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]* +[\x21-\x7e]+")


def check_auth(name: str, value: Any) -> dict[tuple[str, Optional[int]], str]:
    """``{"host[:port]": ("user", "password") or "Bearer <token>"}``; no secret in messages."""
    if not isinstance(value, Mapping):
        raise ValueError(
            "auth must map 'host[:port]' to ('user', 'password') or 'Bearer <token>', "
            f"not a {type(value).__name__}"
        )
    result: dict[tuple[str, Optional[int]], str] = {}
    for key, credential in value.items():
        if not isinstance(key, str) or "@" in key or "/" in key:
            # "user:password@host" is a mistake that may hold a password: not shown.
            shown = "***@" + key.rpartition("@")[2] if isinstance(key, str) else type(key).__name__
            shown = redact(shown)
            raise ValueError(f"auth key {shown!r} must be 'host' or 'host:port'")
        try:
            host = split_host_port(key)
        except ValueError:
            raise ValueError(f"auth key {key!r} must be 'host' or 'host:port'") from None
        result[host] = _auth_value(key, credential)
    return result


def _auth_value(key: str, credential: Any) -> str:
    if isinstance(credential, (tuple, list)) and len(credential) == 2:
        user, password = credential
        if (
            isinstance(user, str)
            and isinstance(password, str)
            and ":" not in user
            and not _BAD_HEADER.search(user + password)
        ):
            remember([password])
            value = auth_header((user, password))
            remember([value])
            return value
    if isinstance(credential, str) and _AUTH_SCHEME.fullmatch(credential):
        remember([credential])
        return credential
    # The value may be a secret written the wrong way: say what is wrong, not what it is.
    raise ValueError(
        f"auth[{key!r}] must be a ('user', 'password') pair of strings (no ':' in the user) "
        f"or a string like 'Bearer <token>', not this {type(credential).__name__}"
    )


def netrc_auth(enabled: Any) -> dict[str, str]:
    """The ``netrc`` option: host -> ``Authorization`` from the netrc file, or ``{}``."""
    if not enabled:
        return {}
    found = read_netrc()
    remember(found.values())
    return found


def netrc_path() -> Path:
    """``$NETRC`` when set, else ``~/.netrc`` (``~/_netrc`` on Windows when only it exists)."""
    given = os.environ.get("NETRC")
    if given:
        return Path(given).expanduser()
    home = Path(os.path.expanduser("~"))
    if os.name == "nt" and not (home / ".netrc").exists():
        return home / "_netrc"
    return home / ".netrc"


def read_netrc() -> dict[str, str]:
    """Host -> ``Authorization`` value for each ``machine`` entry; ``{}`` without a file.

    The ``default`` entry is ignored: a credential goes to its own host only.
    A file that cannot be parsed is a ``ValueError`` naming it (and the line),
    never showing its contents.
    """
    path = netrc_path()
    try:
        stat = path.stat()
    except OSError:
        return {}
    return dict(_parse(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=4)
def _parse(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    # Read again only when the file changed (mtime and size are the key).
    import netrc  # here, not at import: most programs never have a netrc file

    try:
        parsed = netrc.netrc(path)
    except netrc.NetrcParseError as exc:
        line = f" line {exc.lineno}" if exc.lineno else ""
        # The parser quotes the token it stumbled on, which may be a password: not shown.
        what = exc.msg.split("'")[0].strip() or "malformed"
        raise ValueError(f"cannot parse netrc file {path!r}{line}: {what}") from None
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"cannot read netrc file {path!r}: {reason}") from None
    found: dict[str, str] = {}
    for machine, (login, _account, password) in parsed.hosts.items():
        if not login and not password:
            continue
        try:
            host = normalise_host(machine).rstrip(".")
        except ValueError:
            continue
        found.setdefault(host, auth_header((login or "", password or "")))
    return tuple(found.items())
