"""Response heads read by ``http.client`` without its e-mail parser (both transports).

``http.client`` hands every response head to :mod:`email.parser`, about 100 µs
for the eight lines a file server sends: for ``fetch_many`` of small files the
largest single cost after TLS. :class:`FastHeadResponse` reads the same lines,
with the same limits (:data:`http.client._MAXLINE`, ``_MAXHEADERS``), and
builds the same :class:`http.client.HTTPMessage` directly when every line is a
plain ``Name: value`` field; any other head (folded lines, a line without a
colon, bytes outside printable ASCII, a ``multipart``/``message`` type) goes to
the e-mail parser exactly as ``http.client`` would, so the result never differs.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any, Optional

__all__ = ["FastHeadResponse", "parse_head"]

# http.client's limits (private names, present since Python 3.2 and 3.5).
_MAXLINE: int = getattr(http.client, "_MAXLINE", 65536)
_MAXHEADERS: int = getattr(http.client, "_MAXHEADERS", 100)
# A field the e-mail parser takes as one header, split as it would: the name is
# what its header pattern allows before the colon, the value loses leading blanks
# and its line end, nothing else. Printable ASCII and tabs only: the parser also
# cuts lines at \x0b, \x0c, \x1c-\x1e and \x85 (str.splitlines).
_LINE = re.compile(rb"[!-9;-~]+:[\t -~]*\r?\n")
# The same, splitting name and value; on lines that matched _LINE, one match per line.
_FIELD = re.compile(r"([!-9;-~]+):[ \t]*([\t -~]*)\r?\n")
# Types the e-mail parser would look into the (empty) body for.
_NESTED = ("multipart/", "message/")


def read_lines(fp: Any) -> list[bytes]:
    """The head's lines up to and including the blank one, as ``http.client`` reads them.

    :raises http.client.LineTooLong: a line longer than ``http.client``'s limit.
    :raises http.client.HTTPException: more header lines than its limit.
    """
    lines: list[bytes] = []
    while True:
        line = fp.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > _MAXHEADERS:
            raise http.client.HTTPException(f"got more than {_MAXHEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def parse_head(lines: list[bytes]) -> http.client.HTTPMessage:
    """The :class:`http.client.HTTPMessage` ``http.client.parse_headers`` makes of ``lines``."""
    message = _plain_fields(lines)
    if message is None:
        text = b"".join(lines).decode("iso-8859-1")
        message = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
    return message


def _plain_fields(lines: list[bytes]) -> Optional[http.client.HTTPMessage]:
    """``lines`` as a message if each is a plain field and the last one blank, else None."""
    if not lines or lines[-1] not in (b"\r\n", b"\n"):
        return None  # the head ended with the connection: let the e-mail parser judge
    fields = lines[:-1]
    if not all(map(_LINE.fullmatch, fields)):
        return None
    message = http.client.HTTPMessage()
    for name, value in _FIELD.findall(b"".join(fields).decode("iso-8859-1")):
        if name.lower() == "content-type" and value.lower().startswith(_NESTED):
            return None
        message.set_raw(name, value)
    # What the e-mail parser leaves for a head with no body after it.
    message.set_payload("")
    return message


class FastHeadResponse(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` whose head is parsed by :func:`parse_head`.

    :meth:`begin` is ``http.client``'s (Python 3.11), with only the header parse changed.
    """

    def begin(self) -> None:
        if self.headers is not None:
            return  # already started reading the response
        while True:  # skip any 100 Continue answers
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            read_lines(self.fp)
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10  # "0.9" is treated as 1.0, as http.client does
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = parse_head(read_lines(self.fp))
        encoding = self.headers.get("transfer-encoding")
        if encoding and encoding.lower() == "chunked":
            self.chunked = True
            self.chunk_left = None
        else:
            self.chunked = False
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:  # nonsensical negative lengths are ignored
                    self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"
        ):
            self.length = 0
        # Neither chunked nor a length, on a connection kept open: the close ends the body.
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
