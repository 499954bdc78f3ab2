"""Not-found errors of DescribeKeyPairs / DescribeSecurityGroups / DescribeVpcs in EC2's words.

moto keeps EC2's codes but formats the missing ids as a Python set ("The keypair
'{'ops'}' does not exist.", "VpcID {'vpc-1'} does not exist."). A caller checking what a
launch will use (a migration describes the key pair, groups and VPC first) sees here
what EC2 answers, naming the first missing id:
* `InvalidKeyPair.NotFound` "The key pair '<name>' does not exist"
* `InvalidGroup.NotFound` "The security group '<sg>' does not exist"
* `InvalidVpcID.NotFound` "The vpc ID '<vpc>' does not exist"
"""
from __future__ import annotations

from typing import Any, Callable

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

from .errors import Ec2Error

# handler -> (error code, request parameter, ids the backend knows, message)
CASES: dict[str, tuple[str, str, Callable[[Any], set[str]], str]] = {
    "describe_key_pairs": ("InvalidKeyPair.NotFound", "KeyNames",
                           lambda b: set(b.key_pairs), "The key pair '{}' does not exist"),
    "describe_security_groups": ("InvalidGroup.NotFound", "GroupIds",
                                 lambda b: {g.id for g in b.describe_security_groups()},
                                 "The security group '{}' does not exist"),
    "describe_vpcs": ("InvalidVpcID.NotFound", "VpcIds",
                      lambda b: set(b.vpcs), "The vpc ID '{}' does not exist"),
}


def _wrap(name: str, previous):
    code, param, known, message = CASES[name]

    def handler(self):
        try:
            return previous(self)
        except EC2ClientError as e:
            if getattr(e, "code", None) != code:
                raise
            have = known(self.ec2_backend)
            missing = [i for i in self._get_param(param, []) or [] if i not in have]
            if not missing:
                raise
            raise Ec2Error(code, message.format(missing[0])) from None

    return handler


def install() -> None:
    for name in CASES:
        setattr(EC2Response, name, _wrap(name, getattr(EC2Response, name)))
