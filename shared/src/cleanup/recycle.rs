//! Whether a Recycle Bin retention rule keeps what cleanup deletes restorable, and until when.
//!
//! Pure: [`covering_rule`] takes the region's [`RetentionRule`]s (read once per region by
//! the runner) and a resource's [`TagPrint`] and names the rule that retains it, if any;
//! [`coverage`] words it for the report. The rules, as the Recycle Bin documents them:
//! - a **tag-level** rule (it has `ResourceTags`) retains a resource of its type that
//!   carries at least ONE of those tags (key and value);
//! - a **region-level** rule (no `ResourceTags`) retains every resource of its type in the
//!   region, except those carrying one of its `ExcludeResourceTags`;
//! - only an `available` rule retains; a deregistered AMI and its deleted snapshots are
//!   judged separately (`EC2_IMAGE` and `EBS_SNAPSHOT` rules), and restoring an AMI needs
//!   its snapshots back too.
//!
//! When several rules match, the longest retention is named (the resource stays restorable
//! at least that long). Where the documentation leaves a case open the report errs towards
//! "deletion is final", never towards a restore that may not exist: a rule tag without a
//! value matches only an empty value, an exclusion tag without a value excludes any value.
//!
//! Tags are kept as 64-bit hashes ([`TagPrint`]) so the inventory stays small; a collision
//! can only misname coverage in the report, never change what is deleted.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use time::{Duration, OffsetDateTime};

use crate::model::Tags;
use crate::ports::{RecycleResource, RetentionRule, RuleTag};
use crate::time_util::rfc3339;

/// The tags of an image or snapshot, as hashes of `key` and of `key = value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TagPrint(Box<[u64]>);

fn hash_key(key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (0u8, key).hash(&mut h);
    h.finish()
}

fn hash_pair(key: &str, value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (1u8, key, value).hash(&mut h);
    h.finish()
}

impl TagPrint {
    pub fn of(tags: &Tags) -> Self {
        let mut v: Vec<u64> = tags
            .iter()
            .flat_map(|(k, val)| [hash_key(k), hash_pair(k, val)])
            .collect();
        v.sort_unstable();
        Self(v.into())
    }

    /// A print from its hashes (any order): the inventory keeps an image's print in two
    /// parts and joins them here.
    pub(crate) fn from_hashes(mut hashes: Vec<u64>) -> Self {
        hashes.sort_unstable();
        Self(hashes.into())
    }

    /// Its hashes, sorted.
    pub(crate) fn hashes(&self) -> &[u64] {
        &self.0
    }

    fn has(&self, h: u64) -> bool {
        self.0.binary_search(&h).is_ok()
    }

    /// A `ResourceTags` entry: the key with that value (no value: an empty one).
    fn carries(&self, tag: &RuleTag) -> bool {
        self.has(hash_pair(&tag.key, tag.value.as_deref().unwrap_or("")))
    }

    /// An `ExcludeResourceTags` entry: the key with that value (no value: any value).
    fn excluded_by(&self, tag: &RuleTag) -> bool {
        match &tag.value {
            Some(v) => self.has(hash_pair(&tag.key, v)),
            None => self.has(hash_key(&tag.key)),
        }
    }
}

/// Whether `rule` retains a resource of its type carrying `tags`.
pub fn applies(rule: &RetentionRule, tags: &TagPrint) -> bool {
    if rule.resource_tags.is_empty() {
        !rule.exclude_tags.iter().any(|t| tags.excluded_by(t))
    } else {
        rule.resource_tags.iter().any(|t| tags.carries(t))
    }
}

/// The rule that keeps a deleted `resource` with `tags` restorable the longest, if any.
pub fn covering_rule<'a>(
    rules: &'a [RetentionRule],
    resource: RecycleResource,
    tags: &TagPrint,
) -> Option<&'a RetentionRule> {
    rules
        .iter()
        .filter(|r| r.available && r.resource == resource && applies(r, tags))
        // Longest retention; ties to the smallest id, so the report is stable.
        .max_by(|a, b| {
            a.retention_days
                .cmp(&b.retention_days)
                .then_with(|| b.id.cmp(&a.id))
        })
}

