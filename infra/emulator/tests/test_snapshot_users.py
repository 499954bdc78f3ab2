"""The snapshot-users index behind DeleteAssociatedSnapshots (snapshot_users.py) and the
cached moto dispatch answers (dispatch_cache.py): same answers as the scans they replace;
the GIL switch interval (scheduling.py)."""
import sys
from types import SimpleNamespace

# conftest puts the emulator's package on the path.
from ami_emulator import dispatch_cache, patching, snapshot_users
from ami_emulator.snapshot_users import ImageDict

from conftest import launch


def _ami(image_id, *snap_ids):
    snaps = [SimpleNamespace(id=s) for s in snap_ids]
    return SimpleNamespace(id=image_id, ebs_snapshot=snaps[0], root_device_name="/dev/sd0",
                           _emu_bdm=[{"device": f"/dev/sd{i}", "snapshot": s} for i, s in enumerate(snaps)])


def _scan(amis, snap_id):
    return {k for k, a in amis.items() if any(e["snapshot"].id == snap_id for e in a._emu_bdm)}


def test_index_follows_every_way_an_image_comes_and_goes():
    amis = ImageDict({"ami-1": _ami("ami-1", "snap-a", "snap-b")})
    amis["ami-2"] = _ami("ami-2", "snap-b")
    amis.setdefault("ami-3", _ami("ami-3", "snap-c"))
    amis.update({"ami-4": _ami("ami-4", "snap-a")})
    for sid in ("snap-a", "snap-b", "snap-c", "snap-x"):
        assert amis.users.get(sid, set()) == _scan(amis, sid), sid
    assert amis.users["snap-b"] == {"ami-1", "ami-2"}

    amis.pop("ami-1")
    assert amis.users["snap-b"] == {"ami-2"} and amis.users["snap-a"] == {"ami-4"}
    del amis["ami-2"]
    assert "snap-b" not in amis.users  # no user left: the snapshot may go
    assert amis.pop("ami-missing", None) is None
    # Storing again under the same id replaces the old image's snapshots.
    amis["ami-3"] = _ami("ami-3", "snap-d")
    assert "snap-c" not in amis.users and amis.users["snap-d"] == {"ami-3"}
    amis.clear()
    assert amis.users == {} and amis.indexed == {} and len(amis) == 0


def test_changed_mappings_are_indexed_again():
    from ami_emulator.ec2_images import set_bdm

    ami = _ami("ami-1", "snap-a")
    backend = SimpleNamespace(amis=ImageDict())
    ami.ec2_backend = backend
    backend.amis["ami-1"] = ami
    set_bdm(ami, [{"device": "/dev/sda1", "snapshot": SimpleNamespace(id="snap-z")}])
    assert snapshot_users.users_of(backend, "snap-z") == {"ami-1"}
    assert snapshot_users.users_of(backend, "snap-a") == set()
    # A plain dict (no index) answers the same through the scan.
    plain = SimpleNamespace(amis=dict(backend.amis))
    assert snapshot_users.users_of(plain, "snap-z") == {"ami-1"}


def _snapshots(ec2, image_id):
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]]


