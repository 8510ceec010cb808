"""Checks on an answer's head and first bytes: its digest header, an HTML page for a file."""

from __future__ import annotations

from ..errors import Reason, SourceFailed
from ..policy.digests import Verifier
from ..policy.sniff import SNIFF_BYTES, describe_error_page, is_error_page
from ..policy.urls import filename_from_url
from ..policy.witness import disagreement, server_digests
from ..transport import Response

__all__ = ["ERROR_BODY", "Sniff", "check_witness"]

#: The most of an error page kept for its description.
ERROR_BODY = 64 * 1024


def check_witness(response: Response, verifier: Verifier, offset: int) -> None:
    """Make the server's digest of a full answer a requirement, or fail if it contradicts one."""
    announced = server_digests(response.headers, response.status, offset)
    if not announced:
        return
    expected = {name: found for name in announced if (found := verifier.accepts(name))}
    conflict = disagreement(expected, announced)
    if conflict is not None:
        raise SourceFailed(
            Reason.HASH_MISMATCH, f"the server's digest header says {conflict}; not downloaded"
        )
    for name, digest in announced.items():
        verifier.require(name, {digest}, "server")


class Sniff:
    """The first bytes of a body: an HTML page where a file was expected ends the try at once."""

    def __init__(
        self, response: Response, url: str, requested: str, name: str, offset: int
    ) -> None:
        self.status = response.status
        self.content_type = response.headers.get("Content-Type")
        self.url, self.requested, self.offset = url, requested, offset
        if not name:
            try:
                name = filename_from_url(requested)
            except ValueError:
                name = ""
        self.name = name
        self.head = b""
        #: Still looking: the first bytes are not all in yet.
        self.wanted = True

    def check(self, chunk: bytes | memoryview, start: bytes | memoryview) -> None:
        """Look at one more read (``b""`` at the end of the body).

        :param chunk: the bytes just read.
        :param start: the body so far, as far as it is at hand (for the page's title).
        """
        if not self.wanted:
            return
        self.head += bytes(chunk[: SNIFF_BYTES - len(self.head)])
        # A resumed body starts mid-file: only its Content-Type says anything.
        head = self.head if self.offset == 0 else b""
        if is_error_page(self.content_type, head, self.name):
            page = bytes(start[:ERROR_BODY]) if len(start) > len(self.head) else self.head
            detail = describe_error_page(page, self.status, self.url, self.requested)
            raise SourceFailed(Reason.ERROR_PAGE, detail, self.status)
        self.wanted = len(self.head) < SNIFF_BYTES and bool(chunk)
