//! The record of what the suite granted: the `ami-lifecycle:share-granted` tag(s).
//!
//! Encoding: the grantees (account ids, organization ARNs, OU ARNs, `all`), sorted and
//! separated by single spaces, cut at entry boundaries into values of at most 256
//! characters. The first chunk goes in `ami-lifecycle:share-granted`, the next ones in
//! `ami-lifecycle:share-granted-2`, `-3`, … up to [`MAX_CHUNKS`]. Plain text on purpose:
//! an operator reads it in the console. A chunk that is no longer needed is set to the
//! empty string rather than deleted, so the function needs `ec2:CreateTags` only.
//!
//! 19 account ids fit in one tag; [`MAX_CHUNKS`] tags hold 190, far more than a
//! 256-character share-with value can name without groups.

use crate::model::{Grantee, Tags};
use crate::share_target::ShareTarget;
use crate::tags::{key, split_list};

/// Tag values are at most 256 characters.
pub const TAG_VALUE_MAX: usize = 256;

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

/// Reads the record from an image's tags. Entries that do not parse (a hand edit) are
/// ignored: the suite only ever revokes what it can name.
pub fn read(tags: &Tags) -> Vec<Grantee> {
    let mut out: Vec<Grantee> = Vec::new();
    for n in 1..=MAX_CHUNKS {
        let Some(value) = tags.get(&chunk_key(n)) else {
            break;
        };
        for entry in split_list(value) {
            if let Some(ShareTarget::Grantee(g)) = ShareTarget::parse(entry) {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
    }
    out.sort();
    out
}

/// The record chunks for `grantees`, or `None` when they do not fit in [`MAX_CHUNKS`] tags.
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
        if entry.len() > TAG_VALUE_MAX {
            return None;
        }
        if !current.is_empty() && current.len() + 1 + entry.len() > TAG_VALUE_MAX {
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

/// The tags to write so the image's record says `grantees`; empty when it already does.
/// Chunks beyond the new record that exist on the image are blanked. `None` when the
/// record does not fit.
pub fn tags_for(grantees: &[Grantee], current: &Tags) -> Option<Tags> {
    let chunks = encode(grantees)?;
    let mut out = Tags::new();
    for n in 1..=MAX_CHUNKS {
        let k = chunk_key(n);
        let want = chunks.get(n - 1).map(String::as_str).unwrap_or("");
        let have = current.get(&k).map(String::as_str);
        let needed = match have {
            Some(h) => h != want,
            // An absent chunk means "empty"; an empty first chunk is not worth a write.
            None => !want.is_empty(),
        };
        if needed {
            out.insert(k, want.to_owned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;

    fn acct(n: u64) -> Grantee {
        Grantee::Account(
            AccountId::parse(&format!("{n:012}")).unwrap_or_else(|| panic!("account {n}")),
        )
    }

    const OU: &str = "arn:aws:organizations::111111111111:ou/o-abc123def4/ou-ab12-cdef5678";

    #[test]
    fn round_trips_through_tags() {
        let grantees = vec![
            acct(2),
            Grantee::OrganizationalUnit(OU.into()),
            acct(1),
            Grantee::Public,
        ];
        let tags = tags_for(&grantees, &Tags::new()).unwrap_or_default();
        let mut expected = grantees.clone();
        expected.sort();
        assert_eq!(read(&tags), expected);
        assert_eq!(tags.len(), 1);
        assert!(
            tags_for(&grantees, &tags).is_some_and(|t| t.is_empty()),
            "writing again changes nothing"
        );
    }

    #[test]
    fn long_records_spill_and_shrink_back() {
        let many: Vec<Grantee> = (1..=40).map(acct).collect();
        let tags = tags_for(&many, &Tags::new()).unwrap_or_default();
        assert_eq!(tags.len(), 3, "{tags:?}");
        assert!(tags.values().all(|v| v.len() <= TAG_VALUE_MAX));
        assert_eq!(read(&tags), many);

        let mut current = tags.clone();
        let fewer = vec![acct(7)];
        let update = tags_for(&fewer, &current).unwrap_or_default();
        assert_eq!(
            update.get(&chunk_key(2)).map(String::as_str),
            Some(""),
            "stale chunks are blanked"
        );
        current.extend(update);
        assert_eq!(read(&current), fewer);
    }

    #[test]
    fn an_empty_record_on_an_untagged_image_writes_nothing() {
        assert_eq!(tags_for(&[], &Tags::new()), Some(Tags::new()));
        let mut current = Tags::new();
        current.insert(chunk_key(1), "000000000001".into());
        assert_eq!(
            tags_for(&[], &current)
                .and_then(|t| t.get(&chunk_key(1)).cloned())
                .as_deref(),
            Some("")
        );
    }

    #[test]
    fn too_many_grantees_do_not_fit() {
        let huge: Vec<Grantee> = (1..=500).map(acct).collect();
        assert_eq!(encode(&huge), None);
    }

    #[test]
    fn hand_edited_garbage_is_ignored() {
        let mut tags = Tags::new();
        tags.insert(chunk_key(1), "000000000001 bogus group:x".into());
        assert_eq!(read(&tags), vec![acct(1)]);
    }
}
