"""A real nginx on loopback that refuses TLS handshakes without SNI, for tests.

Its default server has ``ssl_reject_handshake on;``, so a client that sends no
server name (an IP-literal URL, an old Python) gets an ``unrecognized_name``
alert, as PyPI's CDN did to clients without SNI. A second server, named
``localhost`` and ``example.test`` (see :data:`SERVER_NAMES`), holds a trustme
certificate and serves a folder::

    with Nginx(root, certs.good) as nginx:
        nginx.url("/f.bin")            # https://localhost:<port>/f.bin
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import trustme

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
events {{ worker_connections 64; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} ssl default_server;
        ssl_reject_handshake on;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {names};
        ssl_certificate {work}/cert.pem;
        ssl_certificate_key {work}/key.pem;
        root {root};
    }}
}}
"""


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

    It runs in its own session and is stopped by its PID in :meth:`close`.
    """

    def __init__(self, root: Path, cert: trustme.LeafCert, binary: Optional[str] = None) -> None:
        binary = binary or find_nginx()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self.root = Path(root)
        self.work = Path(tempfile.mkdtemp(prefix="dummyserver-nginx-"))
        self.process: Optional[subprocess.Popen[bytes]] = None
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
        return self.process.pid if self.process is not None else None

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

    def close(self) -> None:
        """Stop nginx: SIGQUIT (graceful) to its PID, SIGKILL to its group after ``WAIT``."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(WAIT)
            except subprocess.TimeoutExpired:
                # The master leads its own session: its group holds only it and its worker.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(WAIT)
        shutil.rmtree(self.work, ignore_errors=True)

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
            )
            (self.work / "nginx.conf").write_text(config)
            with open(self.work / "stderr.log", "wb") as stderr:
                self.process = subprocess.Popen(
                    [
                        binary,
                        "-p",
                        str(self.work),
                        "-c",
                        str(self.work / "nginx.conf"),
                        "-e",
                        str(self.work / "error.log"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                )
            if self._wait_listening():
                return
            last_error = self.error_log() + (self.work / "stderr.log").read_text(errors="replace")
            if "Address already in use" not in last_error:
                break
        raise RuntimeError(f"nginx did not start: {last_error.strip()}")

    def _wait_listening(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            with socket.socket() as probe:
                probe.settimeout(1.0)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return True
            time.sleep(0.02)
        process, self.process = self.process, None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(WAIT)
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
