//! The record of what the suite granted: the `ami-lifecycle:share-granted` tag(s), sealed.
//!
//! Encoding: the grantees (account ids, organization ARNs, OU ARNs, `all`), sorted and
//! separated by single spaces, cut at entry boundaries into chunks of at most
//! [`ENTRIES_MAX`] characters; each chunk ends with its seal (` v2:…`, a KMS HMAC over
//! deployment, the image's owning account, region, image id, the chunk's key and its
//! entries; ` v1:…` from earlier releases, trusted as [`crate::seal::Legacy`] says:
//! [`crate::seal::Subject::record_chunk`]). The first chunk goes in
//! `ami-lifecycle:share-granted`, the next ones in `ami-lifecycle:share-granted-2`, `-3`, …
//! up to [`MAX_CHUNKS`]. Plain text on purpose: an operator reads it in the console. A
//! chunk that is no longer needed is set to the empty string rather than deleted, so the
//! function needs `ec2:CreateTags` only.
//!
//! **The record decides what the suite revokes**, so it is trusted only where its seal
//! verifies: a chunk written by hand (an account added to have the suite revoke that
//! account's own permissions), moved from another image or edited is ignored for
//! revocation and reported. Chunks are read independently: deleting the first does not
//! make the suite forget the others.
//!
//! 16 account ids fit in one chunk; [`MAX_CHUNKS`] tags hold 160, far more than a
//! 256-character share-with value can name without groups.

use crate::error::CloudResult;
use crate::model::{AccountId, Grantee, ImageId, Region, Tags};
use crate::seal::{Sealer, Subject, V1_PREFIX, VERSION_PREFIX};
use crate::share_target::ShareTarget;
use crate::tags::{key, split_list};

/// Tag values are at most 256 characters.
pub const TAG_VALUE_MAX: usize = 256;

/// The entries of one chunk: what a tag value holds besides ` v2:` and a 44-character seal.
pub const ENTRIES_MAX: usize = TAG_VALUE_MAX - 1 - 48;

/// The most record tags an image carries (`share-granted`, `share-granted-2` … `-10`).
pub const MAX_CHUNKS: usize = 10;

/// The key of the `n`th record chunk (1-based).
pub fn chunk_key(n: usize) -> String {
    if n <= 1 {
        key::SHARE_GRANTED.to_owned()
    } else {
        format!("{}-{n}", key::SHARE_GRANTED)
    }
}

/// One chunk as found on an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub key: String,
    /// The entries as written (space-separated), without the seal.
    pub entries: String,
    pub seal: Option<String>,
}

impl Chunk {
    /// The grantees this chunk names; entries that do not parse are ignored.
    pub fn grantees(&self) -> Vec<Grantee> {
        split_list(&self.entries)
            .filter_map(|e| match ShareTarget::parse(e) {
                Some(ShareTarget::Grantee(g)) => Some(g),
                _ => None,
            })
            .collect()
    }
}

/// Splits a chunk value into its entries and its seal (the last word, when it is one).
fn split_value(value: &str) -> (String, Option<String>) {
    let is_seal = |w: &str| w.starts_with(VERSION_PREFIX) || w.starts_with(V1_PREFIX);
    let trimmed = value.trim();
    match trimmed.rsplit_once(' ') {
        Some((entries, seal)) if is_seal(seal) => {
            (entries.trim().to_owned(), Some(seal.to_owned()))
        }
        _ if is_seal(trimmed) => (String::new(), Some(trimmed.to_owned())),
        _ => (trimmed.to_owned(), None),
    }
}

/// Every non-empty chunk on an image, each read on its own (a missing chunk does not hide
/// the ones after it).
pub fn chunks(tags: &Tags) -> Vec<Chunk> {
    (1..=MAX_CHUNKS)
        .filter_map(|n| {
            let k = chunk_key(n);
            let value = tags.get(&k)?;
            let (entries, seal) = split_value(value);
            (!entries.is_empty()).then_some(Chunk {
                key: k,
                entries,
                seal,
            })
        })
        .collect()
}

