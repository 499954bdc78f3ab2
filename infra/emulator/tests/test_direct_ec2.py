"""direct_ec2: EC2 answers without moto's Flask app are the answers moto's app gives.

The emulator runs in this process (conftest's `server`) so each request can be answered
twice over the same state: once through `DirectEc2` and once through moto's own
dispatcher and Flask app (`is_ec2_query` patched to refuse it). Status, content type and body must be equal; only
the per-request requestId differs.
"""
from __future__ import annotations

import contextlib
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ec2/aws4_request, "
        "SignedHeaders=host, Signature=0")


@contextlib.contextmanager
def through_moto():
    from ami_emulator import direct_ec2
    original = direct_ec2.is_ec2_query
    direct_ec2.is_ec2_query = lambda environ: False
    try:
        yield
    finally:
        direct_ec2.is_ec2_query = original


def call(url: str, params: dict[str, str]) -> tuple[int, str, str]:
    body = urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()
    req = urllib.request.Request(url + "/", data=body, method="POST", headers={
        "Authorization": AUTH, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, ctype, text = resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as e:
        status, ctype, text = e.code, e.headers.get("Content-Type"), e.read()
    text = re.sub(r"<(requestId|RequestID)>[^<]*</", r"<\1>X</", text.decode())
    return status, ctype, text


def both(url: str, params: dict[str, str]) -> tuple[int, str, str]:
    direct = call(url, params)
    with through_moto():
        moto = call(url, params)
    assert direct == moto, params
    return direct


def test_answers_and_errors_are_moto_s_own(server):
    # The server is the session's (test_tag_filters uses it too): start from an empty state.
    urllib.request.urlopen(urllib.request.Request(server + "/_emulator/reset", data=b"{}",
                                                  method="POST"), timeout=10).read()
    req = urllib.request.Request(server + "/_emulator/seed-images", method="POST", data=(
        b'{"region": "us-east-1", "count": 3, "lineages": 1, "snapshots_per_image": 1}'),
        headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
    status, ctype, listing = both(server, {"Action": "DescribeImages", "Owner.1": "self"})
    assert status == 200 and "<imagesSet>" in listing and ctype.startswith("text/xml")
    image = re.findall(r"<imageId>(ami-[0-9a-f]+)</imageId>", listing)[0]
    status, _, attribute = both(server, {"Action": "DescribeImageAttribute", "ImageId": image,
                                         "Attribute": "launchPermission"})
    assert status == 200 and f"<imageId>{image}</imageId>" in attribute
    status, _, unknown = both(server, {"Action": "DescribeImages", "ImageId.1": "ami-nope"})
    assert status == 400 and "<Code>InvalidAMIID.NotFound</Code>" in unknown
    status, _, missing = both(server, {"Action": "DeregisterImage",
                                       "ImageId": "ami-0123456789abcdef0"})
    assert status == 400 and "<Code>InvalidAMIID.NotFound</Code>" in missing
    status, _, regions = both(server, {"Action": "DescribeRegions"})
    assert status == 200 and "us-east-1" in regions
    # A change made directly shows through moto's path, and the other way round.
    status, _, _ = call(server, {"Action": "CreateTags", "ResourceId.1": image,
                                 "Tag.1.Key": "k", "Tag.1.Value": "direct"})
    assert status == 200
    with through_moto():
        status, _, _ = call(server, {"Action": "CreateTags", "ResourceId.1": image,
                                     "Tag.1.Key": "m", "Tag.1.Value": "moto"})
    assert status == 200
    _, _, tagged = both(server, {"Action": "DescribeImages", "ImageId.1": image})
    assert "<value>direct</value>" in tagged and "<value>moto</value>" in tagged


def test_only_signed_ec2_posts_to_the_root_go_direct():
    from ami_emulator.direct_ec2 import is_ec2_query
    base = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_AUTHORIZATION": AUTH}
    assert is_ec2_query(base)
    assert not is_ec2_query({**base, "REQUEST_METHOD": "GET"})
    assert not is_ec2_query({**base, "PATH_INFO": "/moto-api/reset"})
    assert not is_ec2_query({**base, "HTTP_AUTHORIZATION": AUTH.replace("/ec2/", "/kms/")})
    assert not is_ec2_query({k: v for k, v in base.items() if k != "HTTP_AUTHORIZATION"})
