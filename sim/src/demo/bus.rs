//! The template's rules, live on the emulator's EventBridge, and the pump that delivers
//! matched events to the functions — the same runner code Lambda runs.
//!
//! Pattern rules are created in every region the suite touches (in AWS the forwarder
//! template brings other regions' events home), each targeting one SQS queue per function;
//! create-image's continuation queue is a plain queue, as the template's event source
//! mapping wires it. The pump ticks the emulator (pending images become available and
//! emit their events), drains the queues and invokes the functions through
//! [`crate::dispatch`] until nothing moves.

use std::time::Duration;

use ami_core::context::Context;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::wiring::{Trigger, Wiring};
use crate::{dispatch, EmulatorClient, EventQueue};

/// One handler invocation, for the timeline.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub at: OffsetDateTime,
    pub function: String,
    pub event: String,
    pub result: Result<Value, String>,
}

impl Invocation {
    /// A person's `amictl` command and the report it printed.
    pub fn amictl(at: OffsetDateTime, command: &str, detail: Value) -> Self {
        Self {
            at,
            function: "amictl".to_owned(),
            event: command.to_owned(),
            result: Ok(detail),
        }
    }

    /// A Scheduled Event that never reached `function` (EventBridge is best-effort).
    pub fn lost(function: &str, rule: &str, at: OffsetDateTime) -> Self {
        Self {
            at,
            function: function.to_owned(),
            event: "Scheduled Event (LOST)".to_owned(),
            result: Ok(serde_json::json!({"lost": rule})),
        }
    }
}

pub struct Bus {
    queues: Vec<(String, EventQueue)>,
    continuation: EventQueue,
    ctx: Context,
}

/// A short label for an event in the timeline.
pub fn label(event: &Value) -> String {
    match event.get("detail-type").and_then(Value::as_str) {
        Some("EC2 AMI State Change") => format!(
            "AMI {} {}",
            event["detail"]["State"].as_str().unwrap_or("?"),
            event["region"].as_str().unwrap_or("?")
        ),
        Some("Tag Change on Resource") => format!(
            "tag change {} {}",
            event["resources"][0]
                .as_str()
                .and_then(|a| a.rsplit('/').next())
                .unwrap_or("?"),
            event["detail"]["changed-tag-keys"]
        ),
        Some("Scheduled Event") => {
            format!(
                "schedule {}",
                event["resources"][0]
                    .as_str()
                    .and_then(|a| a.rsplit('/').next())
                    .unwrap_or("?")
            )
        }
        Some(other) => other.to_owned(),
        None if event.get("Records").is_some() => "continuation (SQS)".to_owned(),
        None => "direct".to_owned(),
    }
}

impl Bus {
    /// Creates the template's pattern rules in every region, one queue per function.
    pub async fn wire(
        emu: &EmulatorClient,
        wiring: &Wiring,
        regions: &[String],
        continuation: EventQueue,
        ctx: &Context,
    ) -> anyhow::Result<Self> {
        let mut queues = Vec::new();
        for rule in &wiring.rules {
            let Trigger::Pattern(pattern) = &rule.trigger else {
                continue;
            };
            for region in regions {
                queues.push((
                    rule.function.clone(),
                    emu.event_queue(region, pattern.clone()).await?,
                ));
            }
        }
        Ok(Self {
            queues,
            continuation,
            ctx: ctx.clone(),
        })
    }

    /// Invokes `function`, as Lambda would.
    pub async fn invoke(&self, function: &str, payload: Value, now: OffsetDateTime) -> Invocation {
        let event = label(&payload);
        let result = dispatch(function, &self.ctx, payload, now).await;
        Invocation {
            at: now,
            function: function.to_owned(),
            event,
            result,
        }
    }

    /// Delivers everything that is pending, until the emulator is quiet.
    pub async fn pump(
        &self,
        emu: &EmulatorClient,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<Invocation>> {
        let mut done = Vec::new();
        let mut quiet_rounds = 0;
        // A continuation is delivered a minute later (the next reboot wave): simulated time
        // moves on, and with it the emulator's clock, so a rebooted member is seen settled.
        let mut now = now;
        for _ in 0..200 {
            emu.tick()?;
            let mut moved = false;
            for (function, queue) in &self.queues {
                for event in queue.drain().await? {
                    moved = true;
                    done.push(self.invoke(function, event, now).await);
                }
            }
            for body in self.continuation.drain().await? {
                moved = true;
                now += time::Duration::minutes(1);
                emu.set_clock(now)?;
                let sqs =
                    json!({"Records": [{"eventSource": "aws:sqs", "body": body.to_string()}]});
                done.push(self.invoke("create-image", sqs, now).await);
            }
            if moved {
                quiet_rounds = 0;
            } else {
                quiet_rounds += 1;
                if quiet_rounds >= 2 {
                    return Ok(done);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        anyhow::bail!("events kept flowing after 200 rounds: a loop between functions?")
    }
}
