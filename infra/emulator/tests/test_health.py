"""Status checks: initializing after a CreateImage reboot, impaired on demand."""
from conftest import launch


def _check(ec2, instance):
    out = ec2.describe_instance_status(InstanceIds=[instance], IncludeAllInstances=True)
    (status,) = out["InstanceStatuses"]
    return status["InstanceStatus"]["Status"], status["SystemStatus"]["Status"]


def test_a_createimage_reboot_restarts_the_status_checks_for_reboot_seconds(ec2, emu):
    instance = launch(ec2)
    assert _check(ec2, instance) == ("ok", "ok")
    emu.control("POST", "/config", {"reboot_seconds": 600})
    ec2.create_image(InstanceId=instance, Name="no-reboot", NoReboot=True)
    assert _check(ec2, instance) == ("ok", "ok"), "NoReboot: no reboot"
    ec2.create_image(InstanceId=instance, Name="rebooted")
    assert _check(ec2, instance) == ("initializing", "ok")
    # The simulated clock moves past the reboot: checks pass.
    emu.control("POST", "/config", {"clock_offset_seconds": 601})
    assert _check(ec2, instance) == ("ok", "ok")


def test_an_instance_can_be_told_to_stay_impaired(ec2, emu):
    instance = launch(ec2)
    emu.control("POST", f"/instances/{instance}/health", {"impaired": True})
    assert _check(ec2, instance) == ("impaired", "ok")
    emu.control("POST", f"/instances/{instance}/health", {"impaired": False})
    assert _check(ec2, instance) == ("ok", "ok")
    emu.control("POST", f"/instances/{instance}/health", {"impaired": True})
    emu.control("POST", "/reset")
    instance = launch(ec2)
    assert _check(ec2, instance) == ("ok", "ok")


def test_an_image_from_an_s3_manifest_is_instance_store_backed_and_so_are_its_instances(ec2):
    image = ec2.register_image(Name="from-manifest", ImageLocation="amzn-s3-demo-bucket/image.manifest.xml")["ImageId"]
    assert ec2.describe_images(ImageIds=[image])["Images"][0]["RootDeviceType"] == "instance-store"
    instance = launch(ec2, image_id=image)
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert described["RootDeviceType"] == "instance-store"
    assert ec2.describe_instances(InstanceIds=[launch(ec2)])["Reservations"][0]["Instances"][0]["RootDeviceType"] == "ebs"
