//! Time helpers: slots (the schedule time an image stands for) and RFC 3339 text.
//!
//! A slot is the schedule event's time truncated to the minute. It names images
//! (`NAME/i-…/daily/20261122T0300Z`) and is written as `ami-lifecycle:slot`, so a
//! duplicate or retried event maps to the same image, and retention counts images by the
//! time they represent rather than the moment an API call happened to succeed.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// `t` truncated to the minute, in UTC.
pub fn slot_of(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(t)
}

/// `20261122T0300Z`: the slot as it appears in AMI names (no `:`, which names forbid).
pub fn slot_compact(slot: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute]Z");
    slot_of(slot).format(&fmt).unwrap_or_default()
}

/// Parses [`slot_compact`] text back.
pub fn parse_slot_compact(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute]Z");
    PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// RFC 3339 text (`2026-11-22T03:00:00Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn slots_truncate_to_the_minute_and_round_trip() {
        let t = datetime!(2026-11-22 03:00:41.5 UTC);
        assert_eq!(slot_of(t), datetime!(2026-11-22 03:00 UTC));
        assert_eq!(slot_compact(t), "20261122T0300Z");
        assert_eq!(
            parse_slot_compact("20261122T0300Z"),
            Some(datetime!(2026-11-22 03:00 UTC))
        );
        assert_eq!(rfc3339(slot_of(t)), "2026-11-22T03:00:00Z");
        assert_eq!(
            parse_rfc3339("2026-11-22T03:00:00Z"),
            Some(datetime!(2026-11-22 03:00 UTC))
        );
        assert_eq!(parse_slot_compact("yesterday"), None);
    }
}
