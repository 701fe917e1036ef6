//! What an alert is about ([`AlertKey`]) and the root-cause folding rules keyed on it.

use lookout_store::AlertRecord;

/// What an alert is about: its rule (`interrupted_run`, `task-overdue`, `I1`,
/// `watchdog_circuit`, …) and its subject (a chat, a task, a target). Displayed as
/// `rule:subject`, the form stored in the `alerts` table, carried by notifications and shown by
/// `lookout alerts list`. A rule never holds a `:`; a subject may.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    /// The rule.
    pub rule: String,
    /// What it is about.
    pub subject: String,
}

impl AlertKey {
    /// The key of `rule` about `subject`.
    pub fn new(rule: impl Into<String>, subject: impl Into<String>) -> Self {
        let rule = rule.into();
        debug_assert!(
            !rule.is_empty() && !rule.contains(':'),
            "an alert rule is a name without `:`: {rule:?}"
        );
        AlertKey {
            rule,
            subject: subject.into(),
        }
    }

    /// Reads the stored form `rule:subject` back (split at the first `:`); `None` when it has no
    /// `:` or no rule.
    pub fn parse(stored: &str) -> Option<AlertKey> {
        let (rule, subject) = stored.split_once(':')?;
        (!rule.is_empty()).then(|| AlertKey {
            rule: rule.to_owned(),
            subject: subject.to_owned(),
        })
    }

    /// The key of a stored alert.
    pub fn of(record: &AlertRecord) -> AlertKey {
        AlertKey {
            rule: record.rule.clone(),
            subject: record.subject.clone(),
        }
    }
}

impl std::fmt::Display for AlertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.rule, self.subject)
    }
}

impl serde::Serialize for AlertKey {
    /// As its text form, `rule:subject`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl From<AlertKey> for String {
    fn from(k: AlertKey) -> String {
        k.to_string()
    }
}

impl From<&AlertKey> for String {
    fn from(k: &AlertKey) -> String {
        k.to_string()
    }
}

/// Something the subject of an alert needs in order to work (`docker engine`, `gateway`): the
/// relation a [`FoldRule`] is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dependency(pub &'static str);

/// One root-cause folding rule: while the alert `cause` fires, the alerts of the rules in `folds`
/// whose subject depends on `when` are folded under it — recorded, listed under it, named in its
/// reminders and its "resolved", and sent on their own only if they outlast it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldRule {
    /// The cause's alert (`watchdog_shared:docker engine`).
    pub cause: AlertKey,
    /// The rules folded under it (`task-failed`, `watchdog_circuit`, …).
    pub folds: &'static [&'static str],
    /// Only alerts whose subject depends on this (what the cause is about).
    pub when: Dependency,
    /// While the cause fires, the raiser's one-off messages about such a subject (a run starting,
    /// its heartbeats, its success) are noise and are dropped too; `false`: only the alerts of
    /// `folds` are folded, the rest is sent.
    pub drops_messages: bool,
}

impl FoldRule {
    /// Whether an alert of `rule` whose subject depends on `depends_on` folds under this cause.
    pub fn applies(&self, rule: &str, depends_on: &[Dependency]) -> bool {
        self.folds.contains(&rule) && depends_on.contains(&self.when)
    }
}
