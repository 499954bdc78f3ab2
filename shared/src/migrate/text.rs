//! The plan as people read it: `amictl migrate` without `--yes` prints exactly this (the
//! dry run is the plan printed), `--json` prints the [`MigrationPlan`] itself.

use std::fmt::Write as _;

use super::plan::{AddressStep, ImageStep, MigrationPlan, SourceAfter};

/// One line per step, in the order they are applied.
pub fn render(plan: &MigrationPlan) -> String {
    let l = &plan.launch;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Move {} ({}) to {} in {} — migration {}",
        plan.source, plan.from_zone, l.zone, l.region, plan.token
    );
    let image = match &plan.image {
        ImageStep::Reuse {
            image,
            age_seconds,
            consistency,
        } => {
            format!(
                "reuse {image} ({consistency}, {} min old)",
                age_seconds / 60
            )
        }
        ImageStep::Create { name, reboot: true } => {
            format!("make {name}, rebooting {}", plan.source)
        }
        ImageStep::Create {
            name,
            reboot: false,
        } => {
            format!("make {name} ({} is stopped: no reboot needed)", plan.source)
        }
    };
    let _ = writeln!(s, "  1. image     {image}");
    match &plan.copy {
        Some(c) => {
            let key = match (&c.kms_key, c.encrypted) {
                (Some(k), _) => format!("encrypted with {k}"),
                (None, true) => format!("encrypted with the default EBS key of {}", c.to),
                (None, false) => "not encrypted".to_owned(),
            };
            let _ = writeln!(s, "  2. copy      to {} through replicate, {key}", c.to);
        }
        None => {
            let _ = writeln!(s, "  2. copy      none (same region)");
        }
    }
    let _ = writeln!(
        s,
        "  3. launch    {} in {}, subnet {} ({})",
        l.instance_type, l.zone, l.subnet.id, l.subnet_why
    );
    let groups: Vec<String> = l
        .security_groups
        .iter()
        .map(|g| format!("{} ({})", g.id, g.name.as_deref().unwrap_or(&g.group_name)))
        .collect();
    let _ = writeln!(
        s,
        "               security groups {} — {}",
        groups.join(", "),
        l.security_groups_why
    );
    let _ = writeln!(
        s,
        "               instance profile {}, key pair {}, placement group {}",
        l.instance_profile.as_deref().unwrap_or("none"),
        l.key_name.as_deref().unwrap_or("none"),
        l.placement_group.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        s,
        "               metadata: tokens {}, hop limit {}, endpoint {}; monitoring {}; user data {}",
        l.metadata.http_tokens,
        l.metadata.hop_limit,
        if l.metadata.endpoint_enabled { "enabled" } else { "disabled" },
        if l.monitoring { "detailed" } else { "basic" },
        if l.user_data { "replayed" } else { "not replayed" }
    );
    for v in &l.volumes {
        let perf = [
            v.iops.map(|i| format!("{i} IOPS")),
            v.throughput.map(|t| format!("{t} MiB/s")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let key = match (&v.kms_key, v.encrypted) {
            (Some(k), true) => format!("encrypted ({k})"),
            (None, true) => "encrypted (default key)".to_owned(),
            _ => "not encrypted".to_owned(),
        };
        let _ = writeln!(
            s,
            "               volume {} {} {} GiB{}{}, {key}",
            v.device,
            v.volume_type,
            v.size_gib,
            if perf.is_empty() { "" } else { " " },
            perf
        );
    }
    let _ = writeln!(
        s,
        "               {} tags, with {}={}",
        l.tags.len(),
        super::MIGRATED_FROM,
        plan.source
    );
    let _ = writeln!(
        s,
        "  4. wait      until it is running with both status checks ok"
    );
    let source = match plan.source_after {
        SourceAfter::Keep => format!(
            "{} keeps running (--stop-source stops it after step 4)",
            plan.source
        ),
        SourceAfter::StopWhenHealthy => {
            format!("{} is stopped after step 4 (never terminated)", plan.source)
        }
    };
    let _ = writeln!(s, "  5. source    {source}");
    let address = match &plan.address {
        AddressStep::None => "no Elastic IP".to_owned(),
        AddressStep::Report(e) => format!(
            "Elastic IP {} ({}) stays with {} (--move-eip moves it)",
            e.public_ip, e.allocation_id, plan.source
        ),
        AddressStep::Move(e) => format!(
            "Elastic IP {} moves to the new instance after step 4",
            e.public_ip
        ),
    };
    let _ = writeln!(s, "  6. address   {address}");
    if let Some(ip) = &plan.private_ip {
        let _ = writeln!(
            s,
            "               private IP {ip} is not kept: the new instance gets one in {}",
            l.subnet.id
        );
    }
    for n in &plan.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    s
}
