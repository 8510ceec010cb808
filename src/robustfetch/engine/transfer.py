"""One try of one URL: the request, its redirects and a head fit to stream; small documents."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

from ..errors import Reason, SourceFailed
from ..options import Options
from ..policy.access import HOST_BOUND, check_hop, credentials_for, origin, split_userinfo
from ..policy.headers import parse_content_range_start
from ..policy.hops import follow_redirect, is_redirect
from ..policy.secrets import redact
from ..policy.urls import default_port, local_path
from ..policy.witness import WANT_REPR_DIGEST
from ..results import ProgressEvent
from ..store.staging import Staging
from ..transport import Response, Transport, TransportError
from ..transport.cancel import Cancel
from .body import stream_body
from .failures import bounded, deadline_failure, drain, status_failure, transport_failure

__all__ = ["Opened", "Transfer"]

log = logging.getLogger("robustfetch")

CHUNK = 256 * 1024  # reads of small documents (error pages, API answers)


@dataclass
class Opened:
    """A response head fit to stream: from ``current`` (after redirects), body from ``offset``."""

    response: Response
    current: str
    offset: int
    url: str  # the URL asked for, before redirects

    @property
    def status(self) -> Optional[int]:
        """The answer's HTTP status (206 for a resume); ``None`` for ``file:`` and ``ftp:``."""
        scheme = urlsplit(self.current).scheme.lower()
        return None if scheme in ("file", "ftp") else self.response.status


