//! [`Lines`]: the report lines of one destination's copies. Destinations are copied to at
//! the same time (each its own CopyImage bucket and concurrent-copy cap), each writing its
//! own lines; the run's report takes them in destination order once all are done.

use crate::model::{ImageId, Region};
use crate::report::{Outcome, RunReport};

struct Line {
    region: Region,
    subject: String,
    image: Option<ImageId>,
    outcome: Outcome,
    reason: String,
}

/// Report lines kept aside, with the run's `incomplete` note if they set one.
#[derive(Default)]
pub(super) struct Lines {
    lines: Vec<Line>,
    incomplete: Option<String>,
}

impl Lines {
    /// As [`RunReport::push`].
    pub(super) fn push(
        &mut self,
        region: &Region,
        subject: impl Into<String>,
        image: Option<&ImageId>,
        outcome: Outcome,
        reason: impl Into<String>,
    ) {
        self.lines.push(Line {
            region: region.clone(),
            subject: subject.into(),
            image: image.cloned(),
            outcome,
            reason: reason.into(),
        });
    }

    /// Takes `other`'s lines after these (and its `incomplete` note unless one is set).
    pub(super) fn append(&mut self, other: Lines) {
        self.lines.extend(other.lines);
        if let Some(why) = other.incomplete {
            self.incomplete(&why);
        }
    }

    /// The run stopped short (deadline): the first reason given is kept.
    pub(super) fn incomplete(&mut self, why: &str) {
        self.incomplete.get_or_insert_with(|| why.to_owned());
    }

    /// Moves the lines (and the `incomplete` note, unless the report has one) into `report`.
    pub(super) fn into_report(self, report: &mut RunReport) {
        for l in self.lines {
            report.push(&l.region, l.subject, l.image.as_ref(), l.outcome, l.reason);
        }
        if let Some(why) = self.incomplete {
            report.incomplete.get_or_insert(why);
        }
    }
}
