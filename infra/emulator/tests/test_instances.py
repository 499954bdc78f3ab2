"""RunInstances merges the image's block device mapping with the request's."""
from conftest import make_image


def devices(ec2, instance_id):
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    out = {}
    for m in inst["BlockDeviceMappings"]:
        vol = ec2.describe_volumes(VolumeIds=[m["Ebs"]["VolumeId"]])["Volumes"][0]
        out[m["DeviceName"]] = vol["Size"]
    return inst, out


def run(ec2, image_id, **kw):
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                             **kw)["Instances"][0]["InstanceId"]


def test_extra_mapping_keeps_the_image_root_volume(ec2, emu):
    image_id = make_image(ec2, emu, "base-image")
    root = ec2.describe_images(ImageIds=[image_id])["Images"][0]["RootDeviceName"]
    iid = run(ec2, image_id, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3"}}])
    inst, devs = devices(ec2, iid)
    assert inst["RootDeviceName"] == root
    assert set(devs) == {root, "/dev/sdf"} and devs["/dev/sdf"] == 50
    # an image of that instance has a root volume (and the data volume)
    img_id = ec2.create_image(InstanceId=iid, Name="from-merged", NoReboot=True)["ImageId"]
    img = ec2.describe_images(ImageIds=[img_id])["Images"][0]
    assert img["RootDeviceName"] == root
    assert {m["DeviceName"] for m in img["BlockDeviceMappings"]} == {root, "/dev/sdf"}


def test_request_overrides_and_no_device(ec2, emu):
    image_id = make_image(ec2, emu, "two-vol-image")
    src = run(ec2, image_id, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 20}}])
    two = ec2.create_image(InstanceId=src, Name="two-vols", NoReboot=True)["ImageId"]
    root = ec2.describe_images(ImageIds=[two])["Images"][0]["RootDeviceName"]
    # no mappings: every image device, image sizes
    _, devs = devices(ec2, run(ec2, two))
    assert set(devs) == {root, "/dev/sdg"} and devs["/dev/sdg"] == 20
    # NoDevice drops an image device; a bigger root wins over the image's size
    _, devs = devices(ec2, run(ec2, two, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdg", "NoDevice": ""},
        {"DeviceName": root, "Ebs": {"VolumeSize": 30}}]))
    assert devs == {root: 30}


def test_registered_root_device_is_kept_and_not_doubled(ec2, emu):
    base = ec2.register_image(Name="base-al2023", RootDeviceName="/dev/xvda",
                              Architecture="x86_64")["ImageId"]
    assert ec2.describe_images(ImageIds=[base])["Images"][0]["RootDeviceName"] == "/dev/xvda"
    _, devs = devices(ec2, run(ec2, base, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20}}]))
    assert devs == {"/dev/xvda": 8, "/dev/sdf": 20}
