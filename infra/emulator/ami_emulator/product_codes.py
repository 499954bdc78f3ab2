"""Billing product codes on images (ProductCode, set through the control API).

moto keeps `Ami.product_codes` as a set of plain ids and has no way to add one to an
image made by CreateImage/CopyImage. AWS images from the Marketplace or with a
Windows/RHEL billing product carry them, and the suite must refuse to copy such an
image when another account shared it (AWS-NOTES: "AMIs with a billing product code
shared from another account cannot be copied"). moto's set of ids stays the record
(its `product-code` filter and DescribeImageAttribute keep working); the types are
kept beside it and DescribeImages serializes both members.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from moto.ec2.models.amis import Ami

from . import state

TYPES = ("devpay", "marketplace")


class ProductCode(NamedTuple):
    product_code_id: str
    product_code_type: str = "marketplace"


def _serialized_codes(ami: Any) -> list[dict[str, str]]:
    """DescribeImages' ProductCodes: ids from moto's set, types from our record."""
    types = getattr(ami, "_emu_product_code_types", {})
    return [{"ProductCodeId": c, "ProductCodeType": types.get(c, "marketplace")}
            for c in sorted(ami.product_codes)]


def install() -> None:
    # moto's serializer would read Ami.product_codes (plain ids) as structures and
    # emit nothing; an explicit alias points ProductCodes at the full entries.
    Ami.emu_product_codes = property(_serialized_codes)
    Ami.Meta = type("Meta", (), {"serialization_aliases": {"ProductCodes": "emu_product_codes"}})


def parse(codes: Any) -> list[ProductCode]:
    """Control-API body -> codes; ValueError names the bad entry and the fix."""
    if not isinstance(codes, list) or not codes:
        raise ValueError('product_codes must be a non-empty list of '
                         '{"ProductCodeId": "...", "ProductCodeType": "marketplace"}')
    out = []
    for c in codes:
        if not isinstance(c, dict) or not isinstance(c.get("ProductCodeId"), str) \
                or not c["ProductCodeId"]:
            raise ValueError(f"product code {c!r} needs a non-empty string ProductCodeId")
        ctype = c.get("ProductCodeType", "marketplace")
        if ctype not in TYPES:
            raise ValueError(f"ProductCodeType {ctype!r} is not one of {list(TYPES)}")
        out.append(ProductCode(c["ProductCodeId"], ctype))
    return out


def set_codes(image_id: str, codes: list[ProductCode], account: str | None = None,
              region: str | None = None) -> dict[str, Any] | None:
    """Attach codes to the image (in its owner's backend, so every account that can
    see it sees them). Returns where it was found, or None if no such image."""
    with state.LOCK:
        for acc, reg, backend in state.iter_ec2_backends():
            if (account and acc != account) or (region and reg != region):
                continue
            ami = backend.amis.get(image_id)
            if ami is not None:
                ami.product_codes = {c.product_code_id for c in codes}
                ami._emu_product_code_types = {c.product_code_id: c.product_code_type
                                               for c in codes}
                return {"image_id": image_id, "account": acc, "region": reg,
                        "product_codes": [{"ProductCodeId": c.product_code_id,
                                           "ProductCodeType": c.product_code_type}
                                          for c in codes]}
    return None
