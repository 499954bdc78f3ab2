//! [`LineageNames`]: the readable name of each scheduled instance's lineage, the `<lineage>`
//! of `/ami-lifecycle/<deployment>/<lineage>/latest`.
//!
//! The name is the instance's `ami-lifecycle:lineage-name` tag (which must already be a
//! valid path segment: 1–100 of `a-z A-Z 0-9 _ . -`), else its `Name` tag made one
//! (other characters become `-`), else its id. Names are checked across every managed
//! region at once: a replica region holds parameters for instances of every source
//! region, so two instances called `web-1` anywhere would fight over one parameter. Both
//! are refused ([`NameRefusal`]), naming each instance and the fix; neither is published
//! until one is renamed. A name never decides whose images are published: the images
//! are found by EC2's own `SourceInstanceId` and the seal; the name only says where.

use std::collections::BTreeMap;

use crate::model::{Instance, InstanceId, Region};
use crate::tags::key;

/// The longest readable name (a path segment; SSM names are at most 2,048 characters).
pub const MAX_NAME: usize = 100;

/// Why an instance's lineage has no name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRefusal {
    pub instance: InstanceId,
    pub region: Region,
    /// The name it claims (or the tag value that is not a valid name).
    pub name: String,
    /// Another instance claims the same name (else the name itself is not valid).
    pub collision: bool,
    pub problem: String,
}

/// An instance moved by `amictl migrate` that took over its source's lineage name: EC2
/// says it was launched from an image made of the source (its `ImageId`, that image's
/// `SourceInstanceId` — or, across regions, the copy's `SourceImageId` first), so the
/// two claims are one lineage moving, not a collision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Succession {
    pub name: String,
    pub source: InstanceId,
    pub successor: InstanceId,
}

/// Instance → readable name, for every scheduled instance of every managed region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineageNames {
    names: BTreeMap<InstanceId, String>,
    refused: Vec<NameRefusal>,
    succeeded: Vec<Succession>,
}

/// Whether `name` is a valid readable name (one path segment SSM accepts).
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A `Name` tag made a valid name: other characters become `-`, runs of `-` collapse,
/// leading and trailing `-` go; `None` when nothing is left.
pub fn from_name_tag(value: &str) -> Option<String> {
    let mut out = String::new();
    for c in value.trim().chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    let out: String = out.trim_end_matches('-').chars().take(MAX_NAME).collect();
    let out = out.trim_end_matches('-').to_owned();
    (!out.is_empty()).then_some(out)
}

impl LineageNames {
    /// Names `instances` (all scheduled instances of every managed region).
    pub fn resolve(instances: &[Instance]) -> Self {
        Self::resolve_with(instances, &BTreeMap::new())
    }