def _image_with_data_volume(ec2, name):
    iid = launch(ec2)
    vol = ec2.create_volume(Size=5, AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    image_id = ec2.create_image(InstanceId=iid, Name=name, NoReboot=True)["ImageId"]
    return image_id, _snapshots(ec2, image_id)


def test_a_snapshot_is_free_once_its_other_user_is_deregistered(ec2, emu):
    image_id, (root_snap, data_snap) = _image_with_data_volume(ec2, "first")
    sharer = ec2.register_image(Name="sharer", RootDeviceName="/dev/sda1", BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": data_snap}}])["ImageId"]
    # The sharer still uses the data snapshot through its registered mapping.
    resp = ec2.deregister_image(ImageId=sharer, DeleteAssociatedSnapshots=True)
    assert {r["SnapshotId"]: r["ReturnCode"] for r in resp["DeleteSnapshotResults"]} == \
        {data_snap: "client-error"}
    # With the sharer gone, the first image's deregistration deletes both snapshots.
    resp = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert {r["SnapshotId"]: r["ReturnCode"] for r in resp["DeleteSnapshotResults"]} == \
        {root_snap: "success", data_snap: "success"}
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert root_snap not in left and data_snap not in left


def test_seeded_images_delete_their_own_snapshots_after_a_reset(ec2, emu):
    # Reset makes new backends: the index must be there for them too.
    emu.control("POST", "/reset")
    emu.control("POST", "/seed-images", {"region": "us-east-1", "count": 3, "lineages": 1,
                                         "snapshots_per_image": 2, "slot_start": "2026-01-01T00:00:00Z",
                                         "slot_step_seconds": 3600})
    images = ec2.describe_images(Owners=["self"])["Images"]
    assert len(images) == 3
    for img in images:
        snaps = {b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]}
        resp = ec2.deregister_image(ImageId=img["ImageId"], DeleteAssociatedSnapshots=True)
        assert {r["SnapshotId"]: r["ReturnCode"] for r in resp["DeleteSnapshotResults"]} == \
            {s: "success" for s in snaps}
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []


def test_cached_method_names_see_a_handler_installed_later():
    from moto.core import responses
    from moto.ec2.responses import EC2Response

    dispatch_cache.install()
    before = responses.method_names_from_class(EC2Response)
    assert "describe_images" in before and "zz_emulator_test_action" not in before
    assert responses.method_names_from_class(EC2Response) is before  # cached

    def zz_emulator_test_action(self):
        return None

    try:
        patching.handler("zz_emulator_test_action")(zz_emulator_test_action)
        assert "zz_emulator_test_action" in responses.method_names_from_class(EC2Response)
    finally:
        delattr(EC2Response, "zz_emulator_test_action")
        dispatch_cache.forget_method_names()
    import moto.backends

    assert "ec2" in moto.backends.list_of_moto_modules()


def test_switch_interval_is_short_and_never_raised():
    from ami_emulator import scheduling

    saved = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # CPython's default
        scheduling.install()
        assert sys.getswitchinterval() <= scheduling.SWITCH_INTERVAL_SECONDS
        sys.setswitchinterval(0.0001)  # someone chose shorter: kept
        scheduling.install()
        assert abs(sys.getswitchinterval() - 0.0001) < 1e-9
    finally:
        sys.setswitchinterval(saved)


def test_cached_attribute_names_are_moto_s_own():
    # Every member of EC2's Image shape, as the serializer asks it: the cached answer is
    # the one moto computes, and an object with its own Meta is never cached.
    from moto.core.serialize import AttributePickerContext, XFormedAttributePicker
    from moto.core.utils import get_service_model

    dispatch_cache.install()
    service = get_service_model("ec2")
    image = service.shape_for("Image")
    picker = XFormedAttributePicker()

    class Ami:
        pass

    class Meta:
        serialization_aliases = {"ImageId": "id"}

    for obj in (Ami(), {"ImageId": "ami-1"}):
        for key, member in image.members.items():
            member.parent = image  # what the serializer sets before asking
            ctx = AttributePickerContext(obj=obj, key=key, shape=member, service_model=service)
            want = tuple(dispatch_cache.original_possible_keys(picker, ctx))
            assert picker.get_possible_keys(ctx) == want, key
            assert picker.get_possible_keys(ctx) == want, key  # from the cache
    own = Ami()
    own.Meta = Meta
    ctx = AttributePickerContext(obj=own, key="ImageId", shape=image.members["ImageId"],
                                 service_model=service)
    assert dispatch_cache.alias_cache_key(ctx) is None
    assert picker.get_possible_keys(ctx)[0] == "id"


def test_cached_transformer_choice_is_the_first_matching_path():
    from moto.ec2.responses import EC2Response

    dispatch_cache.install()
    table = EC2Response.RESPONSE_KEY_PATH_TO_TRANSFORMER
    paths = [f"response.{p}" for p in table] + ["response.Images.Image.Name", "x.Nothing"]
    for path in paths:
        want = next((t for p, t in table.items() if path.endswith(p)), None)
        assert dispatch_cache.transform_for(table, path) is want, path
        assert dispatch_cache.transform_for(table, path) is want, path  # cached
    assert dispatch_cache.transform_for({"Name": str.upper}, "a.Name") is str.upper
