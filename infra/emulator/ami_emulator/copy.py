"""CopyImage as EC2 does it (called in the DESTINATION region with SourceRegion).

moto ignores ClientToken, CopyImageTags, TagSpecifications, Encrypted and KmsKeyId,
invents a 15 GiB snapshot, does not record SourceImageId/SourceImageRegion, is
`available` at once, can only copy the caller's own images and has no limit on
concurrent copies. EC2:
* ClientToken: same token + same source -> same image id, no second copy
  (a different source with a used token -> IdempotentParameterMismatch);
* CopyImageTags=true copies the source's user tags; TagSpecifications apply
  (image and snapshot);
* Encrypted+KmsKeyId re-encrypt the copy's snapshots with that key (alias names/ARNs
  resolved to the key ARN in the destination region); Encrypted without KmsKeyId uses
  the destination's default EBS key (ebs_keys.py); an encrypted source stays
  encrypted (same region: same key; other region: the default key there);
* the copy records SourceImageId/SourceImageRegion and starts `pending`;
* at most N concurrent pending copies per destination region (300 in AWS; here
  `copy_cap`, default unlimited) -> ResourceLimitExceeded (HTTP 400);
* images shared with the caller by another account can be copied;
* SnapshotCopyCompletionDurationMinutes (a time-based copy) is 15 to 2880 minutes in
  15-minute steps, else InvalidParameterValue; it is recorded on the copy's snapshots
  (DescribeSnapshots `CompletionDurationMinutes`, as EC2 reports it for time-based
  copies). The copy's pace is still `pending_seconds`: a test makes a copy late by
  keeping it pending past its duration.
"""
from __future__ import annotations

from moto.core.responses import ActionResult
from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id

from . import ebs_keys, lifecycle, state, visibility
from .ec2_images import check_ami_quota, check_name, drop_synthetic_snapshot, new_snapshot, set_bdm, split_tag_specs
from .errors import Ec2Error, check_image_ids, image_not_found
from .patching import handler


def resolve_kms_key(account: str, region: str, key_id: str | None) -> str | None:
    """Alias name/ARN, key id or key ARN -> key ARN (as EC2 records it)."""
    if not key_id:
        return None
    try:
        from moto.kms.models import kms_backends

        return kms_backends[account][region].describe_key(key_id).arn
    except Exception:
        # Unknown to moto's KMS (e.g. a test passes a literal ARN): record as given.
        return key_id


def pending_copies(account: str, region: str) -> int:
    n = 0
    backend = state.ec2_backend(account, region)
    for (acc, reg, image_id) in list(state.PENDING):
        if acc == account and reg == region:
            ami = backend.amis.get(image_id)
            if ami is not None and getattr(ami, "source_image_id", None):
                n += 1
    return n


COMPLETION_STEP, COMPLETION_MAX = 15, 2880


def check_completion(value) -> int | None:
    """SnapshotCopyCompletionDurationMinutes as EC2 takes it: 15-minute increments, from
    15 minutes to 48 hours."""
    if value is None:
        return None
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        minutes = -1
    if minutes < COMPLETION_STEP or minutes > COMPLETION_MAX or minutes % COMPLETION_STEP:
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({value}) for parameter SnapshotCopyCompletionDurationMinutes is "
                       f"invalid. Specify a completion duration from {COMPLETION_STEP} to "
                       f"{COMPLETION_MAX} minutes, in {COMPLETION_STEP}-minute increments.")
    return minutes


