//! Helpers that several test files used word for word: the current time, a set of ids,
//! an image's tag, and an image's state read and awaited on the emulator
//! ([`describe`], [`wait_state`]). Helpers bound to one file's scenario (its account and
//! region constants) stay in that file.

use std::collections::BTreeSet;
use std::time::Duration;

use ami_sim::Emulator;
use anyhow::{bail, Context as _};
use aws_sdk_ec2::types::Image;
use time::OffsetDateTime;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The value of `image`'s tag `k`.
pub fn tag<'a>(image: &'a Image, k: &str) -> Option<&'a str> {
    image
        .tags()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value())
}

/// Image `id` in `region`, `None` once EC2 no longer knows it (`InvalidAMIID.NotFound`).
pub async fn describe(emu: &Emulator, region: &str, id: &str) -> anyhow::Result<Option<Image>> {
    let out = emu.ec2(region).describe_images().image_ids(id).send().await;
    match out {
        Ok(o) => Ok(o.images().first().cloned()),
        Err(e) if format!("{e:?}").contains("NotFound") => Ok(None),
        Err(e) => Err(e).context("DescribeImages"),
    }
}

/// Ticks the emulator's clock until image `id` is in state `want` (at most 50 ticks).
pub async fn wait_state(emu: &Emulator, region: &str, id: &str, want: &str) -> anyhow::Result<()> {
    for _ in 0..50 {
        emu.tick()?;
        if describe(emu, region, id)
            .await?
            .and_then(|i| i.state().map(|s| s.as_str().to_owned()))
            .as_deref()
            == Some(want)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{id} in {region} never became {want}")
}
