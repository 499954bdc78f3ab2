"""serving.py: the emulator's HTTP/1.1 server keeps connections alive and frames bodies."""
from __future__ import annotations

import socket
import threading

import pytest

from ami_emulator.serving import make_server


def echo_app(environ, start_response):
    """Answers with what it was sent, so a test can see the environ the server built."""
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("the app failed")
    body = environ["wsgi.input"].read()
    answer = (f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} q={environ['QUERY_STRING']} "
              f"len={environ.get('CONTENT_LENGTH', '')} x={environ.get('HTTP_X_THING', '')} "
              f"body={body.decode()}").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def echo_server():
    srv = make_server("127.0.0.1", 0, echo_app)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def read_response(f) -> tuple[str, dict[str, str], bytes]:
    status = f.readline().decode().strip()
    headers = {}
    while True:
        line = f.readline().decode()
        if line in ("\r\n", ""):
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", 0)))
    return status, headers, body


def connect(server):
    sock = socket.create_connection(("127.0.0.1", server.server_port), timeout=5)
    return sock, sock.makefile("rb")


def test_requests_on_one_connection_are_answered_in_turn(echo_server):
    sock, f = connect(echo_server)
    # Two requests sent at once: the second starts right after the first's body.
    sock.sendall(b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Thing: t1\r\n\r\nhello"
                 b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nbye")
    status, headers, body = read_response(f)
    assert status == "HTTP/1.1 200 OK"
    assert body == b"POST /a q=x=1 len=5 x=t1 body=hello"
    assert "connection" not in headers
    status, _, body = read_response(f)
    assert body == b"POST /b q= len=3 x= body=bye"
    sock.close()


def test_connection_close_and_http_1_0_end_the_connection(echo_server):
    for request in (b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                    b"GET /c HTTP/1.0\r\n\r\n"):
        sock, f = connect(echo_server)
        sock.sendall(request)
        status, headers, body = read_response(f)
        assert status == "HTTP/1.1 200 OK" and body.startswith(b"GET /c")
        assert headers["connection"] == "close"
        assert f.read() == b""  # the server closed its end
        sock.close()


def test_chunked_bodies_are_decoded_and_head_sends_no_body(echo_server):
    sock, f = connect(echo_server)
    sock.sendall(b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
                 b"HEAD /e HTTP/1.1\r\n\r\n"
                 b"GET /f HTTP/1.1\r\n\r\n")
    _, _, body = read_response(f)
    assert body == b"POST /d q= len=5 x= body=abcde"
    status = f.readline()
    assert status.startswith(b"HTTP/1.1 200")
    head = {}
    while (line := f.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        head[name.lower()] = value.strip()
    assert int(head["content-length"]) == len(b"HEAD /e q= len= x= body=")
    # No body after a HEAD: the next bytes are the third answer's status line.
    _, _, body = read_response(f)
    assert body.startswith(b"GET /f")
    sock.close()


def test_malformed_requests_get_400_and_a_failing_app_500(echo_server):
    sock, f = connect(echo_server)
    sock.sendall(b"NONSENSE\r\n\r\n")
    status, headers, _ = read_response(f)
    assert status.startswith("HTTP/1.1 400") and headers["connection"] == "close"
    sock.close()
    sock, f = connect(echo_server)
    sock.sendall(b"POST /g HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    status, _, body = read_response(f)
    assert status.startswith("HTTP/1.1 400") and b"Content-Length" in body
    sock.close()
    sock, f = connect(echo_server)
    sock.sendall(b"GET /boom HTTP/1.1\r\n\r\n")
    status, headers, _ = read_response(f)
    assert status.startswith("HTTP/1.1 500") and headers["connection"] == "close"
    sock.close()