    /// As [`LineageNames::resolve`], where `made_from` (instance → the instance whose
    /// image it was launched from, as EC2's own fields prove it) settles a claim of two:
    /// the instance launched from the other's image succeeds it and alone has the name.
    pub fn resolve_with(
        instances: &[Instance],
        made_from: &BTreeMap<InstanceId, InstanceId>,
    ) -> Self {
        let mut claims: BTreeMap<String, Vec<&Instance>> = BTreeMap::new();
        let mut refused = Vec::new();
        for instance in instances {
            let tag = |k: &str| {
                instance
                    .tags
                    .get(k)
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
            };
            let name = match (tag(key::LINEAGE_NAME), tag("Name")) {
                (Some(explicit), _) if is_valid(explicit) => explicit.to_owned(),
                (Some(explicit), _) => {
                    refused.push(NameRefusal {
                        instance: instance.id.clone(),
                        region: instance.region.clone(),
                        name: explicit.to_owned(),
                        collision: false,
                        problem: format!(
                            "{}={explicit:?} is not a valid lineage name: use 1-{MAX_NAME} letters, digits, '_', '.' or '-'",
                            key::LINEAGE_NAME
                        ),
                    });
                    continue;
                }
                (None, Some(name)) => {
                    from_name_tag(name).unwrap_or_else(|| instance.id.to_string())
                }
                (None, None) => instance.id.to_string(),
            };
            claims.entry(name).or_default().push(instance);
        }
        let mut names = BTreeMap::new();
        let mut succeeded = Vec::new();
        for (name, holders) in claims {
            if let [only] = holders.as_slice() {
                names.insert(only.id.clone(), name);
                continue;
            }
            if let [a, b] = holders.as_slice() {
                let heir = if made_from.get(&a.id) == Some(&b.id) {
                    Some((a, b))
                } else if made_from.get(&b.id) == Some(&a.id) {
                    Some((b, a))
                } else {
                    None
                };
                if let Some((successor, source)) = heir {
                    names.insert(successor.id.clone(), name.clone());
                    succeeded.push(Succession {
                        name,
                        source: source.id.clone(),
                        successor: successor.id.clone(),
                    });
                    continue;
                }
            }
            let all: Vec<String> = holders
                .iter()
                .map(|i| format!("{} ({})", i.id, i.region))
                .collect();
            for holder in holders {
                refused.push(NameRefusal {
                    instance: holder.id.clone(),
                    region: holder.region.clone(),
                    name: name.clone(),
                    collision: true,
                    problem: format!(
                        "lineage name {name:?} is claimed by {}: neither is published until each has its own; set {} on one of them",
                        all.join(" and "),
                        key::LINEAGE_NAME
                    ),
                });
            }
        }
        Self {
            names,
            refused,
            succeeded,
        }
    }

    /// Names another instance took over from its source (`amictl migrate`).
    pub fn succeeded(&self) -> &[Succession] {
        &self.succeeded
    }

    /// The instances whose claims collide: only these need the images they were launched
    /// from looked up ([`LineageNames::resolve_with`]).
    pub fn colliding(&self) -> impl Iterator<Item = &InstanceId> {
        self.refused
            .iter()
            .filter(|r| r.collision)
            .map(|r| &r.instance)
    }

    /// The readable name of `instance`'s lineage; `None` when refused or not scheduled.
    pub fn of(&self, instance: &InstanceId) -> Option<&str> {
        self.names.get(instance).map(String::as_str)
    }

    /// The instance whose lineage is called `name`.
    pub fn instance_named(&self, name: &str) -> Option<&InstanceId> {
        self.names.iter().find(|(_, n)| *n == name).map(|(i, _)| i)
    }

    /// Every named lineage: (instance, name).
    pub fn iter(&self) -> impl Iterator<Item = (&InstanceId, &str)> {
        self.names.iter().map(|(i, n)| (i, n.as_str()))
    }

    pub fn refused(&self) -> &[NameRefusal] {
        &self.refused
    }

    /// The refusal of the lineage name `name`, if some instance claimed it and was refused.
    pub fn refusal_named(&self, name: &str) -> Option<&NameRefusal> {
        self.refused.iter().find(|r| r.name == name)
    }

    /// Why no instance publishes as `name`: its refusal, or that no scheduled instance
    /// carries it.
    pub fn why_unnamed(&self, name: &str) -> String {
        self.refusal_named(name).map_or_else(
            || {
                format!(
                    "no scheduled instance has the lineage name {name:?} (its {} or Name tag); `amictl status` lists the lineages",
                    key::LINEAGE_NAME
                )
            },
            |r| r.problem.clone(),
        )
    }

