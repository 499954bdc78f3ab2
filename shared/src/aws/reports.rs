//! [`EventBridgeReports`]: publishes each run's report as an `AMI Lifecycle Report` event,
//! so alarms and dashboards follow runs without reading logs.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use super::errors::cloud_error;
use crate::error::{CloudError, CloudResult};
use crate::model::Region;
use crate::ports::Reports;
use crate::report::RunReport;

/// The event `source` of run reports.
pub const SOURCE: &str = "ami-lifecycle";
/// The event `detail-type` of run reports.
pub const DETAIL_TYPE: &str = "AMI Lifecycle Report";

/// PutEvents: one entry (source, detail-type, detail, …) is at most 256 KiB; a larger one
/// is refused and the report lost. Kept a little under, for the fields besides the detail.
const ENTRY_MAX_BYTES: usize = 256 * 1024 - 1024;

/// The report's event detail, its item list halved until it fits in one PutEvents entry
/// (failures come first in the list, so they are the last to go).
pub fn fitted_detail(report: &RunReport) -> String {
    let mut detail = report.event_detail();
    loop {
        let text = detail.to_string();
        if text.len() + SOURCE.len() + DETAIL_TYPE.len() <= ENTRY_MAX_BYTES {
            return text;
        }
        match detail.get_mut("items").and_then(|i| i.as_array_mut()) {
            Some(items) if !items.is_empty() => {
                let keep = items.len() / 2;
                items.truncate(keep);
            }
            _ => return text,
        }
        detail["items_truncated"] = serde_json::Value::Bool(true);
    }
}

/// Reports sent to one event bus.
#[derive(Debug, Clone)]
pub struct EventBridgeReports {
    client: Client,
    region: Region,
    bus: String,
}

impl EventBridgeReports {
    pub fn new(client: Client, region: Region, bus: impl Into<String>) -> Self {
        Self {
            client,
            region,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl Reports for EventBridgeReports {
    async fn publish(&self, report: &RunReport) -> CloudResult<()> {
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(fitted_detail(report))
            .event_bus_name(&self.bus)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| cloud_error("PutEvents", Some(&self.region), e))?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        // PutEvents answers 200 even when an entry was refused: the reason is per entry.
        let failed = out.entries().iter().find(|e| e.error_code().is_some());
        let code = failed.and_then(|e| e.error_code()).unwrap_or("FailedEntry");
        let message = failed
            .and_then(|e| e.error_message())
            .unwrap_or("the report event was not accepted");
        Err(CloudError::from_code(
            "PutEvents",
            Some(self.region.clone()),
            code,
            format!("bus {}: {message}", self.bus),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Region;
    use crate::report::Outcome;

    #[test]
    fn a_report_too_large_for_one_event_is_cut_to_fit_and_says_so() {
        let started = time::macros::datetime!(2026-12-01 03:00 UTC);
        let mut report = RunReport::new("cleanup", false, started);
        for n in 0..200 {
            report.push(
                &Region::new("us-east-1"),
                format!("ami-{n:017}"),
                None,
                if n == 199 {
                    Outcome::Failed
                } else {
                    Outcome::Kept
                },
                "in use by ec2:LaunchTemplate arn:aws:ec2:…; ".repeat(60),
            );
        }
        assert!(report.event_detail().to_string().len() > ENTRY_MAX_BYTES);

        let text = fitted_detail(&report);
        assert!(text.len() <= ENTRY_MAX_BYTES, "{} bytes", text.len());
        let detail: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(detail["items_truncated"], serde_json::Value::Bool(true));
        let items = detail["items"].as_array().map_or(0, Vec::len);
        assert!(items > 0 && items < 200, "{items} items kept");
        assert_eq!(detail["items"][0]["outcome"], "failed", "failures go last");
        assert_eq!(detail["failed"], 1, "the counts still cover every item");
    }

    #[test]
    fn a_small_report_is_sent_whole() {
        let report = RunReport::new(
            "cleanup",
            false,
            time::macros::datetime!(2026-12-01 03:00 UTC),
        );
        assert_eq!(fitted_detail(&report), report.event_detail().to_string());
    }
}
