"""EC2-shaped errors.

Inside patched moto handlers we raise Ec2Error: moto serializes a ServiceException
with the EC2 protocol (<Response><Errors><Error>...), so the Rust SDK maps the code.
Outside moto (fault layer, WSGI middleware) we render the same XML ourselves.
"""
from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from moto.core.exceptions import ServiceException


class Ec2Error(ServiceException):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(code, message)
        # moto takes the HTTP status from the model's error shape when it knows the
        # code; for codes EC2's model does not list it falls back to this attribute.
        self.code = code
        self.message = message
        self.http_status_code = status
        self.status_code = status


def ec2_error_xml(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


def wsgi_error(start_response, status: int, code: str, message: str):
    reasons = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}
    body = ec2_error_xml(code, message)
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]
