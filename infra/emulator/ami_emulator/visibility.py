"""Which images an account can see in a region, across accounts.

moto keeps each account's images in that account's backend and only ever looks
there, so an image shared with (or made public to) another account is invisible to
it. AWS shows an account its own images plus public ones plus those whose launch
permissions name it (or its organization/OU, not modelled here).
"""
from __future__ import annotations

from typing import Any, Iterable

from . import state


def launchable_by(ami: Any, account: str) -> bool:
    if ami.owner_id == account:
        return True
    for lp in ami.launch_permissions:
        if lp.get("Group") == "all" or lp.get("UserId") == account:
            return True
    return False


def visible_images(account: str, region: str) -> Iterable[Any]:
    """Own images first, then images shared from other accounts' backends."""
    own = state.ec2_backend(account, region)
    yield from list(own.amis.values())
    for other_account, other_region, backend in state.iter_ec2_backends():
        if other_account == account or other_region != region:
            continue
        for ami in list(backend.amis.values()):
            if ami.state != "disabled" and launchable_by(ami, account):
                yield ami


def find_image(account: str, region: str, image_id: str) -> Any | None:
    for ami in visible_images(account, region):
        if ami.id == image_id:
            return ami
    return None
