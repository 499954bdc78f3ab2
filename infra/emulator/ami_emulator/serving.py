"""The emulator's HTTP/1.1 server: one thread per connection, connections kept alive.

werkzeug's development server (what moto's own server runs) answers every request
with `Connection: close`, so each SDK call costs a TCP connection, an accept and a
new thread; under the cleanup benchmark (thousands of calls a minute) that was a
fifth of the emulator's CPU. The SDKs pool connections and keep them alive, as AWS
does; this server lets them:
* a request line, headers up to a blank line, then exactly `Content-Length` bytes
  of body (or a chunked body, decoded), so the next request starts where this one
  ended — the reason werkzeug closes instead (http.server cannot drain a body it
  did not read);
* the WSGI app's answer written in one send, with its length; the connection stays
  open unless the client asked for `Connection: close` or spoke HTTP/1.0;
* anything malformed gets a 400 and the connection is closed.

`make_server(host, port, app)` returns a `ThreadingHTTPServer` whose
`serve_forever`, `shutdown` and `server_close` are socketserver's.
"""
from __future__ import annotations

import io
import socketserver
import sys
import traceback
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import unquote_to_bytes

MAX_LINE = 65536
MAX_HEADERS = 200


class BadRequest(Exception):
    """The request cannot be read: answer 400 and close the connection."""


class ThreadingHTTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # an idle kept-alive connection must not hold the process
    allow_reuse_address = True
    request_queue_size = 128  # the SDKs open a pool of connections at once

    def __init__(self, address: tuple[str, int], app: Callable[..., Any]):
        self.app = app
        super().__init__(address, ConnectionHandler)
        self.server_name = address[0]
        self.server_port = self.server_address[1]


class ConnectionHandler(socketserver.StreamRequestHandler):
    """Serves the requests of one connection, one after the other."""

    rbufsize = 65536
    wbufsize = 0  # each answer is one sendall

    def handle(self) -> None:
        while True:
            try:
                keep_alive = self.handle_one()
            except BadRequest as e:
                self.send_plain(HTTPStatus.BAD_REQUEST, str(e))
                return
            except (ConnectionError, TimeoutError):
                return
            if not keep_alive:
                return

    def handle_one(self) -> bool:
        """Serves one request; False when the connection is to be closed after it."""
        line = self.rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # stray blank lines between requests (RFC 9112 2.2)
            line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return False  # the client closed the connection
        if len(line) > MAX_LINE:
            raise BadRequest("request line too long")
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            raise BadRequest(f"malformed request line {line[:80]!r}") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(f"unsupported protocol {version!r}")
        headers = self.read_headers()
        environ = self.environ(method, target, version, headers)
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ["wsgi.input"] = io.BytesIO(self.read_body(environ))
        connection = environ.get("HTTP_CONNECTION", "").lower()
        keep_alive = version == "HTTP/1.1" and "close" not in connection
        self.run_app(environ, method, keep_alive)
        return keep_alive

    def read_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return headers
            if not line:
                raise ConnectionError("connection closed inside the headers")
            if len(line) > MAX_LINE or len(headers) >= MAX_HEADERS:
                raise BadRequest("headers too long")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest(f"malformed header line {line[:80]!r}")
            headers.append((name, value.strip()))

    def environ(self, method: str, target: str, version: str,
                headers: list[tuple[str, str]]) -> dict[str, Any]:
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute form
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        env: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": target,
            "REQUEST_URI": target,
            "SERVER_NAME": self.server.server_name,
            "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                env[key] = value
                continue
            key = "HTTP_" + key
            env[key] = f"{env[key]},{value}" if key in env else value
        return env

    def read_body(self, environ: dict[str, Any]) -> bytes:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = self.read_chunked()
            environ["CONTENT_LENGTH"] = str(len(body))
            return body
        raw = environ.get("CONTENT_LENGTH", "")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise BadRequest(f"Content-Length {raw!r} is not a number") from None
        if length < 0:
            raise BadRequest(f"Content-Length {raw!r} is negative")
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionError("connection closed inside the body")
        return body

    def read_chunked(self) -> bytes:
        parts = []
        while True:
            size_line = self.rfile.readline(MAX_LINE + 1)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(f"malformed chunk size {size_line[:40]!r}") from None
            if size == 0:
                self.read_headers()  # trailers, up to the blank line
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(MAX_LINE + 1)  # the CRLF after the chunk

    def run_app(self, environ: dict[str, Any], method: str, keep_alive: bool) -> None:
        started: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, response_headers]
            return lambda data: extra.append(data)

        extra: list[bytes] = []  # what the legacy write() callable was given
        try:
            result = self.server.app(environ, start_response)
            try:
                body = b"".join(extra) + b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:  # the app failed: say so, as werkzeug's server did
            traceback.print_exc()
            self.send_plain(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")
            raise ConnectionError("the app failed") from None
        status, response_headers = started
        length = str(len(body))
        head = [f"HTTP/1.1 {status}"]
        for name, value in response_headers:
            lower = name.lower()
            if lower == "content-length" and method == "HEAD":
                length = value  # what a GET would send; a HEAD sends no body
            if lower in ("content-length", "connection", "transfer-encoding"):
                continue
            head.append(f"{name}: {value}")
        head.append(f"Content-Length: {length}")
        if not keep_alive:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if method == "HEAD":
            body = b""
        self.wfile.write(data + body)

    def send_plain(self, status: HTTPStatus, text: str) -> None:
        body = text.encode("utf-8", "replace")
        head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        try:
            self.wfile.write(head.encode("latin-1") + body)
        except OSError:
            pass


def make_server(host: str, port: int, app: Callable[..., Any]) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), app)