    /// The refusal of `instance`, if its lineage is not named.
    pub fn refusal_of(&self, instance: &InstanceId) -> Option<&NameRefusal> {
        self.refused.iter().find(|r| &r.instance == instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceState;

    fn instance(id: &str, region: &str, tags: &[(&str, &str)]) -> Instance {
        Instance {
            id: InstanceId::new(id),
            region: Region::new(region),
            state: InstanceState::Running,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            root_device: None,
            volumes: Vec::new(),
            image_id: None,
            instance_store: false,
            launched: None,
        }
    }

    #[test]
    fn a_moved_instance_succeeds_its_source_and_a_third_claim_still_collides() {
        let source = instance("i-src", "us-east-1", &[("Name", "web-1")]);
        let moved = instance("i-new", "us-east-1", &[("Name", "web-1")]);
        let made_from: BTreeMap<_, _> = [(InstanceId::new("i-new"), InstanceId::new("i-src"))]
            .into_iter()
            .collect();
        let names = LineageNames::resolve_with(&[source.clone(), moved.clone()], &made_from);
        assert_eq!(names.of(&InstanceId::new("i-new")), Some("web-1"));
        assert_eq!(names.of(&InstanceId::new("i-src")), None);
        assert!(names.refused().is_empty(), "{:?}", names.refused());
        assert_eq!(names.succeeded().len(), 1);
        // Without the proof it is a collision, and a third claimant is one too.
        let plain = LineageNames::resolve(&[source.clone(), moved.clone()]);
        assert_eq!(plain.colliding().count(), 2);
        let third = instance("i-3", "eu-west-1", &[("Name", "web-1")]);
        let three = LineageNames::resolve_with(&[source, moved, third], &made_from);
        assert_eq!(three.refused().len(), 3);
        assert_eq!(three.of(&InstanceId::new("i-new")), None);
    }

    #[test]
    fn the_lineage_name_tag_wins_then_name_then_the_id() {
        let names = LineageNames::resolve(&[
            instance(
                "i-1",
                "us-east-1",
                &[(key::LINEAGE_NAME, "web-1"), ("Name", "ignored")],
            ),
            instance("i-2", "us-east-1", &[("Name", "Billing API (prod)")]),
            instance("i-3", "eu-west-1", &[]),
        ]);
        assert_eq!(names.of(&InstanceId::new("i-1")), Some("web-1"));
        assert_eq!(names.of(&InstanceId::new("i-2")), Some("Billing-API-prod"));
        assert_eq!(names.of(&InstanceId::new("i-3")), Some("i-3"));
        assert!(names.refused().is_empty());
    }

    #[test]
    fn a_collision_across_regions_refuses_both_and_names_them() {
        let names = LineageNames::resolve(&[
            instance("i-1", "us-east-1", &[("Name", "web-1")]),
            instance("i-2", "eu-west-1", &[(key::LINEAGE_NAME, "web-1")]),
            instance("i-3", "eu-west-1", &[("Name", "db")]),
        ]);
        assert_eq!(names.of(&InstanceId::new("i-1")), None);
        assert_eq!(names.of(&InstanceId::new("i-2")), None);
        assert_eq!(names.of(&InstanceId::new("i-3")), Some("db"));
        let refusal = names.refusal_of(&InstanceId::new("i-2"));
        assert!(
            refusal.is_some_and(|r| r.problem.contains("i-1 (us-east-1)")
                && r.problem.contains("i-2 (eu-west-1)")
                && r.problem.contains(key::LINEAGE_NAME))
        );
        assert_eq!(names.refused().len(), 2);
    }

    #[test]
    fn an_invalid_explicit_name_is_refused_not_rewritten() {
        let names = LineageNames::resolve(&[instance(
            "i-1",
            "us-east-1",
            &[(key::LINEAGE_NAME, "web 1/prod")],
        )]);
        assert_eq!(names.of(&InstanceId::new("i-1")), None);
        assert!(names.refused()[0]
            .problem
            .contains("not a valid lineage name"));
    }

    #[test]
    fn name_tags_become_path_segments() {
        assert_eq!(
            from_name_tag("  --web  server #2-- ").as_deref(),
            Some("web-server-2")
        );
        assert_eq!(from_name_tag("日本").as_deref(), None);
        assert!(from_name_tag(&"x".repeat(300)).is_some_and(|n| n.len() == MAX_NAME));
        assert!(is_valid("web-1.prod_a") && !is_valid("web/1") && !is_valid(""));
    }
}
