"""A real nginx serving a folder over HTTPS on loopback, for benchmarks (and tests)."""

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

__all__ = ["Nginx", "find_nginx"]

CONFIG = """
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format conn '$connection $request';
    {access_log}
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {work}/cert.pem;
        ssl_certificate_key {work}/key.pem;
        root {root};
    }}
}}
"""


def find_nginx() -> Optional[str]:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


class Nginx:
    """nginx serving ``root`` at ``https://localhost:<port>/``; stopped by its PID on close."""

    def __init__(self, root: Path, ca: trustme.CA, log_requests: bool = False) -> None:
        binary = find_nginx()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self.work = Path(tempfile.mkdtemp(prefix="rf-nginx-"))
        cert = ca.issue_cert("localhost", "127.0.0.1")
        cert.cert_chain_pems[0].write_to_path(str(self.work / "cert.pem"))
        cert.private_key_pem.write_to_path(str(self.work / "key.pem"))
        self.port = _free_port()
        # As root, workers would drop to "nobody" and not read private temp folders.
        user = "user root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        access = f"access_log {self.work}/access.log conn;" if log_requests else "access_log off;"
        config = CONFIG.format(
            user=user, work=self.work, port=self.port, root=root, access_log=access
        )
        (self.work / "nginx.conf").write_text(config)
        self.process = subprocess.Popen(
            [binary, "-c", str(self.work / "nginx.conf"), "-p", str(self.work)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_listening()

    def connections(self) -> int:
        """TCP connections that carried requests (needs ``log_requests``)."""
        log = self.work / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return len({line.split()[0] for line in lines if line})

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_listening(self) -> None:
        for _ in range(200):
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited: {err}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.close()
        raise RuntimeError("nginx did not start listening")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
