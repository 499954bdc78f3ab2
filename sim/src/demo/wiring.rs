//! The event wiring read from `template.yaml`: which rule invokes which function.
//!
//! The demo does not re-implement the wiring: it reads the SAM template's `Schedule` and
//! `EventBridgeRule` event sources, `AWS::Events::Rule` resources that target a function,
//! and the SQS event source mapping of create-image's continuation queue, resolving
//! `!Sub`/`!Ref` against parameter defaults (and the deployment name). A wrong pattern in
//! the template shows up as a demo in which nothing happens.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value as Json;
use serde_yaml::Value;

/// What triggers a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// An event pattern on the default bus.
    Pattern(Json),
    /// A schedule expression (`cron(...)` or `rate(...)`).
    Schedule(String),
}

/// One EventBridge rule and the function (binary name) it invokes.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub function: String,
    pub trigger: Trigger,
}

/// Everything the demo wires.
#[derive(Debug, Clone, PartialEq)]
pub struct Wiring {
    pub rules: Vec<Rule>,
    /// SQS queues (logical id) whose messages invoke a function (event source mappings).
    pub queues: Vec<(String, String)>,
}

/// Resolves the intrinsic functions the template uses for names, patterns and schedules.
struct Resolver<'a> {
    params: BTreeMap<String, String>,
    functions: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    fn string(&self, v: &Value) -> anyhow::Result<String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Tagged(t) if t.tag == "!Sub" => {
                let template = t.value.as_str().context("!Sub takes a string here")?;
                let mut out = String::new();
                let mut rest = template;
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}').context("unclosed ${ in !Sub")? + start;
                    let name = &rest[start + 2..end];
                    out.push_str(
                        self.params
                            .get(name)
                            .with_context(|| format!("!Sub names unknown ${{{name}}}"))?,
                    );
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                Ok(out)
            }
            Value::Tagged(t) if t.tag == "!Ref" => {
                let name = t.value.as_str().context("!Ref takes a name")?;
                self.params
                    .get(name)
                    .cloned()
                    .with_context(|| format!("!Ref {name}: no default"))
            }
            other => bail!("expected a string, !Sub or !Ref, found {other:?}"),
        }
    }

    /// The function a target ARN points at (`!GetAtt CreateImageFunction.Arn`).
    fn target_function(&self, v: &Value) -> Option<String> {
        let Value::Tagged(t) = v else { return None };
        let text = t.value.as_str()?;
        let logical = text.split('.').next()?;
        self.functions.get(logical).cloned()
    }
}

fn to_json(v: &Value) -> anyhow::Result<Json> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => serde_json::to_value(n)?,
        Value::String(s) => Json::String(s.clone()),
        Value::Sequence(items) => {
            Json::Array(items.iter().map(to_json).collect::<anyhow::Result<_>>()?)
        }
        Value::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                out.insert(
                    k.as_str().context("pattern keys are strings")?.to_owned(),
                    to_json(v)?,
                );
            }
            Json::Object(out)
        }
        Value::Tagged(t) => bail!("a pattern with {} cannot be wired locally", t.tag),
    })
}

