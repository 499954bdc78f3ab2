//! Printing: a table for people, JSON with `--json`; the exit code says whether anything failed.

use std::process::ExitCode;

use ami_core::report::RunReport;

pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a run report; exit code 1 when any item failed.
    pub fn report(&self, report: &RunReport) -> ExitCode {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(report).unwrap_or_default()
            );
        } else {
            print!("{}", report.render_table());
        }
        if report.failed() > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}