def copy_image(self):
    source_image_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    name = self._get_param("Name")
    description = self._get_param("Description")
    token = self._get_param("ClientToken")
    copy_tags = state.truthy(self._get_param("CopyImageTags", False))
    encrypted = state.truthy(self._get_param("Encrypted", False))
    kms_key_id = self._get_param("KmsKeyId")
    tag_specs = self._get_param("TagSpecifications", [])
    completion = check_completion(self._get_param("SnapshotCopyCompletionDurationMinutes"))
    self.error_on_dryrun()

    account, region = self.current_account, self.region
    with state.LOCK:
        if token:
            seen = state.COPY_TOKENS.get((account, region, token))
            if seen:
                if seen[:2] == (source_region, source_image_id):
                    return ActionResult({"ImageId": seen[2]})
                raise Ec2Error("IdempotentParameterMismatch",
                               "The client token has already been used with different parameters.")
        cap = state.SETTINGS.get("copy_cap")
        if cap is not None and pending_copies(account, region) >= int(cap):
            raise Ec2Error("ResourceLimitExceeded",
                           f"You have reached the limit of {cap} concurrent AMI copies in {region}.")

        check_image_ids(source_image_id)
        source = visibility.find_image(account, source_region, source_image_id)
        if source is None:
            raise image_not_found(source_image_id)
        if source.owner_id != account and source.product_codes:
            # AWS: "You can't copy an AMI with an associated billingProduct code that was
            # shared with you from another account." The docs name no error code; ours.
            raise Ec2Error("InvalidRequest",
                           f"The image '{source_image_id}' has a billing product code and was "
                           "shared by another account: it cannot be copied. Launch an instance "
                           "from it and create an image of that instance instead.")
        tags = split_tag_specs(tag_specs)
        check_name(self.ec2_backend, name)  # names are unique per account+region for copies too
        check_ami_quota(self.ec2_backend)
        backend = self.ec2_backend
        # Encrypted=true without KmsKeyId: the destination's default EBS key (aws/ebs
        # unless changed). An encrypted source copied to another region cannot keep its
        # key (keys are regional): the destination's default key too.
        key_arn = None
        if encrypted:
            key_arn = resolve_kms_key(account, region, kms_key_id) if kms_key_id \
                else ebs_keys.default_key_arn(backend)

        ami_id = random_ami_id()
        ami = Ami(backend, ami_id, source_ami=source, name=name, description=description,
                  root_device_name=source.root_device_name)
        ami.root_device_type = source.root_device_type
        ami.creation_date = state.creation_clock()
        drop_synthetic_snapshot(backend, ami)
        src_entries = getattr(source, "_emu_bdm", None) or [
            {"device": source.root_device_name, "snapshot": source.ebs_snapshot,
             "size": 15, "volume_type": "standard", "delete_on_termination": True}]
        entries = []
        for e in src_entries:
            src_snap = e["snapshot"]
            # An encrypted source stays encrypted; Encrypted=true (re)encrypts with the key.
            snap_encrypted = encrypted or bool(src_snap.encrypted)
            snap_key = key_arn
            if snap_encrypted and not snap_key:
                snap_key = src_snap.kms_key_id if source_region == region \
                    else ebs_keys.default_key_arn(backend)
            snap = new_snapshot(backend, ami_id, e["size"], snap_encrypted, snap_key,
                                f"Copied for DestinationAmi {ami_id} from SourceAmi "
                                f"{source_image_id} for SourceSnapshot {src_snap.id}",
                                tags["snapshot"])
            if completion is not None:
                snap.completion_duration_minutes = completion
            entries.append({**e, "snapshot": snap})
        set_bdm(ami, entries)
        ami.source_image_id = source_image_id
        ami.source_image_region = source_region
        # User tags are copied only on request and only from the caller's own image.
        if copy_tags and source.owner_id == account:
            src_backend = state.ec2_backend(source.owner_id, source_region)
            for k, v in dict(src_backend.tags.get(source.id, {})).items():
                if not k.startswith("aws:"):
                    ami.add_tag(k, v)
        for k, v in tags["image"].items():
            ami.add_tag(k, v)
        backend.amis[ami_id] = ami
        if token:
            state.COPY_TOKENS[(account, region, token)] = (source_region, source_image_id, ami_id)
        lifecycle.mark_pending(account, region, ami)
    return ActionResult({"ImageId": ami_id})


def install() -> None:
    handler("copy_image")(copy_image)
