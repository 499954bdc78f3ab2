"""EC2-shaped errors.

Inside patched moto handlers we raise Ec2Error: moto serializes a ServiceException
with the EC2 protocol (<Response><Errors><Error>...), so the Rust SDK maps the code.
Outside moto (fault layer, WSGI middleware) we render the same XML ourselves.
"""
from __future__ import annotations

import re
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


# The forms EC2 itself writes (as seen in AWS CLI output):
#   InvalidAMIID.NotFound   The image id '[ami-1]' does not exist
#                           The image ids '[ami-1, ami-2]' do not exist
#   InvalidAMIID.Malformed  Invalid id: "img-1" (expecting "ami-...")
# moto's own exceptions already use them; our handlers raise these.
AMI_ID_RE = re.compile(r"ami-[a-z0-9]+")  # moto's rule (AWS: 8 or 17 hex digits)


def image_not_found(image_ids) -> Ec2Error:
    ids = [image_ids] if isinstance(image_ids, str) else list(image_ids)
    if len(ids) > 1:
        return Ec2Error("InvalidAMIID.NotFound", f"The image ids '[{', '.join(ids)}]' do not exist")
    return Ec2Error("InvalidAMIID.NotFound", f"The image id '[{ids[0]}]' does not exist")


def check_image_ids(image_ids) -> None:
    """InvalidAMIID.Malformed for the first id that is not an image id."""
    ids = [image_ids] if isinstance(image_ids, str) else list(image_ids)
    for i in ids:
        if not AMI_ID_RE.fullmatch(i or ""):
            raise Ec2Error("InvalidAMIID.Malformed", f'Invalid id: "{i}" (expecting "ami-...")')
