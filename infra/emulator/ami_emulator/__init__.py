"""Extensions that turn moto's EC2 server into a faithful-enough AMI emulator.

Each module patches one concern onto moto at start-up (see install()); none of
moto's code is copied. The launcher calls install() once before serving.
"""


def install() -> None:
    # Import order matters only in that every module registers its own patches.
    from . import (  # noqa: F401
        accounts,
        block_public_access,
        bulk,
        control,
        dispatch_cache,
        tag_filters,
        ec2_images,
        copy,
        health,
        ebs_keys,
        instances,
        launch_templates,
        lifecycle,
        pagination,
        organizations,
        product_codes,
        recycle_bin,
        deregister,
        disabled_images,
        references,
        resolve_ssm,
        scheduling,
        sharing,
        snapshot_lock,
        snapshot_users,
        ssm_commands,
        ssm_managed,
        ssm_parameters,
        sts_trust,
        tag_events,
        timeline,
        usage_reports,
    )
    from . import (addresses, describe_errors, instance_status, instance_stop,  # issue 20
                   placement_groups, run_instances)

    for mod in (scheduling, dispatch_cache, tag_filters, snapshot_users, ec2_images, health, ebs_keys, copy, pagination, deregister, references, sharing, tag_events, bulk,
                product_codes, instances, disabled_images, snapshot_lock, block_public_access, control,
                recycle_bin, ssm_parameters, launch_templates, resolve_ssm, ssm_managed, ssm_commands,
                timeline, organizations, sts_trust, usage_reports,
                # RunInstances wrappers: run_instances last (outermost), after health
                placement_groups, addresses, describe_errors, instance_status, instance_stop, run_instances):
        mod.install()
    # The ticker (lifecycle.start_ticker) is started by the launcher once it serves: a
    # zygote imports and installs, then forks, and must not have started a thread.
