"""AssociateAddress moving an Elastic IP between instances.

moto already refuses to move an address that is associated with another instance or
network interface unless `AllowReassociation=true` (`Resource.AlreadyAssociated`), as
EC2 has been seen to answer (the API reference's wording has varied: its current text
calls reassociation automatic; clients report the refusal without the flag). Two gaps:
* the refusal named the public IP ("Resource 1.2.3.4 is already associated."); EC2
  names the allocation and its association: "resource eipalloc-… is already associated
  with associate-id eipassoc-…", followed here by the instance and the fix;
* after a move, the instance the address left still reported it as its
  `PublicIpAddress`. It no longer does.
"""
from __future__ import annotations

from typing import Any

from moto.ec2.responses import EC2Response

from . import state
from .errors import Ec2Error


def _address(self) -> Any | None:
    backend = self.ec2_backend
    allocation_id, public_ip = self._get_param("AllocationId"), self._get_param("PublicIp")
    if allocation_id:
        return next((a for a in backend.addresses if a.allocation_id == allocation_id), None)
    if public_ip:
        return next((a for a in backend.addresses if a.public_ip == public_ip), None)
    return None


def _wrap(previous):
    def associate_address(self):
        with state.LOCK:
            eip = _address(self)  # unknown ids: moto's errors
            old_eni = eip.eni if eip is not None else None
            instance_id = self._get_param("InstanceId")
            eni_id = self._get_param("NetworkInterfaceId")
            elsewhere = eip is not None and (
                (eip.instance is not None and eip.instance.id != instance_id)
                or (old_eni is not None and eni_id and old_eni.id != eni_id)
                or (eip.instance is None and old_eni is not None and instance_id
                    and getattr(old_eni.instance, "id", None) != instance_id))
            if elsewhere and self._get_param("AllowReassociation") is not True:
                holder = eip.instance.id if eip.instance is not None else old_eni.id
                raise Ec2Error(
                    "Resource.AlreadyAssociated",
                    f"resource {eip.allocation_id or eip.public_ip} is already associated with "
                    f"associate-id {eip.association_id} ({holder}): pass "
                    "AllowReassociation=true to move it, or disassociate it first.")
            result = previous(self)
            if old_eni is not None and eip.eni is not old_eni and old_eni.public_ip == eip.public_ip:
                old_eni.public_ip = None
            return result

    return associate_address


def install() -> None:
    EC2Response.associate_address = _wrap(EC2Response.associate_address)
