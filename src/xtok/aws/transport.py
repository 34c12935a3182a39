"""One HTTP/1.1 POST on its own connection, the answer parsed by httptools (llhttp).

The fetch's transport: `http.client` pulls in the `email` package to parse headers and
costs more to import than the request takes; httptools (already the local endpoint's parser)
does not. Failures to connect, send or receive a complete answer raise `ConnectionError` (or
another `OSError`), which the fetch retries as botocore would retry a dropped connection.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import httptools

_READ_SIZE = 1 << 16


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.complete = True


def post(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    tls: Any = None,
    connect_timeout: float,
    read_timeout: float,
) -> Response:
    """POST `body` to `path` with exactly `headers` (plus Content-Length and Connection)."""
    lines = [f"POST {path} HTTP/1.1"]
    for name, value in (*headers.items(), ("Content-Length", str(len(body)))):
        if not value.isprintable() or not value.isascii():
            raise ValueError(f"header {name} has a character HTTP does not allow")
        lines.append(f"{name}: {value}")
    lines += ["Connection: close", "", ""]
    request = "\r\n".join(lines).encode("ascii") + body
    sock = socket.create_connection((host, port), timeout=connect_timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=host)
        sock.settimeout(read_timeout)
        sock.sendall(request)
        response = Response()
        parser = httptools.HttpResponseParser(response)
        while not response.complete:
            data = sock.recv(_READ_SIZE)
            if not data:
                raise ConnectionError("the connection closed before a complete answer")
            try:
                parser.feed_data(data)
            except httptools.HttpParserError:
                raise ConnectionError("the answer is not valid HTTP") from None
        response.status = parser.get_status_code()
        return response
    finally:
        sock.close()