/// What the report says of a deletion at `deleted` under `rules` (`Err`: they could not be
/// read), and whether a rule retains it (for the tally).
pub fn coverage(
    rules: &Result<Vec<RetentionRule>, String>,
    resource: RecycleResource,
    tags: &TagPrint,
    deleted: OffsetDateTime,
) -> (bool, String) {
    let rules = match rules {
        Ok(r) => r,
        Err(e) => return (false, format!("Recycle Bin rules could not be read ({e})")),
    };
    match covering_rule(rules, resource, tags) {
        Some(rule) => {
            let until = deleted + Duration::days(i64::from(rule.retention_days));
            let lock = match rule.lock_state.as_deref() {
                Some(l) if l != "unlocked" => format!(", {l}"),
                _ => String::new(),
            };
            (
                true,
                format!(
                    "restorable from the Recycle Bin until {} (rule {}{lock})",
                    rfc3339(until),
                    rule.id
                ),
            )
        }
        None => (
            false,
            "no Recycle Bin rule covers it: deletion is final".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn tags(pairs: &[(&str, &str)]) -> TagPrint {
        TagPrint::of(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn tag(key: &str, value: Option<&str>) -> RuleTag {
        RuleTag {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    fn rule(id: &str, resource: RecycleResource, days: u32) -> RetentionRule {
        RetentionRule {
            id: id.to_owned(),
            resource,
            retention_days: days,
            resource_tags: Vec::new(),
            exclude_tags: Vec::new(),
            lock_state: Some("unlocked".to_owned()),
            available: true,
        }
    }

    fn check(
        rules: &[RetentionRule],
        resource: RecycleResource,
        on: &TagPrint,
        want: Option<&str>,
    ) {
        assert_eq!(
            covering_rule(rules, resource, on).map(|r| r.id.as_str()),
            want
        );
    }

    #[test]
    fn a_region_level_rule_covers_everything_of_its_type_but_excluded_tags() {
        let mut region = rule("regionrule1", RecycleResource::Image, 7);
        region.exclude_tags = vec![tag("env", Some("dev")), tag("scratch", None)];
        let rules = [region];
        check(
            &rules,
            RecycleResource::Image,
            &tags(&[]),
            Some("regionrule1"),
        );
        check(
            &rules,
            RecycleResource::Image,
            &tags(&[("env", "prod")]),
            Some("regionrule1"),
        );
        check(
            &rules,
            RecycleResource::Image,
            &tags(&[("env", "dev")]),
            None,
        );
        // An exclusion without a value excludes the key with any value.
        check(
            &rules,
            RecycleResource::Image,
            &tags(&[("scratch", "yes")]),
            None,
        );
        // An image rule says nothing of snapshots.
        check(&rules, RecycleResource::Snapshot, &tags(&[]), None);
    }

    #[test]
    fn a_tag_level_rule_covers_resources_with_any_of_its_tags() {
        let mut tagged = rule("tagrule0001", RecycleResource::Snapshot, 30);
        tagged.resource_tags = vec![tag("team", Some("core")), tag("backup", Some("yes"))];
        let rules = [tagged];
        check(
            &rules,
            RecycleResource::Snapshot,
            &tags(&[("backup", "yes")]),
            Some("tagrule0001"),
        );
        check(
            &rules,
            RecycleResource::Snapshot,
            &tags(&[("team", "core"), ("x", "y")]),
            Some("tagrule0001"),
        );
        check(
            &rules,
            RecycleResource::Snapshot,
            &tags(&[("team", "web")]),
            None,
        );
        check(&rules, RecycleResource::Snapshot, &tags(&[]), None);
    }

    #[test]
    fn the_longest_available_rule_is_named() {
        let short = rule("shortrule01", RecycleResource::Image, 3);
        let mut long = rule("longrule001", RecycleResource::Image, 90);
        long.resource_tags = vec![tag("keep", Some("long"))];
        let mut pending = rule("pendingrul1", RecycleResource::Image, 365);
        pending.available = false;
        let rules = [short, long, pending];
        check(
            &rules,
            RecycleResource::Image,
            &tags(&[("keep", "long")]),
            Some("longrule001"),
        );
        check(
            &rules,
            RecycleResource::Image,
            &tags(&[]),
            Some("shortrule01"),
        );
    }

    #[test]
    fn the_report_says_until_when_or_that_deletion_is_final() {
        let now = datetime!(2026-12-01 10:00 UTC);
        let mut locked = rule("lockedrule1", RecycleResource::Image, 10);
        locked.lock_state = Some("locked".to_owned());
        let (covered, said) = coverage(&Ok(vec![locked]), RecycleResource::Image, &tags(&[]), now);
        assert!(covered);
        assert_eq!(
            said,
            "restorable from the Recycle Bin until 2026-12-11T10:00:00Z (rule lockedrule1, locked)"
        );
        let (covered, said) = coverage(&Ok(Vec::new()), RecycleResource::Snapshot, &tags(&[]), now);
        assert!(!covered);
        assert_eq!(said, "no Recycle Bin rule covers it: deletion is final");
        let (covered, said) = coverage(
            &Err("AccessDeniedException".to_owned()),
            RecycleResource::Image,
            &tags(&[]),
            now,
        );
        assert!(!covered);
        assert!(
            said.starts_with("Recycle Bin rules could not be read"),
            "{said}"
        );
    }
}
