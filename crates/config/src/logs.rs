//! `[[logs]]`: log rules. Each watches a file or a container's output for a pattern; a match (or
//! `count` matches within `within`) is an alert with the matching lines, and a line matching
//! `resolve` — or, without one, a quiet spell — resolves it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::schema::{Severity, optional_duration};

/// `[[logs]]`: one log rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRule {
    /// The rule's name (unique): the subject of its alert, `log:<name>`.
    pub name: String,
    /// The file followed (one of `file`, `container`): across rotation and truncation, from its
    /// end when lookoutd starts.
    pub file: Option<PathBuf>,
    /// The container whose output (stdout and stderr) is followed (one of `file`, `container`).
    pub container: Option<String>,
    /// A regular expression a line must match.
    pub pattern: String,
    /// How loud its alert is.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// A regular expression whose match resolves the alert; without one, it resolves once no line
    /// has matched for `within` (10 minutes when `within` is not set).
    pub resolve: Option<String>,
    /// The window `count` matches are counted in.
    #[serde(default, deserialize_with = "optional_duration")]
    pub within: Option<Duration>,
    /// Matches within `within` that make an alert (1 ..= 10000).
    #[serde(default = "default_count")]
    pub count: u32,
    /// The group its alert goes to (sinks route by group).
    pub group: Option<String>,
}

fn default_severity() -> Severity {
    Severity::Warning
}

fn default_count() -> u32 {
    1
}

/// Where a rule reads its lines (exactly one of `file`, `container`, checked by [`crate::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource<'a> {
    /// A file, followed across rotation and truncation.
    File(&'a std::path::Path),
    /// A container's output, through the engine's log stream.
    Container(&'a str),
}

impl std::fmt::Display for LogSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogSource::File(path) => write!(f, "{}", path.display()),
            LogSource::Container(name) => write!(f, "container {name}"),
        }
    }
}

impl LogRule {
    /// Without a `resolve` pattern, the alert resolves after this long with no match: `within`,
    /// or 10 minutes.
    pub const DEFAULT_QUIET: Duration = Duration::from_secs(600);

    /// Where the rule reads; `None` only for a rule that did not come through [`crate::parse`].
    pub fn source(&self) -> Option<LogSource<'_>> {
        match (&self.file, &self.container) {
            (Some(file), None) => Some(LogSource::File(file)),
            (None, Some(name)) => Some(LogSource::Container(name)),
            _ => None,
        }
    }

    /// How long no line may match before an alert without `resolve` resolves.
    pub fn quiet_after(&self) -> Duration {
        self.within.unwrap_or(Self::DEFAULT_QUIET)
    }
}