class Transfer:
    """Performs single tries with one transport and one set of options."""

    def __init__(self, options: Options, transport: Transport, trust: str) -> None:
        self.options = options
        self.transport = transport
        self.trust = trust

    def fetch(
        self,
        url: str,
        staging: Staging,
        deadline_at: Optional[float],
        resume: bool,
        address: Optional[tuple[str, int]] = None,
        on_head: Optional[Callable[[str, Mapping[str, str]], None]] = None,
        home: Optional[str] = None,
        address_at: Optional[str] = None,
    ) -> Optional[int]:
        """One try of ``url``: follow redirects, stream the body into ``staging``, verify it.

        Returns the HTTP status of the answer that delivered (see :attr:`Opened.status`).

        With ``resume``, only the bytes after :attr:`Staging.size` are asked
        for (``Range``, plus ``If-Range`` when the staged bytes came from this
        URL). Afterwards ``staging`` holds either the complete verified body,
        or (after :class:`SourceFailed`) a clean prefix to resume, or nothing.
        ``address`` pins the connection to ``address_at``'s origin (default:
        ``url``'s, the first hop) to one resolved address;
        ``on_head`` sees the URL and head of each answer that names duplicates:
        every redirect hop (only its ``Link``: MirrorBrain's 302), a 206 (its
        ``Link``) and a 200 (all of it, digest headers included);
        ``home`` is the request's first URL, whose origin alone receives the
        credential headers of the ``headers`` option.
        """
        opened = self.request(
            url,
            staging,
            deadline_at,
            resume,
            address,
            on_head=on_head,
            home=home,
            address_at=address_at,
        )
        return self.receive(opened, staging, deadline_at)

    def request(
        self,
        url: str,
        staging: Staging,
        deadline_at: Optional[float],
        resume: bool,
        address: Optional[tuple[str, int]] = None,
        cancel: Optional[Cancel] = None,
        restart: Optional[Callable[[], None]] = None,
        on_head: Optional[Callable[[str, Mapping[str, str]], None]] = None,
        home: Optional[str] = None,
        address_at: Optional[str] = None,
    ) -> Opened:
        """The first half of :meth:`fetch`: the request, redirects, and a head fit to stream.

        Nothing is written to ``staging`` here: a head that says the staged
        prefix cannot be continued calls ``restart`` (default: empty the
        staging file), so that a hedge running on another thread leaves the
        file alone. ``cancel`` lets another thread abort the request.
        """
        restart = restart or staging.restart
        # Only the caller's pin unlocks plain http, not a witness (staging.pinned).
        pinned = staging.pinned
        offset = staging.size if resume else 0
        extra = {"Want-Repr-Digest": WANT_REPR_DIGEST}
        if offset:
            extra["Range"] = f"bytes={offset}-"
            if staging.validator is not None and staging.url == url:
                extra["If-Range"] = staging.validator
        response, current = self.open(
            url,
            pinned,
            deadline_at,
            extra,
            address,
            home=home,
            address_at=address_at,
            cancel=cancel,
            on_redirect=on_head,
        )
        if on_head is not None and response.status == 200:
            on_head(current, response.headers)
        elif on_head is not None and response.status == 206 and "Link" in response.headers:
            # A partial answer's digest headers do not describe the whole file.
            on_head(current, {"Link": response.headers["Link"]})
        if offset and response.status == 206:
            start = _range_start(response.headers)
            if start != offset:
                response.close()
                restart()
                raise SourceFailed(
                    Reason.TRUNCATED,
                    f"asked for bytes {offset}- but Content-Range says "
                    f"{response.headers.get('Content-Range')!r}; starting over",
                    transient=True,
                )
            log.info("%s: resuming after %d bytes", url, offset)
        elif response.status == 200:
            if offset:
                log.info("%s: the server sent the whole file; starting over", url)
            offset = 0
        else:
            if response.status == 416:
                restart()  # our prefix does not fit this file
            raise status_failure(response, url, current)
        return Opened(response, current, offset, url)

    def receive(
        self, opened: Opened, staging: Staging, deadline_at: Optional[float]
    ) -> Optional[int]:
        """The second half of :meth:`fetch`: stream the body of ``opened``, verify it.

        Returns :attr:`Opened.status`.
        """
        stream_body(
            self,
            opened.response,
            opened.current,
            staging,
            opened.offset,
            deadline_at,
            opened.url,
        )
        return opened.status

    def get(self, url: str, limit: int, deadline_at: Optional[float]) -> bytes:
        """A small document (an API answer) in memory; more than ``limit`` bytes is an error."""
        return self.get_page(url, limit, deadline_at)[0]

    def get_page(
        self,
        url: str,
        limit: int,
        deadline_at: Optional[float],
        accept: str = "application/json",
        pinned: bool = False,
    ) -> tuple[bytes, str, str]:
        """Like :meth:`get`: the body, its ``Content-Type`` and the URL that answered.

        ``pinned`` says whether the file the document leads to has a pinned hash
        (redirects to plain http are then allowed, as for the file itself).
        """
        response, current = self.open(url, pinned, deadline_at, {"Accept": accept}, hop="lookup")
        if response.status != 200:
            raise status_failure(response, url, current)
        body = b""
        try:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except TransportError as exc:
                    raise transport_failure(
                        self.options, self.trust, exc, current, "body", len(body), None, deadline_at
                    ) from None
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    raise SourceFailed(Reason.TOO_LARGE, f"answer larger than {limit} bytes")
        except BaseException:
            response.close()
            raise
        response.release()
        return body, response.headers.get("Content-Type", ""), current

    def list_folder(self, url: str) -> Optional[list[str]]:
        """The file names in the local folder ``url`` names (find-links), or ``None``."""
        from ..transport.files import list_folder

        return list_folder(local_path(url)) if url.startswith("file:") else None

    def open(
        self,
        url: str,
        pinned: bool,
        deadline_at: Optional[float],
        extra_headers: Optional[Mapping[str, str]] = None,
        address: Optional[tuple[str, int]] = None,
        *,
        home: Optional[str] = None,
        hop: str = "source",
        address_at: Optional[str] = None,
        cancel: Optional[Cancel] = None,
        on_redirect: Optional[Callable[[str, Mapping[str, str]], None]] = None,
    ) -> tuple[Response, str]:
        """The response head of ``url`` after redirects, and the URL that gave it.

        ``on_redirect`` sees each redirect hop's URL and ``Link`` header, if it has one.

        Every hop passes the access gate (:func:`~robustfetch.policy.access.check_hop`:
        allow/block rules, plain http) before its connection is opened, and gets
        only the credentials :func:`~robustfetch.policy.access.credentials_for`
        allows it; none at all once a redirect has left the first origin.
        """
        opts = self.options
        rules = opts.rule_set()
        common = {
            "User-Agent": opts.user_agent,
            **{k: v for k, v in opts.headers.items() if k.lower() not in HOST_BOUND},
            **(extra_headers or {}),
            "Accept-Encoding": "identity",
        }
        bound = {k: v for k, v in opts.headers.items() if k.lower() in HOST_BOUND}
        current, hops, same_origin = url, 0, True
        while True:
            check_hop(current, rules, pinned=pinned, allow_http=opts.allow_http, hop=hop)
            request_url, userinfo = split_userinfo(current)
            headers = dict(common)
            if same_origin:
                headers.update(
                    credentials_for(
                        request_url,
                        home=home,
                        headers=bound,
                        auth=opts.auth,
                        netrc=opts.netrc_auth,
                        userinfo=userinfo,
                    )
                )
            read_timeout = bounded(opts.stall_timeout, deadline_at)
            connect_timeout = bounded(opts.connect_timeout, deadline_at)
            try:
                response = self.transport.open(
                    request_url,
                    headers,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    address=(
                        address
                        if address is not None and _origin(current) == _origin(address_at or url)
                        else None
                    ),
                    deadline_at=deadline_at,
                    cancel=cancel,
                )
            except TransportError as exc:
                raise transport_failure(
                    self.options, self.trust, exc, current, "connect", 0, None, deadline_at
                ) from None
            if deadline_at is not None and time.monotonic() >= deadline_at:
                # The watchdog may have cut the head short: none of it can be trusted.
                response.close()
                raise deadline_failure(opts.deadline, 0, None)
            if not is_redirect(response.status, response.headers):
                return response, current
            drain(response)
            if on_redirect is not None and "Link" in response.headers:
                on_redirect(current, {"Link": response.headers["Link"]})
            target = follow_redirect(
                current,
                response.headers["Location"],
                hops,
                opts.max_redirects,
                pinned,
                opts.allow_http,
            )
            log.info("%s: redirected (%d) to %s", current, response.status, target)
            # Credentials stay with the origin they were meant for, for the rest of the chain.
            same_origin = same_origin and origin(target) == origin(current)
            current, hops, hop = target, hops + 1, "redirect"

    def progress(self, url: str, received: int, total: Optional[int], done: bool = False) -> None:
        if self.options.progress is not None:
            self.options.progress(ProgressEvent(redact(url), received, total, done))


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port(parts.scheme)


def _range_start(headers: Mapping[str, str]) -> Optional[int]:
    """The first byte of a ``Content-Range: bytes N-M/T`` answer, or ``None``."""
    return parse_content_range_start(headers.get("Content-Range"))
