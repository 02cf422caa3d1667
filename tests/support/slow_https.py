"""A loopback HTTPS file server whose speed a test sets, so a model download lasts long enough to
be interrupted. It answers Range requests (stackctl-fetch resumes a .part with them) and records
each request's start offset. The certificate is self-signed for 127.0.0.1, made by the openssl
CLI; a client trusts it through SSL_CERT_FILE.
"""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 64 * 1024


@dataclass
class Served:
    """What the server shares with the test: the files, the speed, the requests seen."""

    files: dict[str, Path]
    bytes_per_s: float | None = None  # None: as fast as it goes
    starts: list[int] = field(default_factory=list)
    port: int = 0
    cert: Path = Path()

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.port}/{name}"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _handler(served: Served) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            path = served.files.get(self.path.lstrip("/"))
            if path is None:
                self.send_error(404)
                return
            size = path.stat().st_size
            start = 0
            wanted = self.headers.get("Range", "")
            if wanted.startswith("bytes="):
                start = int(wanted[6:].split("-")[0])
                if start >= size:
                    self.send_error(416)
                    return
            served.starts.append(start)
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(size - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            self._send(path, start)

        def _send(self, path: Path, start: int) -> None:
            began = time.monotonic()
            sent = 0
            with path.open("rb") as handle:
                handle.seek(start)
                while block := handle.read(CHUNK):
                    try:
                        self.wfile.write(block)
                    except OSError:  # the client went away (killed): nothing more to send
                        return
                    sent += len(block)
                    rate = served.bytes_per_s
                    if rate:
                        ahead = sent / rate - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)

    return Handler


@contextmanager
def https_server(files: dict[str, Path], folder: Path) -> Iterator[Served]:
    cert, key = make_certificate(folder)
    served = Served(files=files, cert=cert)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
