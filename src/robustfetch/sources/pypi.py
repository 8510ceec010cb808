"""Finding a moved PyPI sdist through PyPI's JSON API (the one lookup besides the sources)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Optional, Union

from ..errors import Attempt, Reason, SourceFailed
from ..policy.access import remote_link_allowed
from ..policy.answers import load_json
from ..policy.digests import DigestValue, accepted, show_digests
from ..policy.plan import Source
from ..policy.pypi import SdistRef, find_file, json_api_url
from ..policy.rewrite import RuleSet
from ..policy.urls import check_url
from .getter import DocumentGetter

__all__ = ["ask_pypi"]

log = logging.getLogger("robustfetch")

_JSON_LIMIT = 64 << 20  # the largest PyPI project documents are some MiB


def ask_pypi(
    transfer: DocumentGetter,
    ref: SdistRef,
    expected: Mapping[str, DigestValue],
    rules: RuleSet,
    deadline_at: Optional[float],
) -> Union[Source, Attempt]:
    """The source PyPI lists for ``ref``'s file, or the failed :class:`Attempt` saying why.

    PyPI's sha256 must agree with a pinned one; it is checked even when none
    is pinned (the returned source carries it).
    """
    api = json_api_url(ref.project)
    try:
        document = load_json(transfer.get(api, _JSON_LIMIT, deadline_at))
    except SourceFailed as failure:
        detail = f"PyPI lookup of {ref.project!r}: {failure.detail}"
        return Attempt(api, failure.reason, detail, failure.status)
    except ValueError as exc:  # JSON, its text encoding, or its depth
        return Attempt(api, Reason.HTTP_STATUS, f"PyPI answered unusable JSON: {exc}", 200)
    found = find_file(document, ref.filename)
    if found is None:
        detail = f"PyPI lists no file like {ref.filename} for {ref.project!r}"
        return Attempt(api, Reason.NOT_FOUND, detail, 200)
    url, listed = found
    if not url.lower().startswith("https://") or not remote_link_allowed(url, False, False):
        # PyPI lists nothing else: a file:, http or ftp link is an answer that was tampered
        # with, or a server that is not PyPI; it must not make us read a local file.
        detail = f"PyPI lists {ref.filename} at {url!r}: only https links are used from PyPI"
        return Attempt(api, Reason.INSECURE_REFUSED, detail, 200)
    try:
        check_url(url)
    except ValueError as exc:
        return Attempt(api, Reason.HTTP_STATUS, f"PyPI lists an unusable URL: {exc}")
    pinned = expected.get("sha256")
    if listed is not None and pinned is not None and listed not in accepted(pinned):
        detail = (
            f"PyPI lists sha256 {listed} for {ref.filename}, but {show_digests(pinned)} is pinned: "
            "the pin or the upload is wrong"
        )
        return Attempt(url, Reason.HASH_MISMATCH, detail)
    log.info("%s: PyPI lists it at %s", ref.url, url)
    blocked = rules.blocked_by(url)
    return Source(
        url,
        "pypi",
        str(blocked) if blocked is not None else None,
        {"sha256": listed} if listed is not None else {},
    )
