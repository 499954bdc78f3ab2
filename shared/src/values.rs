//! Helpers shared by the value languages (tags, `RETAIN`, `share-with`, config, events):
//! splitting a list value, and cutting what an error message may echo of an input.
//!
//! They live apart from the tag contract ([`crate::tags`]) so the value parsers
//! ([`crate::retention`], [`crate::share_target`]) need not depend on it: the tag contract
//! uses them, not the other way round.

/// `value` cut to `max` characters (and `…`): what an error message may echo of an input.
pub fn truncate(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Splits a list value on commas and/or white space, dropping empty entries.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_spaces() {
        let items: Vec<&str> = split_list(" a, b  c,,d ").collect();
        assert_eq!(items, ["a", "b", "c", "d"]);
    }

    #[test]
    fn long_values_are_cut_with_an_ellipsis() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("ééé", 2), "éé…");
    }
}
