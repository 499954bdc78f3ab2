//! Printing: a table for people, JSON with `--json`; the exit code says whether anything failed.
//!
//! [`Output`] prints a finished report. [`JsonStream`] is the `--json` output of a run
//! whose items can be many (`amictl cleanup`): the report keeps the first items of each
//! outcome ([`ami_core::report::ITEMS_PER_OUTCOME`]) and hands the others to the stream
//! as it leaves them out, so they are written at once and never held. The document is the
//! same as `--json` prints for any other command — one report object whose `items` hold
//! every item (those streamed first, then the ones the report kept), followed by the other
//! fields — written one item per line.

use std::io::{BufWriter, Stdout, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use ami_core::report::{ReportItem, ReportSink, RunReport};

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
        Self::exit_code(report)
    }

    /// Prints a migration plan (`amictl migrate` without `--yes`): nothing was changed.
    pub fn plan(&self, plan: &ami_core::migrate::MigrationPlan) -> ExitCode {
        if self.json {
            println!("{}", serde_json::to_string_pretty(plan).unwrap_or_default());
        } else {
            print!("{}", ami_core::migrate::text::render(plan));
            println!("Nothing changed. Run the same command with --yes to apply.");
        }
        ExitCode::SUCCESS
    }

    /// A stream for a run's items when the output is JSON ([`JsonStream`]); `None` for a
    /// table, which shows the kept items and says how many more there were.
    pub fn stream(&self, keep: fn(&ReportItem) -> bool) -> Option<Arc<JsonStream>> {
        self.json.then(|| {
            Arc::new(JsonStream {
                out: Mutex::new(Writer {
                    out: BufWriter::new(std::io::stdout()),
                    opened: false,
                }),
                keep,
            })
        })
    }

    fn exit_code(report: &RunReport) -> ExitCode {
        if report.failed() > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The `--json` report of a run, written as it goes (see the module docs).
pub struct JsonStream {
    out: Mutex<Writer>,
    /// Which items are printed (`cleanup --changes-only` hides what retention keeps).
    keep: fn(&ReportItem) -> bool,
}

struct Writer {
    out: BufWriter<Stdout>,
    /// Whether the document and its `items` array are open.
    opened: bool,
}

impl Writer {
    fn item(&mut self, item: &ReportItem) -> std::io::Result<()> {
        self.open(",")?;
        let line = serde_json::to_string(item).map_err(std::io::Error::other)?;
        write!(self.out, "\n    {line}")
    }

    /// Opens the document at the first item; `sep` before every later one.
    fn open(&mut self, sep: &str) -> std::io::Result<()> {
        if self.opened {
            self.out.write_all(sep.as_bytes())
        } else {
            self.opened = true;
            self.out.write_all(b"{\n  \"items\": [")
        }
    }
}

impl ReportSink for JsonStream {
    fn item(&self, item: &ReportItem) {
        if (self.keep)(item) {
            let mut w = self.out.lock().unwrap_or_else(PoisonError::into_inner);
            // A closed stdout (`| head`) ends nothing: the run goes on, the exit code says.
            let _ = w.item(item);
        }
    }
}

impl JsonStream {
    /// Writes the items `report` kept and its other fields, closing the document; exit
    /// code 1 when any item failed.
    pub fn finish(&self, report: &RunReport) -> ExitCode {
        let mut w = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = Self::close(&mut w, report, self.keep);
        Output::exit_code(report)
    }

    fn close(
        w: &mut Writer,
        report: &RunReport,
        keep: fn(&ReportItem) -> bool,
    ) -> std::io::Result<()> {
        for item in report.items.iter().filter(|i| keep(i)) {
            w.item(item)?;
        }
        let empty = !w.opened;
        w.open("")?;
        w.out
            .write_all(if empty { b"]" as &[u8] } else { b"\n  ]" })?;
        // Every item is in `items`: nothing was left out of this document.
        let mut rest = serde_json::to_value(report).map_err(std::io::Error::other)?;
        if let Some(fields) = rest.as_object_mut() {
            fields.remove("items");
            fields.remove("omitted");
            for (k, v) in fields.iter() {
                write!(w.out, ",\n  {}: {}", serde_json::Value::from(k.as_str()), v)?;
            }
        }
        w.out.write_all(b"\n}\n")?;
        w.out.flush()
    }
}
