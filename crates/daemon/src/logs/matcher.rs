//! A rule's decisions, line by line: whether a line counts, when `count` matches within `within`
//! make an alert, when a `resolve` line or a quiet spell ends it. Pure: every call takes `now`, so
//! it is tested with no clock and no sleep, and `lookout logs test` runs the very same code.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_config::LogRule;
use regex::Regex;

/// How many matching lines an alert carries (the last ones).
pub(crate) const LAST_LINES: usize = 3;
/// A line is cut to this many characters in an alert and in `/status`.
pub(crate) const LINE_CHARS: usize = 300;
/// While an alert fires, its text (its last lines) is refreshed at most this often.
pub(crate) const REFRESH: Duration = Duration::from_secs(60);
/// At most this many match times are kept for the window (a burst of more says the same).
const MAX_WINDOW: usize = 10_000;

/// What a line or the passing of time makes of a rule's alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The alert holds: fire it (`first`: it was not firing), with the text's facts.
    Fire(Firing),
    /// The alert no longer holds: by this `resolve` line, or (`None`) a quiet spell.
    Resolve(Option<String>),
}

/// The facts of a firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Firing {
    /// Whether it was not firing before.
    pub(crate) first: bool,
    /// Matches within the window (all since the alert fired when there is no window).
    pub(crate) matches: usize,
    /// The last matching lines, oldest first, each cut to [`LINE_CHARS`].
    pub(crate) lines: Vec<String>,
}

/// One rule's state.
#[derive(Debug)]
pub(crate) struct Matcher {
    pattern: Regex,
    resolve: Option<Regex>,
    count: usize,
    within: Option<Duration>,
    quiet: Duration,
    /// The times of the matches still in the window.
    recent: VecDeque<DateTime<Utc>>,
    /// The last matching lines.
    lines: VecDeque<String>,
    firing: bool,
    /// Matches since the alert fired.
    since_fired: usize,
    last_fired: Option<DateTime<Utc>>,
    /// The last match (or, for an alert found firing at start, the start).
    last_match: Option<DateTime<Utc>>,
    /// Lines the pattern matched.
    matched: u64,
}

impl Matcher {
    /// The matcher of `rule`; its patterns were checked by lookout-config, so an error here is a
    /// rule that did not come through it.
    pub(crate) fn new(rule: &LogRule) -> Result<Matcher, String> {
        let compile = |key: &str, p: &str| {
            Regex::new(p).map_err(|e| format!("logs rule `{}`: `{key}`: {e}", rule.name))
        };
        Ok(Matcher {
            pattern: compile("pattern", &rule.pattern)?,
            resolve: rule
                .resolve
                .as_deref()
                .map(|r| compile("resolve", r))
                .transpose()?,
            count: rule.count.max(1) as usize,
            within: rule.within,
            quiet: rule.quiet_after(),
            recent: VecDeque::new(),
            lines: VecDeque::new(),
            firing: false,
            since_fired: 0,
            last_fired: None,
            last_match: None,
            matched: 0,
        })
    }

    /// Its alert was found firing (in the store, at start): it goes on from there, and without a
    /// `resolve` pattern it resolves after a quiet spell from `now`.
    pub(crate) fn restore_firing(&mut self, now: DateTime<Utc>) {
        self.firing = true;
        self.last_fired = Some(now);
        self.last_match = Some(now);
    }

    /// Whether its alert fires.
    pub(crate) fn firing(&self) -> bool {
        self.firing
    }

    /// How many lines the pattern matched.
    pub(crate) fn matched(&self) -> u64 {
        self.matched
    }

    /// Whether `line` matches the rule's pattern.
    pub(crate) fn is_match(&self, line: &str) -> bool {
        self.pattern.is_match(line)
    }

    /// Whether `line` matches the rule's `resolve` pattern.
    pub(crate) fn is_resolve(&self, line: &str) -> bool {
        self.resolve.as_ref().is_some_and(|r| r.is_match(line))
    }

