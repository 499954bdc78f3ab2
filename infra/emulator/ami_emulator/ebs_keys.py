"""The account's default EBS key (GetEbsDefaultKmsKeyId) as AWS has it.

AWS: every account+region has a default key for EBS encryption, the AWS managed key
`alias/aws/ebs` (created on first use, `KeyManager: AWS` in DescribeKey) unless
ModifyEbsDefaultKmsKeyId chose a customer key; ResetEbsDefaultKmsKeyId goes back to
it. An encrypted copy/volume without a KmsKeyId uses that default key and its
snapshots record the key ARN. moto creates the `alias/aws/ebs` key lazily but as a
CUSTOMER key, and does not serve GetEbsDefaultKmsKeyId/ResetEbsDefaultKmsKeyId.
"""
from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.elastic_block_store import EBSBackend

from . import state
from .patching import handler

AWS_EBS_ALIAS = "alias/aws/ebs"
_orig_create_default = EBSBackend._create_default_encryption_key


def _create_default_encryption_key(self) -> str:
    arn = _orig_create_default(self)
    from moto.kms.models import kms_backends

    key = kms_backends[self.account_id][self.region_name].describe_key(AWS_EBS_ALIAS)
    key.key_manager = "AWS"  # an AWS managed key, as DescribeKey reports it
    key.description = "Default key that protects my EBS volumes when no other key is defined"
    return arn


def default_key_arn(backend: Any) -> str:
    """The key ARN EBS uses when asked to encrypt without a key (created lazily)."""
    if not backend.default_kms_key_id:
        backend._create_default_encryption_key()
    return backend.default_kms_key_id


def get_ebs_default_kms_key_id(self):
    self.error_on_dryrun()
    with state.LOCK:
        # Unchanged default: AWS answers with the alias of its managed key.
        custom = getattr(self.ec2_backend, "_emu_custom_default_key", False)
        if not custom:
            default_key_arn(self.ec2_backend)  # make sure DescribeKey(alias/aws/ebs) works
            return ActionResult({"KmsKeyId": AWS_EBS_ALIAS})
        return ActionResult({"KmsKeyId": self.ec2_backend.default_kms_key_id})


def modify_ebs_default_kms_key_id(self):
    self.error_on_dryrun()
    key_id = self._get_param("KmsKeyId")
    with state.LOCK:
        arn = self.ec2_backend.modify_ebs_default_kms_key_id(key_id)
        self.ec2_backend._emu_custom_default_key = True
    return ActionResult({"KmsKeyId": arn})


def reset_ebs_default_kms_key_id(self):
    self.error_on_dryrun()
    with state.LOCK:
        self.ec2_backend._emu_custom_default_key = False
        self.ec2_backend.default_kms_key_id = ""
        default_key_arn(self.ec2_backend)
    return ActionResult({"KmsKeyId": AWS_EBS_ALIAS})


def install() -> None:
    EBSBackend._create_default_encryption_key = _create_default_encryption_key
    handler("get_ebs_default_kms_key_id")(get_ebs_default_kms_key_id)
    handler("modify_ebs_default_kms_key_id")(modify_ebs_default_kms_key_id)
    handler("reset_ebs_default_kms_key_id")(reset_ebs_default_kms_key_id)
