//! [`render_html`]: [`Estate`] → one self-contained HTML page (inline CSS and SVG, no
//! script, no external resource), readable without JavaScript. Everything that comes from
//! the cloud — names, tag-derived lineages, reasons, account ids — goes through [`escape`].

use std::fmt::Write as _;

use super::svg::{self, class_of, day, next_text};
use super::{Estate, LineageView, NextCleanup, Origin, RegionView};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#1d2733;background:#fff}\
h1{font-size:1.6em}h2{border-bottom:2px solid #c9d3de;padding-bottom:4px;margin-top:32px}\
table{border-collapse:collapse;margin:8px 0;font-size:.85em}th,td{border:1px solid #d5dde6;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#eef2f6}.lineage{border:1px solid #d5dde6;border-radius:6px;padding:8px 14px;margin:14px 0}\
.notes{background:#fff8e1;border:1px solid #f0d98c;padding:6px 14px}\
svg .axis{stroke:#8a98a8;stroke-width:1}svg .now{stroke:#1d2733;stroke-dasharray:3 3}\
svg .label{font-size:11px;fill:#445566}svg .deprecation{stroke:#e08a00;stroke-width:2}\
svg .bar{fill:#4a7fb5}.mark{stroke:#1d2733;stroke-width:1}\
.kept{fill:#2e9e5b;background:#e3f4ea}.retire{fill:#d13c3c;background:#fbe4e4}\
.deprecated{fill:#e08a00;background:#fdf0dc}.disabled{fill:#8a98a8;background:#eceff2}\
.pending{fill:#4a7fb5;background:#e2ecf6}.other{fill:#9b59b6;background:#f1e6f6}\
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border-radius:3px}";

/// Escapes text for HTML element content and quoted attribute values (also valid inside
/// inline SVG).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page.
pub fn render_html(estate: &Estate) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let dep = escape(&estate.deployment);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>ami-lifecycle estate: {dep}</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        h,
        "<header><h1>The estate of deployment {dep}</h1><p>Generated {} UTC. Costs at ${} per GiB-month of snapshot storage (PRICE_PER_GIB_MONTH), counted at volume size: snapshots are incremental, so this is an upper bound.</p></header>",
        escape(&day(estate.generated)),
        estate.price_per_gib_month
    );
    summary(&mut h, estate);
    if !estate.notes.is_empty() {
        h.push_str("<section class=\"notes\" id=\"notes\"><h2>Notes</h2><ul>");
        for n in &estate.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></section>");
    }
    h.push_str("<p class=\"legend\">Marks: <span class=\"kept\">kept</span><span class=\"deprecated\">deprecated, kept</span><span class=\"retire\">the next cleanup retires it</span><span class=\"pending\">pending</span><span class=\"disabled\">disabled</span><span class=\"other\">deferred, failed or not judged</span> — circle: made here, diamond: copied from another region; orange tick: deprecation time.</p>");
    for region in &estate.regions {
        region_section(&mut h, region, estate);
    }
    shares(&mut h, estate);
    h.push_str("</body></html>\n");
    h
}

fn summary(h: &mut String, estate: &Estate) {
    let lineages: Vec<&LineageView> = estate.regions.iter().flat_map(|r| &r.lineages).collect();
    let images: usize = lineages.iter().map(|l| l.images.len()).sum();
    let gib: u64 = lineages.iter().map(|l| l.gib).sum();
    let cost: f64 = lineages.iter().map(|l| l.monthly_cost_usd).sum();
    let planned: usize = lineages.iter().map(|l| l.planned().count()).sum();
    let _ = write!(
        h,
        "<section id=\"summary\"><h2>Summary</h2><table><tr><th>Regions</th><th>Lineages</th><th>Images</th><th>Stored</th><th>Monthly cost</th><th>Next cleanup retires</th></tr><tr><td>{}</td><td>{}</td><td>{images}</td><td>{gib} GiB</td><td>${cost:.2}</td><td>{planned} images</td></tr></table></section>",
        estate.regions.len(),
        lineages.len()
    );
}

fn region_section(h: &mut String, region: &RegionView, estate: &Estate) {
    let name = escape(&region.region);
    let _ = write!(
        h,
        "<section class=\"region\" id=\"region-{name}\" data-region=\"{name}\"><h2>Region {name}</h2>"
    );
    if region.lineages.is_empty() {
        h.push_str("<p class=\"empty\">No images of this deployment in this region.</p>");
    } else {
        let _ = write!(
            h,
            "<figure class=\"storage-chart\"><figcaption>Storage and monthly cost per lineage</figcaption>{}</figure>",
            svg::storage_bars(&region.region, &region.lineages)
        );
    }
    for lineage in &region.lineages {
        lineage_article(h, lineage, estate);
    }
    if !region.other_plan.is_empty() {
        h.push_str("<div class=\"other-plan\"><h3>Other lines of the cleanup plan</h3><table><tr><th>Subject</th><th>Outcome</th><th>Reason</th></tr>");
        for line in &region.other_plan {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&line.subject),
                escape(&line.outcome),
                escape(&line.reason)
            );
        }
        h.push_str("</table></div>");
    }
    h.push_str("</section>");
}

fn lineage_article(h: &mut String, l: &LineageView, estate: &Estate) {
    let name = escape(&l.lineage);
    let _ = write!(
        h,
        "<article class=\"lineage\" data-lineage=\"{name}\"><h3>Lineage {name}</h3><p>Rule: {}. {} images, {} GiB, ${:.2} per month.</p>",
        escape(&l.rule),
        l.images.len(),
        l.gib,
        l.monthly_cost_usd
    );
    let _ = write!(
        h,
        "<figure class=\"timeline-chart\"><figcaption>Timeline</figcaption>{}</figure>",
        svg::timeline(l, estate.generated)
    );
    h.push_str("<table class=\"images\"><tr><th>Image</th><th>Name</th><th>State</th><th>Origin</th><th>Slot / created</th><th>Deprecation</th><th>GiB</th><th>Shared with</th><th>Next cleanup</th></tr>");
    for img in &l.images {
        let origin = match &img.origin {
            Origin::Created => "created here".to_owned(),
            Origin::Copied {
                from_region,
                from_image,
            } => format!("copied from {from_image} in {from_region}"),
        };
        let _ = write!(
            h,
            "<tr class=\"image {}\" data-image=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            class_of(img),
            escape(&img.id),
            escape(&img.id),
            escape(&img.name),
            escape(&img.state),
            escape(&origin),
            escape(&day(img.retention_time)),
            escape(&day(img.created)),
            img.deprecation_time.map(day).map(|d| escape(&d)).unwrap_or_default(),
            img.size_gib,
            escape(&img.shared_with.join(", ")),
            escape(&next_text(&img.next_cleanup))
        );
    }
    h.push_str("</table><div class=\"next-cleanup\"><h4>The next cleanup</h4>");
    let planned: Vec<_> = l.planned().collect();
    if planned.is_empty() {
        h.push_str("<p>retires nothing in this lineage.</p>");
    } else {
        h.push_str("<ul>");
        for img in planned {
            if let NextCleanup::Retire(what) = &img.next_cleanup {
                let _ = write!(
                    h,
                    "<li class=\"planned\">{}: {}</li>",
                    escape(&img.id),
                    escape(what)
                );
            }
        }
        h.push_str("</ul>");
    }
    h.push_str("</div></article>");
}

fn shares(h: &mut String, estate: &Estate) {
    h.push_str("<section id=\"shares\"><h2>Shares per account</h2>");
    if estate.shares.is_empty() {
        h.push_str("<p class=\"empty\">No image of this deployment is shared.</p>");
    } else {
        h.push_str(
            "<table><tr><th>Shared with</th><th>Images</th><th>Region, lineage, image</th></tr>",
        );
        for s in &estate.shares {
            let list: Vec<String> = s
                .images
                .iter()
                .map(|(r, l, i)| escape(&format!("{r} {l} {i}")))
                .collect();
            let _ = write!(
                h,
                "<tr class=\"grantee\" data-grantee=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.grantee),
                escape(&s.grantee),
                s.images.len(),
                list.join("<br>")
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
}