/// Whether any chunk names anyone (sealed or not): the image may have grants to look at.
pub fn names_anyone(tags: &Tags) -> bool {
    chunks(tags).iter().any(|c| !c.grantees().is_empty())
}

/// The record as trusted: the grantees of the chunks whose seal verifies, sorted, and a
/// line for each chunk that does not (ignored for revocation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    pub grantees: Vec<Grantee>,
    pub rejected: Vec<String>,
}

/// Reads and verifies the record of an image owned by `owner` (EC2's `OwnerId`).
pub async fn verified(
    sealer: &Sealer,
    deployment: &str,
    owner: Option<&AccountId>,
    region: &Region,
    image: &ImageId,
    tags: &Tags,
) -> CloudResult<Verified> {
    let mut out = Verified::default();
    for chunk in chunks(tags) {
        let subject =
            Subject::record_chunk(deployment, owner, region, image, &chunk.key, &chunk.entries);
        if sealer.verify(&subject, chunk.seal.as_deref()).await? {
            for g in chunk.grantees() {
                if !out.grantees.contains(&g) {
                    out.grantees.push(g);
                }
            }
        } else {
            out.rejected.push(format!(
                "{}={:?} does not carry the suite's seal (written or edited by hand, or copied): ignored, nothing it names is revoked",
                chunk.key,
                crate::values::truncate(&chunk.entries, 80)
            ));
        }
    }
    out.grantees.sort();
    Ok(out)
}

/// The entries of each chunk for `grantees`, or `None` when they do not fit in
/// [`MAX_CHUNKS`] chunks.
pub fn encode(grantees: &[Grantee]) -> Option<Vec<String>> {
    let mut sorted: Vec<String> = {
        let mut g = grantees.to_vec();
        g.sort();
        g.dedup();
        g.iter().map(ToString::to_string).collect()
    };
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for entry in sorted.drain(..) {
        if entry.len() > ENTRIES_MAX {
            return None;
        }
        if !current.is_empty() && current.len() + 1 + entry.len() > ENTRIES_MAX {
            chunks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&entry);
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    (chunks.len() <= MAX_CHUNKS).then_some(chunks)
}

/// The tags to write so the image's record says `grantees`, each chunk sealed; empty when
/// it already does (same entries, and a seal that verifies). Chunks beyond the new record
/// that exist on the image are blanked. `Ok(None)` when the record does not fit. A chunk
/// with a v1 seal is rewritten v2 (the image is `owner`'s).
pub async fn sealed_tags(
    sealer: &Sealer,
    deployment: &str,
    owner: &AccountId,
    region: &Region,
    image: &ImageId,
    grantees: &[Grantee],
    current: &Tags,
) -> CloudResult<Option<Tags>> {
    let Some(wanted) = encode(grantees) else {
        return Ok(None);
    };
    let mut out = Tags::new();
    for n in 1..=MAX_CHUNKS {
        let k = chunk_key(n);
        let want = wanted.get(n - 1).map(String::as_str).unwrap_or("");
        let (have, seal) = match current.get(&k) {
            Some(v) => {
                let (entries, seal) = split_value(v);
                (Some(entries), seal)
            }
            None => (None, None),
        };
        let subject = Subject::record_chunk(deployment, Some(owner), region, image, &k, want);
        let needed = match have {
            // An empty chunk needs no seal: it names no one.
            Some(h) if h == want => {
                // A v1 seal is rewritten v2: it does not name the account.
                let v2 = seal
                    .as_deref()
                    .is_some_and(|s| s.starts_with(VERSION_PREFIX));
                !want.is_empty() && (!v2 || !sealer.verify(&subject, seal.as_deref()).await?)
            }
            Some(_) => true,
            // An absent chunk means "empty"; an empty chunk is not worth a write.
            None => !want.is_empty(),
        };
        if needed {
            let value = if want.is_empty() {
                String::new()
            } else {
                format!("{want} {}", sealer.seal(&subject).await?)
            };
            out.insert(k, value);
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
