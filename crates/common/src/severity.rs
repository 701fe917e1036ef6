//! How bad something is.

use std::fmt;
use std::str::FromStr;

/// How bad something is; a sink takes what is at or above its `min_severity`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record: a run starting or finishing well, a recovery, a closed circuit.
    #[default]
    Info,
    /// Needs a look: one run failed, a heal action, something degraded.
    Warning,
    /// Needs action now: something is down or keeps going wrong.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not `info`, `warning` or `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}`; expected info, warning or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            other => Err(UnknownSeverity(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_orders() {
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap_or_default(),
                format!("\"{s}\"")
            );
        }
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!(
            "fatal".parse::<Severity>().unwrap_err().to_string(),
            "unknown severity `fatal`; expected info, warning or critical"
        );
    }
}
