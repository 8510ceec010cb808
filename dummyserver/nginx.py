"""A real nginx on loopback that refuses TLS handshakes without SNI, for tests.

Its default server has ``ssl_reject_handshake on;``, so a client that sends no
server name (an IP-literal URL, an old Python) gets an ``unrecognized_name``
alert, as PyPI's CDN did to clients without SNI. A second server, named
``localhost`` and ``example.test`` (see :data:`SERVER_NAMES`), holds a test
certificate and serves a folder::

    with Nginx(root, certs.good) as nginx:
        nginx.url("/f.bin")            # https://localhost:<port>/f.bin

The benchmarks use it too: connections are kept alive for any number of
requests, ``.html`` pages go out as ``text/html`` (a PEP 503 simple index), each
request is logged with its connection's serial number, so :meth:`Nginx.connections`
counts the TCP connections a client opened, and :meth:`Nginx.cpu_seconds` tells
what serving cost.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Optional

from dummyserver import pki

__all__ = ["SERVER_NAMES", "Nginx", "find_nginx"]

#: The names the certificate-holding server answers to.
SERVER_NAMES: tuple[str, ...] = ("localhost", "example.test")
#: Longest wait, in seconds, for nginx to start listening or to stop.
WAIT = 10.0

_CONFIG = """
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format connections '$connection $status $bytes_sent "$request"';
    access_log {access_log};
    keepalive_requests 100000;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    types {{ application/octet-stream bin; text/html html; }}
    default_type application/octet-stream;
{reject}
    server {{
        listen 127.0.0.1:{port} ssl{named_default};
        server_name {names};
        ssl_certificate {work}/cert.pem;
        ssl_certificate_key {work}/key.pem;
        root {root};
        autoindex {autoindex};
        limit_rate {limit_rate};
    }}
}}
"""


_REJECT = """    server {{
        listen 127.0.0.1:{port} ssl default_server;
        ssl_reject_handshake on;
    }}"""


def find_nginx() -> Optional[str]:
    """The nginx binary on ``PATH`` or in the usual sbin folders, or ``None``."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class Nginx:
    """nginx serving ``root`` at ``https://localhost:<port>/`` on 127.0.0.1, SNI required.

    :param root: the folder served.
    :param cert: the certificate (and key) of the named server; it must cover
        :data:`SERVER_NAMES` to be verified under those names.
    :param binary: the nginx executable (default: :func:`find_nginx`).
    :param access_log: log each request as ``<connection serial> <status>
        <bytes sent> "<request line>"`` (read by :meth:`connections`); ``False``
        turns logging off.
    :param autoindex: list folders (nginx's ``autoindex on``), as a find-links page.
    :param limit_rate: bytes per second per connection (nginx's ``limit_rate``, e.g.
        ``"8m"``), for a mirror that throttles each connection; ``None``: no limit.
    :param sni_required: refuse handshakes without SNI (the default); ``False`` serves
        them too (aria2c sends no SNI for ``localhost``).

    It runs in its own session and is stopped by its PID in :meth:`close`, which
    also runs when the interpreter exits, should a test forget it.
    """

    def __init__(
        self,
        root: Path,
        cert: pki.LeafCert,
        binary: Optional[str] = None,
        *,
        access_log: bool = True,
        autoindex: bool = False,
        limit_rate: Optional[str] = None,
        sni_required: bool = True,
    ) -> None:
        binary = binary or find_nginx()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self.root = Path(root)
        self.access_log = access_log
        self.autoindex = autoindex
        self.limit_rate = limit_rate or "0"
        self.sni_required = sni_required
        self.port = 0
        self.work = Path(tempfile.mkdtemp(prefix="dummyserver-nginx-"))
        self._running: list[subprocess.Popen[bytes]] = []
        self._finalizer = weakref.finalize(self, _stop, self._running, self.work)
        try:
            cert.private_key_pem.write_to_path(str(self.work / "key.pem"))
            with open(self.work / "cert.pem", "wb") as chain:
                for blob in cert.cert_chain_pems:
                    chain.write(blob.bytes())
            self._start(binary)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> Optional[int]:
        """The nginx master's PID while it runs."""
        return self._running[0].pid if self._running else None

    def url(self, path: str, host: str = "localhost") -> str:
        """``https://<host>:<port><path>``; ``host`` may be a name or ``127.0.0.1``."""
        if not path.startswith("/"):
            raise ValueError(f"paths start with '/': {path!r}")
        return f"https://{host}:{self.port}{path}"

    def error_log(self) -> str:
        """What nginx wrote to its error log so far (empty once closed)."""
        try:
            return (self.work / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        """Bytes in the access log so far: pass it to :meth:`connections` as ``since``."""
        try:
            return (self.work / "access.log").stat().st_size
        except OSError:
            return 0

    def connections(self, since: int = 0) -> set[int]:
        """Serial numbers of the TCP connections that carried the requests logged
        after byte ``since`` of the access log (nginx writes each line at once)."""
        if not self.access_log:
            raise RuntimeError("started with access_log=False")
        try:
            with open(self.work / "access.log", "rb") as log:
                log.seek(since)
                lines = log.read().decode("latin-1").splitlines()
        except OSError:
            return set()
        return {int(line.split(" ", 1)[0]) for line in lines if line[:1].isdigit()}

    def requests(self) -> list[tuple[int, str]]:
        """``(status, path)`` of each logged request so far, in order (nginx logs on completion)."""
        try:
            text = (self.work / "access.log").read_bytes().decode("latin-1")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            _, status, _, request = line.split(" ", 3)
            found.append((int(status), request.strip('"').split(" ")[1]))
        return found

    def cpu_seconds(self) -> Optional[float]:
        """CPU time (user + system) nginx's master and workers used so far.

        Read from ``/proc``; ``None`` where it is not available (not Linux).
        """
        if self.pid is None:
            return None
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            total = 0
            for pid in [str(self.pid), *children]:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            return None
        return total / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        """Stop nginx (SIGQUIT to its PID; SIGKILL to its group after ``WAIT``); remove files."""
        self._finalizer()

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self, binary: str) -> None:
        # As root, workers would drop to "nobody" and could not read the private work dir.
        user = "user root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        last_error = ""
        for _ in range(3):  # the port is free when picked but may be taken before nginx binds
            self.port = _free_port()
            config = _CONFIG.format(
                user=user,
                work=self.work,
                port=self.port,
                root=self.root,
                names=" ".join(SERVER_NAMES),
                autoindex="on" if self.autoindex else "off",
                limit_rate=self.limit_rate,
                reject=_REJECT.format(port=self.port) if self.sni_required else "",
                named_default="" if self.sni_required else " default_server",
                access_log=f"{self.work}/access.log connections" if self.access_log else "off",
            )
            (self.work / "nginx.conf").write_text(config)
            command = [binary, "-p", str(self.work), "-c", str(self.work / "nginx.conf")]
            with open(self.work / "stderr.log", "wb") as stderr:
                process = subprocess.Popen(
                    [*command, "-e", str(self.work / "error.log")],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                )
            self._running.append(process)
            if self._wait_listening(process):
                return
            _stop(self._running, None)
            last_error = self.error_log() + (self.work / "stderr.log").read_text(errors="replace")
            if "Address already in use" not in last_error:
                break
        raise RuntimeError(f"nginx did not start: {last_error.strip()}")

    def _wait_listening(self, process: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket() as probe:
                probe.settimeout(1.0)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return True
            time.sleep(0.02)
        return False


def _stop(running: list[subprocess.Popen[bytes]], work: Optional[Path]) -> None:
    """Stop each process by its PID, then remove ``work``."""
    while running:
        process = running.pop()
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: the worker finishes, then exits
            try:
                process.wait(WAIT)
            except subprocess.TimeoutExpired:
                # The master leads its own session: its group holds only it and its worker.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(WAIT)
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