    /// One line read at `now`. A `resolve` line ends a firing alert (and is nothing otherwise: a
    /// connection that drops and comes back still counts its drops); a match counts, and fires
    /// once `count` are within the window.
    pub(crate) fn line(&mut self, line: &str, now: DateTime<Utc>) -> Option<Step> {
        if self.is_resolve(line) {
            if !self.firing {
                return None;
            }
            self.firing = false;
            self.recent.clear();
            self.since_fired = 0;
            return Some(Step::Resolve(Some(cut(line))));
        }
        if !self.is_match(line) {
            return None;
        }
        self.matched += 1;
        self.last_match = Some(now);
        self.lines.push_back(cut(line));
        while self.lines.len() > LAST_LINES {
            self.lines.pop_front();
        }
        self.recent.push_back(now);
        self.expire(now);
        while self.recent.len() > MAX_WINDOW {
            self.recent.pop_front();
        }
        if self.firing {
            self.since_fired += 1;
            let due = self
                .last_fired
                .is_none_or(|at| (now - at).to_std().is_ok_and(|d| d >= REFRESH));
            if !due {
                return None;
            }
            self.last_fired = Some(now);
            return Some(Step::Fire(self.firing_facts(false)));
        }
        if self.recent.len() < self.count {
            return None;
        }
        self.firing = true;
        self.since_fired = self.recent.len();
        self.last_fired = Some(now);
        Some(Step::Fire(self.firing_facts(true)))
    }

    /// The passing of time at `now`: without a `resolve` pattern, a firing alert resolves once no
    /// line has matched for the quiet spell.
    pub(crate) fn tick(&mut self, now: DateTime<Utc>) -> Option<Step> {
        self.expire(now);
        if !self.firing || self.resolve.is_some() {
            return None;
        }
        let quiet = self
            .last_match
            .is_none_or(|at| (now - at).to_std().is_ok_and(|d| d >= self.quiet));
        if !quiet {
            return None;
        }
        self.firing = false;
        self.recent.clear();
        self.since_fired = 0;
        Some(Step::Resolve(None))
    }

    /// Drops the match times that left the window.
    fn expire(&mut self, now: DateTime<Utc>) {
        if let Some(within) = self.within {
            while self
                .recent
                .front()
                .is_some_and(|at| (now - *at).to_std().is_ok_and(|d| d > within))
            {
                self.recent.pop_front();
            }
        }
    }

    fn firing_facts(&self, first: bool) -> Firing {
        Firing {
            first,
            matches: if self.within.is_some() {
                self.recent.len()
            } else {
                self.since_fired
            },
            lines: self.lines.iter().cloned().collect(),
        }
    }
}

/// `line` as an alert carries it: trimmed, control characters (a terminal's colours) dropped, cut
/// to [`LINE_CHARS`] characters.
pub(crate) fn cut(line: &str) -> String {
    let clean = strip_ansi(line.trim());
    let mut out: String = clean.chars().take(LINE_CHARS).collect();
    if clean.chars().nth(LINE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Drops ANSI escape sequences (`ESC [ … letter`) and other control characters but tabs.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c.is_control() && c != '\t' {
            continue;
        }
        out.push(c);
    }
    out
}

/// The text of `rule`'s alert for `firing`, reading from `source`.
pub(crate) fn alert_text(rule: &LogRule, firing: &Firing) -> String {
    let source = rule
        .source()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "?".into());
    let head = match rule.within {
        Some(w) if rule.count > 1 => format!(
            "📜 {}: {} matches within {} in {source}",
            rule.name,
            firing.matches,
            lookout_common::human_duration(w)
        ),
        _ if firing.matches > 1 => {
            format!("📜 {}: {} matches in {source}", rule.name, firing.matches)
        }
        _ => format!("📜 {} in {source}", rule.name),
    };
    match firing.lines.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => format!(
            "{head}, the last {}:\n{}",
            many.len(),
            many.iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
