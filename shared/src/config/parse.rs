//! The value parsers every section shares, each failing with a [`ConfigError`] that names
//! the variable, the value and what is accepted.

use super::ConfigError;
use crate::model::Region;
use crate::tags::{self, truncate};

/// Settings by name; a blank value counts as unset.
pub(super) type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

pub(super) const BOOL: &str = "true or false";

pub(super) fn err(
    variable: &'static str,
    value: &str,
    problem: impl Into<String>,
    accepted: &'static str,
) -> ConfigError {
    ConfigError {
        variable,
        value: truncate(value, 80),
        problem: problem.into(),
        accepted,
    }
}

pub(super) fn parse_bool(
    variable: &'static str,
    value: Option<&str>,
    default: bool,
) -> Result<bool, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(err(variable, v, "not a boolean", BOOL)),
        },
    }
}

/// A boolean setting read through `get`.
pub(super) fn bool_setting(
    get: &Lookup<'_>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    parse_bool(variable, get(variable).as_deref(), default)
}

pub(super) fn parse_u32(
    variable: &'static str,
    value: Option<&str>,
    default: u32,
    min: u32,
    max: u32,
    accepted: &'static str,
) -> Result<u32, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(n) => Err(err(variable, v, format!("{n} is out of range"), accepted)),
            Err(_) => Err(err(variable, v, "not a whole number", accepted)),
        },
    }
}

/// A whole-number setting in `min..=max` read through `get`.
pub(super) fn u32_setting(
    get: &Lookup<'_>,
    variable: &'static str,
    (default, min, max): (u32, u32, u32),
    accepted: &'static str,
) -> Result<u32, ConfigError> {
    parse_u32(
        variable,
        get(variable).as_deref(),
        default,
        min,
        max,
        accepted,
    )
}

pub(super) fn parse_regions(
    variable: &'static str,
    value: &str,
) -> Result<Vec<Region>, ConfigError> {
    tags::parse_regions(variable, value).map_err(|e| {
        err(
            variable,
            value,
            e.problem,
            "comma-separated region names, e.g. us-east-1,eu-west-1",
        )
    })
}
