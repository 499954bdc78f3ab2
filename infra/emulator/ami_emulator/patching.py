"""Tiny helper to replace handlers on moto's EC2Response class at start-up.

moto dispatches an EC2 Query action to the EC2Response method named after the
action (CreateImage -> create_image); replacing or adding that method is the
narrowest way to change one action without forking moto.
"""
from __future__ import annotations

from typing import Callable

from moto.ec2.responses import EC2Response

ORIGINALS: dict[str, Callable] = {}


def handler(action_method: str):
    """Decorator: install fn as EC2Response.<action_method>; keep the original."""

    def deco(fn):
        if action_method not in ORIGINALS and hasattr(EC2Response, action_method):
            ORIGINALS[action_method] = getattr(EC2Response, action_method)
        setattr(EC2Response, action_method, fn)
        from .dispatch_cache import forget_method_names

        forget_method_names()  # moto's cached list of handlers must see this one
        return fn

    return deco


def original(action_method: str) -> Callable:
    return ORIGINALS[action_method]
