"""EC2 requests go straight to moto's EC2Response, without moto's Flask app around it.

moto's server routes every request through `DomainDispatcherApplication` (which
service? which region? under a global lock) and then a Flask app per service: a
request context, URL routing to the one EC2 view, CORS headers, a Flask response
object. All of that gives the same answer for every EC2 call, and under the cleanup
benchmark it cost a sixth of the emulator's CPU. `DirectEc2` makes the call that
moto's Flask view makes (`convert_to_flask_response`: the request, its raw URL and
its headers to `EC2Response.dispatch`) and writes moto's answer as WSGI.

What goes direct: a POST to `/` signed for `ec2` (the Query protocol every SDK
uses). Anything else (other services, unsigned requests, moto's own `/moto-api`)
goes on to moto's dispatcher as before.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

from botocore.exceptions import ClientError
from moto.core.request import Request
from moto.ec2.responses import EC2Response
from moto.moto_api import recorder
from werkzeug.exceptions import HTTPException

from .accounts import SCOPE_RE

DEFAULT_CONTENT_TYPE = "text/html; charset=utf-8"  # what Flask's Response would say


class ServerRequest(Request):
    """moto's request type, as its server builds it (`BackendRequest` without Flask)."""

    from_wsgi_server = True


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} UNKNOWN"


class DirectEc2:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response):
        if not is_ec2_query(environ):
            return self.app(environ, start_response)
        request = ServerRequest(environ)
        recorder._record_request(request)
        try:
            result = EC2Response.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:  # as convert_to_flask_response answers it
            result = 400, {}, exc.response["Error"]["Message"]
        except HTTPException as exc:  # as Flask answers it: the error renders itself
            return exc(environ, start_response)
        if len(result) == 3:
            code, headers, content = result
        else:
            code, headers, content = 200, {}, result
        body = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
        out = [(str(k), str(v)) for k, v in headers.items()
               if k.lower() not in ("content-length", "status")]
        if not any(k.lower() == "content-type" for k, _ in out):
            out.append(("Content-Type", DEFAULT_CONTENT_TYPE))
        out.append(("Content-Length", str(len(body))))
        start_response(status_line(int(code)), out)
        return [body]


def is_ec2_query(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/":
        return False
    m = SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return bool(m) and m.group(2) == "ec2"
