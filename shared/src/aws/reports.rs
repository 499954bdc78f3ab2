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
            .detail(report.event_detail().to_string())
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
