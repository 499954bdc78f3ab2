//! The report's charts as inline SVG strings: a lineage's timeline ([`timeline`]) and a
//! region's storage per lineage ([`storage_bars`]). Every text is escaped with
//! [`super::html::escape`]: names and tags are user-controlled.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::html::escape;
use super::{ImageRow, LineageView, NextCleanup, Origin};

const WIDTH: f64 = 720.0;
const MARGIN: f64 = 24.0;

/// The CSS class of an image's mark: what the next cleanup does, else its state.
pub fn class_of(img: &ImageRow) -> &'static str {
    match (&img.next_cleanup, img.state.as_str()) {
        (NextCleanup::Retire(_), _) => "retire",
        (_, "pending") => "pending",
        (_, "disabled") => "disabled",
        (NextCleanup::Keep(_), _) if img.deprecation_time.is_some() => "deprecated",
        (NextCleanup::Keep(_), _) => "kept",
        _ => "other",
    }
}

/// A lineage's images on a time axis from its oldest image to `now`: a circle per image
/// made here, a diamond per copy, coloured by [`class_of`], a tick where a deprecation
/// time falls, a line at `now`; each mark's `<title>` says what it is.
pub fn timeline(lineage: &LineageView, now: OffsetDateTime) -> String {
    let height = 64.0;
    let y = 28.0;
    let start = lineage
        .images
        .iter()
        .map(|i| i.retention_time.min(i.created))
        .min()
        .unwrap_or(now);
    let end = lineage
        .images
        .iter()
        .filter_map(|i| i.deprecation_time)
        .chain(lineage.images.iter().map(|i| i.created))
        .chain([now])
        .max()
        .unwrap_or(now);
    let span = (end - start).as_seconds_f64().max(1.0);
    let x =
        |t: OffsetDateTime| MARGIN + (t - start).as_seconds_f64() / span * (WIDTH - 2.0 * MARGIN);
    let mut s = format!(
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="timeline of {}">"#,
        escape(&lineage.lineage)
    );
    let _ = write!(
        s,
        r#"<line class="axis" x1="{MARGIN}" y1="{y}" x2="{}" y2="{y}"/>"#,
        WIDTH - MARGIN
    );
    let nx = x(now);
    let _ = write!(
        s,
        r#"<line class="now" x1="{nx:.1}" y1="6" x2="{nx:.1}" y2="{}"/><text class="label" x="{nx:.1}" y="{}" text-anchor="end">now</text>"#,
        height - 18.0,
        height - 6.0
    );
    for t in [start, end] {
        let anchor = if t == start { "start" } else { "end" };
        let _ = write!(
            s,
            r#"<text class="label" x="{:.1}" y="12" text-anchor="{anchor}">{}</text>"#,
            x(t),
            escape(&day(t))
        );
    }
    for img in &lineage.images {
        let cx = x(img.retention_time);
        let class = class_of(img);
        let title = escape(&format!(
            "{} {} ({}), {}: {}",
            img.id,
            img.name,
            img.state,
            day(img.retention_time),
            next_text(&img.next_cleanup)
        ));
        if let Some(d) = img.deprecation_time {
            let dx = x(d);
            let _ = write!(
                s,
                r#"<line class="deprecation" x1="{dx:.1}" y1="{}" x2="{dx:.1}" y2="{}"><title>deprecation time of {}</title></line>"#,
                y - 10.0,
                y + 10.0,
                escape(&img.id)
            );
        }
        match img.origin {
            Origin::Created => {
                let _ = write!(
                    s,
                    r#"<circle class="mark {class}" cx="{cx:.1}" cy="{y}" r="6"><title>{title}</title></circle>"#
                );
            }
            Origin::Copied { .. } => {
                let _ = write!(
                    s,
                    r#"<polygon class="mark {class}" points="{:.1},{y} {cx:.1},{} {:.1},{y} {cx:.1},{}"><title>{title}</title></polygon>"#,
                    cx - 7.0,
                    y - 7.0,
                    cx + 7.0,
                    y + 7.0
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// A region's lineages as horizontal bars of stored GiB, each labelled with its monthly cost.
pub fn storage_bars(region: &str, lineages: &[LineageView]) -> String {
    let row = 22.0;
    #[allow(clippy::cast_precision_loss)]
    let height = row * lineages.len() as f64 + 8.0;
    let max = lineages.iter().map(|l| l.gib).max().unwrap_or(0).max(1);
    let label_w = 260.0;
    let bar_w = WIDTH - label_w - 170.0;
    let mut s = format!(
        r#"<svg class="storage" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="storage per lineage in {}">"#,
        escape(region)
    );
    for (i, l) in lineages.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let top = 4.0 + row * i as f64;
        #[allow(clippy::cast_precision_loss)]
        let w = (l.gib as f64 / max as f64 * bar_w).max(1.0);
        let _ = write!(
            s,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="bar" x="{label_w}" y="{top:.1}" width="{w:.1}" height="{:.1}"><title>{}: {} GiB</title></rect><text class="label" x="{:.1}" y="{:.1}">{} GiB · ${:.2}/month</text>"#,
            label_w - 6.0,
            top + 14.0,
            escape(&shorten(&l.lineage, 40)),
            row - 6.0,
            escape(&l.lineage),
            l.gib,
            label_w + w + 6.0,
            top + 14.0,
            l.gib,
            l.monthly_cost_usd
        );
    }
    s.push_str("</svg>");
    s
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn day(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// One line for what the next cleanup does with an image.
pub fn next_text(next: &NextCleanup) -> String {
    match next {
        NextCleanup::Keep(why) => format!("kept: {why}"),
        NextCleanup::Retire(what) => what.clone(),
        NextCleanup::Other { outcome, reason } => format!("{outcome}: {reason}"),
        NextCleanup::NotPlanned => "not in the cleanup plan".to_owned(),
    }
}