impl Wiring {
    /// `SCHEDULE_EXPRESSIONS` as the template gives it to create-image: `NAME=EXPRESSION`
    /// of each `<deployment>-schedule-NAME` rule, separated by `;`.
    pub fn schedule_expressions(&self, deployment: &str) -> String {
        let prefix = format!("{deployment}-schedule-");
        self.rules
            .iter()
            .filter_map(|r| match &r.trigger {
                Trigger::Schedule(expr) => r
                    .name
                    .strip_prefix(&prefix)
                    .map(|name| format!("{name}={expr}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Reads `template.yaml`. `deployment` stands in for the `DeploymentName` parameter.
    pub fn load(path: &Path, deployment: &str) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, deployment).with_context(|| format!("wiring in {}", path.display()))
    }

    pub fn parse(text: &str, deployment: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_yaml::from_str(text)?;
        let mut params = BTreeMap::new();
        if let Some(Value::Mapping(ps)) = doc.get("Parameters") {
            for (name, spec) in ps {
                if let (Some(name), Some(default)) = (name.as_str(), spec.get("Default")) {
                    let value = match default {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    params.insert(name.to_owned(), value);
                }
            }
        }
        params.insert("DeploymentName".to_owned(), deployment.to_owned());
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .context("no Resources")?;

        let mut functions = BTreeMap::new();
        for (logical, res) in resources {
            if res.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function") {
                let binary = res
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(Value::as_str)
                    .with_context(|| {
                        format!("{logical:?} has no Metadata.BuildProperties.Binary")
                    })?;
                functions.insert(
                    logical.as_str().unwrap_or_default().to_owned(),
                    binary.to_owned(),
                );
            }
        }
        let resolver = Resolver {
            params,
            functions: &functions,
        };

        let mut rules = Vec::new();
        let mut queues = Vec::new();
        for (logical, res) in resources {
            let logical = logical.as_str().unwrap_or_default();
            let kind = res.get("Type").and_then(Value::as_str).unwrap_or_default();
            // Optional resources (a Condition) are off by default: the demo wires the defaults.
            if res.get("Condition").is_some() {
                continue;
            }
            let props = res.get("Properties");
            match kind {
                "AWS::Serverless::Function" => {
                    let function = functions[logical].clone();
                    let Some(Value::Mapping(events)) = props.and_then(|p| p.get("Events")) else {
                        continue;
                    };
                    for (event_name, event) in events {
                        let ep = event
                            .get("Properties")
                            .context("event without Properties")?;
                        let event_name = event_name.as_str().unwrap_or_default();
                        match event.get("Type").and_then(Value::as_str) {
                            Some("Schedule") | Some("ScheduleV2") => {
                                let name = ep
                                    .get("Name")
                                    .map(|n| resolver.string(n))
                                    .transpose()?
                                    .unwrap_or_else(|| format!("{logical}-{event_name}"));
                                let expr = resolver.string(
                                    ep.get("Schedule")
                                        .or_else(|| ep.get("ScheduleExpression"))
                                        .context("schedule without expression")?,
                                )?;
                                rules.push(Rule {
                                    name,
                                    function: function.clone(),
                                    trigger: Trigger::Schedule(expr),
                                });
                            }
                            Some("EventBridgeRule") | Some("CloudWatchEvent") => {
                                let name = ep
                                    .get("RuleName")
                                    .map(|n| resolver.string(n))
                                    .transpose()?
                                    .unwrap_or_else(|| format!("{logical}-{event_name}"));
                                let pattern =
                                    to_json(ep.get("Pattern").context("rule without Pattern")?)?;
                                rules.push(Rule {
                                    name,
                                    function: function.clone(),
                                    trigger: Trigger::Pattern(pattern),
                                });
                            }
                            _ => {}
                        }
                    }
                }
                "AWS::Events::Rule" => {
                    let Some(props) = props else { continue };
                    let targets = props
                        .get("Targets")
                        .and_then(Value::as_sequence)
                        .cloned()
                        .unwrap_or_default();
                    for target in targets {
                        let Some(function) =
                            target.get("Arn").and_then(|a| resolver.target_function(a))
                        else {
                            continue;
                        };
                        let name = props
                            .get("Name")
                            .map(|n| resolver.string(n))
                            .transpose()?
                            .unwrap_or_else(|| logical.to_owned());
                        let trigger =
                            match (props.get("EventPattern"), props.get("ScheduleExpression")) {
                                (Some(p), _) => Trigger::Pattern(to_json(p)?),
                                (None, Some(s)) => Trigger::Schedule(resolver.string(s)?),
                                _ => continue,
                            };
                        rules.push(Rule {
                            name,
                            function,
                            trigger,
                        });
                    }
                }
                "AWS::Lambda::EventSourceMapping" => {
                    let Some(props) = props else { continue };
                    let queue = match props.get("EventSourceArn") {
                        Some(Value::Tagged(t)) => t
                            .value
                            .as_str()
                            .and_then(|s| s.split('.').next())
                            .map(str::to_owned),
                        _ => None,
                    };
                    let function = match props.get("FunctionName") {
                        Some(Value::Tagged(t)) => t
                            .value
                            .as_str()
                            .and_then(|s| functions.get(s.split('.').next().unwrap_or(s)))
                            .cloned(),
                        _ => None,
                    };
                    if let (Some(q), Some(f)) = (queue, function) {
                        queues.push((q, f));
                    }
                }
                _ => {}
            }
        }
        if rules.is_empty() {
            bail!("no EventBridge rule targets a function");
        }
        Ok(Self { rules, queues })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> anyhow::Result<Wiring> {
        Wiring::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
            "demo",
        )
    }

    #[test]
    fn reads_every_function_trigger_from_the_template() -> anyhow::Result<()> {
        let w = template()?;
        let names: Vec<(&str, &str)> = w
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.function.as_str()))
            .collect();
        for expected in [
            ("demo-schedule-daily", "create-image"),
            ("demo-schedule-weekly", "create-image"),
            ("demo-replicate-ami-state", "replicate"),
            ("demo-share-tag-change", "share"),
            ("demo-cleanup", "cleanup"),
        ] {
            assert!(
                names.contains(&expected),
                "{expected:?} missing from {names:?}"
            );
        }
        assert!(
            !names.iter().any(|(n, _)| n.contains("cloudtrail")),
            "optional rules are off by default"
        );
        assert_eq!(
            w.queues,
            vec![("ContinuationQueue".to_owned(), "create-image".to_owned())]
        );
        let replicate = w
            .rules
            .iter()
            .filter(|r| r.function == "replicate")
            .find(|r| matches!(r.trigger, Trigger::Pattern(_)))
            .context("replicate pattern")?;
        assert_eq!(
            replicate.trigger,
            Trigger::Pattern(
                serde_json::json!({"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"], "detail": {"State": ["available", "failed"]}})
            )
        );
        Ok(())
    }
}
