"""Reads an ``http.client`` response body straight into the caller's buffers (both transports)."""

from __future__ import annotations

import http.client
from typing import Optional, Union

__all__ = ["BodyReader"]

Buffer = Union[bytearray, memoryview]


class BodyReader:
    """The body of ``response``, read without an intermediate ``bytes`` per chunk.

    ``http.client``'s own ``readinto`` fills the whole buffer before it returns
    (a slow source would then give no progress, speed or deadline check for a
    whole buffer), and ``read1`` allocates a new ``bytes`` per call. Here one
    call is at most one socket read (one TLS record), straight into the
    caller's memory; the length bookkeeping ``http.client`` would do is done
    here, and the response is closed at the end so its connection can serve
    the next request.

    :param response: a response whose head has been read.
    """

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response
        # Chunked bodies need http.client's decoder; it copies, but servers
        # rarely chunk a file.
        self._chunked = bool(getattr(response, "chunked", False))
        self.remaining: Optional[int] = response.length
        self.received = 0

    def readinto(self, buffer: Buffer) -> int:
        """Up to ``len(buffer)`` body bytes as soon as some arrive; ``0`` at the end.

        :raises http.client.IncompleteRead: the connection closed before the
            announced ``Content-Length``.
        """
        response = self._response
        fp = response.fp
        if fp is None:
            return 0
        if self._chunked:
            count = response.readinto(buffer)
            self.received += count
            return count
        remaining = self.remaining
        if remaining is not None:
            if remaining == 0:
                response.close()
                return 0
            if len(buffer) > remaining:
                buffer = memoryview(buffer)[:remaining]
        count = fp.readinto1(buffer)
        if count:
            self.received += count
            if remaining is not None:
                self.remaining = remaining - count
                if self.remaining == 0:
                    response.close()  # its connection may now send the next request
            return count
        response.close()
        if remaining:
            raise http.client.IncompleteRead(b"", remaining)
        return 0
