"""The Python floors robustfetch is measured against: the least a Python program must do.

    python -m benchmarks.floors threaded URL OUT SHA256 CA_FILE
    python -m benchmarks.floors keepalive BASE_URL OUT_DIR CA_FILE NAME:SHA256...

``threaded``: one file over one connection, read with ``recv_into`` into
preallocated 1 MiB buffers; a second thread hashes and writes each full
buffer (hashlib and file writes release the GIL; 256 KiB per write, which
spares the kernel a compaction when memory is fragmented); buffers come back through
a free list of 6; the hash is checked and the file renamed into place, not
synced (the floor of issue #13: a sync at the end would add the disk's time
and flatter whoever syncs as it goes). ``keepalive``: many small files over one kept-alive
``http.client`` connection, each hashed, written, fdatasync'ed and renamed.
Each exits 1 on a hash mismatch.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import queue
import socket
import ssl
import sys
import threading
from urllib.parse import urlsplit

BUFFER = 1 << 20
IN_FLIGHT = 6
WRITE = 256 << 10


def _connect(url: str, ca_file: str) -> tuple[ssl.SSLSocket, str, str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection((host, port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(raw, server_hostname=host), f"{host}:{port}", parts.path


def threaded(url: str, out: str, sha256: str, ca_file: str) -> int:
    sock, authority, path = _connect(url, ca_file)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    free: queue.Queue[bytearray] = queue.Queue()
    for _ in range(IN_FLIGHT):
        free.put(bytearray(BUFFER))
    work: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
    digest = hashlib.sha256()
    part = out + ".part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def writer() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            buffer, count = item
            view = memoryview(buffer)[:count]
            digest.update(view)
            while view:  # 256 KiB per write(2), as robustfetch: see store/staging.py
                view = view[os.write(fd, view[:WRITE]) :]
            free.put(buffer)

    thread = threading.Thread(target=writer)
    thread.start()
    # The head: read until the blank line; what follows it is body.
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    head, _, rest = head.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    buffer = free.get()
    buffer[: len(rest)] = rest
    filled, received = len(rest), len(rest)
    view = memoryview(buffer)
    while received < length:
        count = sock.recv_into(view[filled:], min(BUFFER - filled, length - received))
        if not count:
            break
        filled += count
        received += count
        if filled == BUFFER:
            work.put((buffer, filled))
            buffer = free.get()
            view, filled = memoryview(buffer), 0
    if filled:
        work.put((buffer, filled))
    work.put(None)
    thread.join()
    os.close(fd)
    sock.close()
    if received != length or digest.hexdigest() != sha256:
        os.unlink(part)
        return 1
    os.replace(part, out)
    return 0


def keepalive(base: str, out_dir: str, ca_file: str, files: list[str]) -> int:
    parts = urlsplit(base)
    context = ssl.create_default_context(cafile=ca_file)
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context)
    prefix = parts.path.rstrip("/")
    failed = 0
    for item in files:
        name, _, sha256 = item.partition(":")
        conn.request("GET", f"{prefix}/{name}", headers={"Accept-Encoding": "identity"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or hashlib.sha256(body).hexdigest() != sha256:
            failed = 1
            continue
        target = os.path.join(out_dir, os.path.basename(name))
        part = target + ".part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, body)
        os.fdatasync(fd)
        os.close(fd)
        os.replace(part, target)
    conn.close()
    return failed


def main(argv: list[str]) -> int:
    if argv[:1] == ["threaded"] and len(argv) == 5:
        return threaded(*argv[1:])
    if argv[:1] == ["keepalive"] and len(argv) >= 4:
        return keepalive(argv[1], argv[2], argv[3], argv[4:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
