//! What cleanup must never delete because it was published: [`published_images`] reads a
//! region's parameters, their histories and its tracked templates; [`keep_reasons`] is the
//! pure decision over what was read.
//!
//! Kept, each with the reason cleanup's plan prints:
//! - the last `PUBLISHED_KEEP` values of every `/ami-lifecycle/<deployment>/<lineage>/latest`
//!   (distinct images, newest version first, the current value always): the images a
//!   rollback can go back to;
//! - a pinned image (`…/pinned`);
//! - the image of a tracked launch template's default and latest versions: the default
//!   version of a template the publisher adds versions to may fall outside the 10 newest
//!   versions `DescribeImageReferences` checks by default.

use std::collections::BTreeMap;

use super::{lineage_of_parameter, parameter_path};
use crate::error::CloudResult;
use crate::model::ImageId;
use crate::ports::{
    LaunchTemplates, ParameterValue, ParameterVersion, Parameters, TrackedTemplate,
};

/// Image → why it is kept.
pub type Published = BTreeMap<ImageId, String>;

/// Reads what [`keep_reasons`] needs in one region (one `GetParameterHistory` listing per
/// latest-image parameter).
pub async fn published_images(
    params: &dyn Parameters,
    templates: &dyn LaunchTemplates,
    deployment: &str,
    keep: u32,
) -> CloudResult<Published> {
    let values = params.under_path(&parameter_path(deployment)).await?;
    let mut histories = BTreeMap::new();
    if keep > 1 {
        for v in &values {
            if lineage_of_parameter(deployment, &v.name).is_some() {
                histories.insert(v.name.clone(), params.history(&v.name).await?);
            }
        }
    }
    let tracked = templates.tracked_templates().await?;
    Ok(keep_reasons(
        &values, &histories, &tracked, deployment, keep,
    ))
}

/// The images published values, histories and tracked templates keep.
pub fn keep_reasons(
    values: &[ParameterValue],
    histories: &BTreeMap<String, Vec<ParameterVersion>>,
    templates: &[TrackedTemplate],
    deployment: &str,
    keep: u32,
) -> Published {
    let mut out = Published::new();
    let mut add = |value: &str, why: String| {
        if let Ok(id) = ImageId::parse(value.trim()) {
            out.entry(id).or_insert(why);
        }
    };
    for v in values {
        if lineage_of_parameter(deployment, &v.name).is_some() {
            add(
                &v.value,
                format!("published: the current value of {}", v.name),
            );
            // The current value is the first of the last `keep` distinct values.
            let mut seen: Vec<&str> = vec![v.value.trim()];
            let history = histories.get(&v.name).map_or(&[][..], Vec::as_slice);
            for old in history.iter().rev() {
                let value = old.value.trim();
                if seen.contains(&value) {
                    continue;
                }
                if seen.len() as u32 >= keep {
                    break;
                }
                seen.push(value);
                add(
                    value,
                    format!(
                        "published: version {} of {}, one of its last {keep} values (PUBLISHED_KEEP)",
                        old.version, v.name
                    ),
                );
            }
        } else if v.name.ends_with("/pinned") {
            add(&v.value, format!("pinned by amictl rollback ({})", v.name));
        }
    }
    for t in templates {
        for (which, version, image) in [
            ("default", t.default_version, &t.default_image),
            ("latest", t.latest_version, &t.latest_image),
        ] {
            if let Some(image) = image {
                add(
                    image,
                    format!(
                        "the image of tracked launch template {} ({}) {which} version {version}",
                        t.name, t.id
                    ),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(name: &str, value: &str) -> ParameterValue {
        ParameterValue {
            name: name.to_owned(),
            value: value.to_owned(),
            version: 9,
            ..ParameterValue::default()
        }
    }

    fn version(n: i64, value: &str) -> ParameterVersion {
        ParameterVersion {
            version: n,
            value: value.to_owned(),
            labels: Vec::new(),
            description: None,
        }
    }

    #[test]
    fn the_last_distinct_values_are_kept_the_current_one_always() {
        let name = "/ami-lifecycle/prod/web-1/latest";
        let history = vec![
            version(1, "ami-00000001"),
            version(2, "ami-00000002"),
            version(3, "ami-00000003"),
            version(4, "ami-00000002"),
            version(5, "ami-00000004"),
            version(6, "ami-00000005"),
        ];
        let histories = BTreeMap::from([(name.to_owned(), history)]);
        let kept = keep_reasons(&[value(name, "ami-00000005")], &histories, &[], "prod", 3);
        let ids: Vec<&str> = kept.keys().map(ImageId::as_str).collect();
        // Current 5, then 4 and 2 (version 4); 3 and 1 are beyond PUBLISHED_KEEP=3.
        assert_eq!(ids, ["ami-00000002", "ami-00000004", "ami-00000005"]);
        assert!(kept[&ImageId::new("ami-00000002")].contains("version 4"));
        let none = keep_reasons(&[value(name, "ami-00000005")], &histories, &[], "prod", 0);
        assert_eq!(none.len(), 1);
    }

    #[test]
    fn pins_and_tracked_template_images_are_kept_other_paths_are_not() {
        let template = TrackedTemplate {
            id: "lt-1".into(),
            name: "web".into(),
            tags: Default::default(),
            default_version: 3,
            default_image: Some("ami-0000000a".into()),
            latest_version: 40,
            latest_image: Some("resolve:ssm:/x".into()),
            latest_description: None,
        };
        let kept = keep_reasons(
            &[
                value("/ami-lifecycle/prod/web-1/pinned", "ami-0000000b"),
                value("/ami-lifecycle/other/web-1/latest", "ami-0000000c"),
            ],
            &BTreeMap::new(),
            &[template],
            "prod",
            3,
        );
        let ids: Vec<&str> = kept.keys().map(ImageId::as_str).collect();
        assert_eq!(ids, ["ami-0000000a", "ami-0000000b"]);
        assert!(kept[&ImageId::new("ami-0000000a")].contains("default version 3"));
    }
}
