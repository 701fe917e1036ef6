//! The report as people read it: one line of summary per section and its details as tables.
//!
//! Both the page at `/` and `lookout status` show a section through [`section_view`], so the two
//! never disagree on what "healthy" reads like. It works on the report's JSON (the `/status`
//! contract), which is what the CLI receives and what the daemon serialises: full values stay in
//! the JSON; here instants become relative ("2h ago", "in 5m") and commit ids short.
//!
//! ```
//! use lookout_status_collect::view::section_view;
//! use serde_json::json;
//!
//! let now = "2026-01-01T12:00:00Z".parse().unwrap();
//! let channels = json!({
//!     "slack": {"connected": true, "reason": null, "since": "2026-01-01T10:00:00Z"},
//!     "telegram": {"connected": false, "reason": "token revoked", "since": "2026-01-01T11:57:00Z"},
//! });
//! let v = section_view("channels", &channels, "warn", now);
//! assert_eq!(v.summary, "1 of 2 connected; telegram down 3m (token revoked)");
//! assert_eq!(v.tables[0].rows.len(), 2);
//! ```

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::Verdict;

/// The order people read sections in: what runs, what talks, what is scheduled, what heals.
pub const SECTION_ORDER: &[&str] = &[
    "service",
    "deploy",
    "repos",
    "channels",
    "messages",
    "queue",
    "groups",
    "runs",
    "tasks",
    "host_jobs",
    "watchdog",
    "docker",
    "gateway",
    "boot",
    "notifications",
    "flow",
    "logs",
];

/// One section as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionView {
    /// The section's name in the report (`repos`).
    pub name: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// One line: "main @ 5fda35b fix: dedupe routing — clean, 0 unpushed, deployed 2h ago".
    pub summary: String,
    /// Its details; empty when the summary says it all.
    pub tables: Vec<Table>,
}

/// A table of details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// What its rows are ("worktrees").
    pub title: &'static str,
    /// Column headings.
    pub columns: Vec<&'static str>,
    /// Cells, one `Vec` per row, as many as `columns`.
    pub rows: Vec<Vec<String>>,
}

/// A verdict from its JSON spelling; anything unknown reads as `fail`, never as a pass.
pub fn verdict_of(s: &str) -> Verdict {
    match s {
        "pass" => Verdict::Pass,
        "warn" => Verdict::Warn,
        _ => Verdict::Fail,
    }
}

/// Every section of a `/status` report, in [`SECTION_ORDER`] (others after, by name).
pub fn sections(report: &Value, now: DateTime<Utc>) -> Vec<SectionView> {
    let empty = Map::new();
    let data = report
        .get("sections")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let status = report
        .get("section_status")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut names: Vec<&String> = data.keys().collect();
    names.sort_by_key(|n| {
        (
            SECTION_ORDER
                .iter()
                .position(|o| o == n)
                .unwrap_or(usize::MAX),
            n.as_str(),
        )
    });
    names
        .into_iter()
        .map(|n| {
            let v = status.get(n).and_then(Value::as_str).unwrap_or("pass");
            section_view(n, &data[n], v, now)
        })
        .collect()
}

/// One section as people read it; `verdict` is its `section_status`.
pub fn section_view(name: &str, data: &Value, verdict: &str, now: DateTime<Utc>) -> SectionView {
    let (summary, tables) = match data.get("error").and_then(Value::as_str) {
        Some(e) if !matches!(name, "gateway") => (format!("unavailable: {e}"), Vec::new()),
        _ => match name {
            "service" => (service(data), Vec::new()),
            "deploy" => (deploy(data, now), Vec::new()),
            "repos" => repos(data),
            "channels" => channels(data, now),
            "messages" => (messages(data, now), Vec::new()),
            "queue" => queue(data),
            "groups" => (groups(data), Vec::new()),
            "tasks" | "host_jobs" => tasks(data, now),
            "watchdog" => watchdog(data, now),
            "gateway" => gateway(data),
            "boot" => boot(data, now),
            "notifications" => (notifications(data), Vec::new()),
            "flow" => (flow(data), Vec::new()),
            "logs" => (logs(data), Vec::new()),
            "runs" => runs(data, now),
            "docker" => (docker(data, now), Vec::new()),
            _ => (generic(data), Vec::new()),
        },
    };
    SectionView {
        name: name.to_owned(),
        verdict: verdict_of(verdict),
        summary,
        tables,
    }
}

/// An RFC 3339 instant relative to `now` ("3m ago", "in 2h 5m"); "—" when absent, the text
/// itself when it is not an instant.
pub fn relative(v: Option<&Value>, now: DateTime<Utc>) -> String {
    let Some(s) = v.and_then(Value::as_str) else {
        return "—".into();
    };
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => {
            let d = now - t.with_timezone(&Utc);
            if d >= chrono::TimeDelta::zero() {
                format!("{} ago", age(d))
            } else {
                format!("in {}", age(-d))
            }
        }
        Err(_) => s.to_owned(),
    }
}

/// A span in at most two units, the second dropped when zero: "45s", "3m", "2h", "2h 5m", "1d 3h".
pub fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let two = |big: i64, bu: &str, small: i64, su: &str| {
        if small == 0 {
            format!("{big}{bu}")
        } else {
            format!("{big}{bu} {small}{su}")
        }
    };
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => two(s / 3600, "h", (s % 3600) / 60, "m"),
        s => two(s / 86_400, "d", (s % 86_400) / 3600, "h"),
    }
}

/// A commit id as people quote it: its first 7 characters.
pub fn short_sha(s: &str) -> &str {
    s.get(..7).unwrap_or(s)
}

fn text<'a>(d: &'a Value, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

fn num(d: &Value, k: &str) -> Option<i64> {
    d.get(k).and_then(Value::as_i64)
}

fn flag(d: &Value, k: &str) -> bool {
    d.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn yes(b: bool) -> String {
    if b { "yes".into() } else { "—".into() }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => yes(*b),
        Some(other) => other.to_string(),
    }
}

fn service(d: &Value) -> String {
    let up = num(d, "uptime_seconds")
        .map(|s| lookout_common::human_duration(std::time::Duration::from_secs(s.max(0) as u64)))
        .unwrap_or_else(|| "?".into());
    let version = text(d, "version").unwrap_or("?");
    match text(d, "status") {
        Some("ok") | None => format!("up {up}, version {version}"),
        Some(other) => format!("{}, up {up}, version {version}", other.replace('_', " ")),
    }
}

/// "main @ 5fda35b fix: dedupe — clean, 0 unpushed to origin/main"
fn head_line(d: &Value) -> String {
    let at = match (text(d, "branch"), text(d, "head_sha")) {
        (Some(b), Some(s)) => format!("{b} @ {}", short_sha(s)),
        (None, Some(s)) => format!("detached @ {}", short_sha(s)),
        (Some(b), None) => format!("{b} (no commit yet)"),
        (None, None) => "no commit yet".into(),
    };
    let msg = text(d, "head_commit")
        .map(|m| format!(" {m}"))
        .unwrap_or_default();
    let state = if flag(d, "dirty") { "dirty" } else { "clean" };
    let unpushed = match (num(d, "unpushed_commits"), text(d, "upstream")) {
        (Some(n), Some(up)) => format!(", {n} unpushed to {up}"),
        (Some(n), None) => format!(", {n} unpushed"),
        (None, _) => ", no upstream".into(),
    };
    format!("{at}{msg} — {state}{unpushed}")
}

fn deploy(d: &Value, now: DateTime<Utc>) -> String {
    let head = head_line(d);
    let deployed = match text(d, "last_deploy_sha") {
        None => "never deployed".to_owned(),
        Some(sha) if Some(sha) == text(d, "head_sha") => {
            format!("deployed {}", relative(d.get("last_deploy_at"), now))
        }
        Some(sha) => format!(
            "HEAD is not what was deployed ({} {})",
            short_sha(sha),
            relative(d.get("last_deploy_at"), now)
        ),
    };
    format!("{head}, {deployed}")
}

fn repos(d: &Value) -> (String, Vec<Table>) {
    let Some(repos) = d.as_object().filter(|m| !m.is_empty()) else {
        return ("no repository configured".into(), Vec::new());
    };
    let mut parts = Vec::new();
    let mut rows = Vec::new();
    for (name, r) in repos {
        if let Some(e) = text(r, "error") {
            parts.push(format!("{name}: cannot be read ({e})"));
            continue;
        }
        let wts = r.get("worktrees").and_then(Value::as_object);
        let mut line = format!("{name}: {}", head_line(r));
        let n = wts.map_or(0, |w| w.len()) as i64;
        if n > 0 {
            let conflicted: Vec<&str> = wts
                .into_iter()
                .flatten()
                .filter(|(_, w)| flag(w, "conflict"))
                .map(|(n, _)| n.as_str())
                .collect();
            line.push_str(&format!(", {}", plural(n, "worktree", "worktrees")));
            if !conflicted.is_empty() {
                line.push_str(&format!(" ({} in conflict)", conflicted.join(", ")));
            }
        }
        parts.push(line);
        for (wt, w) in wts.into_iter().flatten() {
            rows.push(vec![
                name.clone(),
                wt.clone(),
                text(w, "branch").unwrap_or("detached").to_owned(),
                text(w, "sha").map(short_sha).unwrap_or("—").to_owned(),
                cell(w.get("ahead")),
                cell(w.get("behind")),
                yes(flag(w, "dirty")),
                yes(flag(w, "conflict")),
                cell(w.get("error")),
            ]);
        }
    }
    let tables = if rows.is_empty() {
        Vec::new()
    } else {
        vec![Table {
            title: "worktrees",
            columns: vec![
                "repository",
                "worktree",
                "branch",
                "commit",
                "ahead",
                "behind",
                "dirty",
                "conflict",
                "error",
            ],
            rows,
        }]
    };
    (parts.join("; "), tables)
}

fn channels(d: &Value, now: DateTime<Utc>) -> (String, Vec<Table>) {
    let Some(chans) = d.as_object().filter(|m| !m.is_empty()) else {
        return ("no channel reported yet".into(), Vec::new());
    };
    let up = chans.values().filter(|c| flag(c, "connected")).count();
    let mut s = format!("{up} of {} connected", chans.len());
    let mut rows = Vec::new();
    for (name, c) in chans {
        let since = relative(c.get("since"), now);
        if !flag(c, "connected") {
            let age = since.trim_end_matches(" ago");
            s.push_str(&format!("; {name} down {age}"));
            if let Some(r) = text(c, "reason") {
                s.push_str(&format!(" ({r})"));
            }
        }
        rows.push(vec![
            name.clone(),
            if flag(c, "connected") {
                "connected".into()
            } else {
                "disconnected".into()
            },
            since,
            cell(c.get("reason")),
        ]);
    }
    let table = Table {
        title: "channels",
        columns: vec!["channel", "state", "since", "reason"],
        rows,
    };
    (s, vec![table])
}

fn messages(d: &Value, now: DateTime<Utc>) -> String {
    let mut s = format!(
        "{} in, {} out, {} in flight",
        num(d, "total_inbound").unwrap_or(0),
        num(d, "total_outbound").unwrap_or(0),
        num(d, "in_flight").unwrap_or(0)
    );
    if let Some(n) = num(d, "in_flight_too_long").filter(|n| *n > 0) {
        s.push_str(&format!(" ({n} unanswered too long)"));
    }
    let pending = num(d, "pending_deliveries").unwrap_or(0);
    if pending > 0 {
        s.push_str(&format!(
            ", {} pending",
            plural(pending, "delivery", "deliveries")
        ));
    }
    if let Some(n) = num(d, "failed_deliveries").filter(|n| *n > 0) {
        s.push_str(&format!(", {n} failed"));
    }
    if d.get("last_received_at").is_some_and(|v| !v.is_null()) {
        s.push_str(&format!(
            "; last received {}",
            relative(d.get("last_received_at"), now)
        ));
    }
    s
}

fn queue(d: &Value) -> (String, Vec<Table>) {
    let active = num(d, "active_containers").unwrap_or(0);
    let mut s = plural(active, "active container", "active containers");
    if let Some(max) = num(d, "max_concurrent") {
        s.push_str(&format!(" of {max}"));
    }
    s.push_str(&format!(
        ", {} waiting",
        plural(num(d, "groups_waiting").unwrap_or(0), "group", "groups")
    ));
    let rows: Vec<Vec<String>> = d
        .get("per_group")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(g, q)| {
            vec![
                g.clone(),
                yes(flag(q, "active")),
                if flag(q, "is_task") {
                    "task".into()
                } else {
                    "messages".into()
                },
                cell(q.get("pending_tasks")),
                yes(flag(q, "pending_messages")),
            ]
        })
        .collect();
    let tables = if rows.is_empty() {
        Vec::new()
    } else {
        vec![Table {
            title: "groups",
            columns: vec![
                "group",
                "active",
                "running",
                "tasks waiting",
                "messages waiting",
            ],
            rows,
        }]
    };
    (s, tables)
}

fn groups(d: &Value) -> String {
    format!(
        "{}, {}",
        plural(num(d, "total").unwrap_or(0), "group", "groups"),
        plural(
            num(d, "active_sessions").unwrap_or(0),
            "active session",
            "active sessions"
        )
    )
}

fn tasks(d: &Value, now: DateTime<Utc>) -> (String, Vec<Table>) {
    let Some(list) = d.as_array().filter(|a| !a.is_empty()) else {
        return ("none scheduled".into(), Vec::new());
    };
    let mut parts = vec![plural(list.len() as i64, "scheduled", "scheduled")];
    let overdue: Vec<String> = list
        .iter()
        .filter(|t| flag(t, "overdue"))
        .map(|t| {
            format!(
                "{} overdue {}",
                text(t, "name").unwrap_or("?"),
                relative(t.get("next_run"), now).trim_end_matches(" ago")
            )
        })
        .collect();
    parts.extend(overdue);
    let failed: Vec<&str> = list
        .iter()
        .filter(|t| {
            matches!(
                text(t, "last_result"),
                Some("failed" | "timed_out" | "interrupted" | "lost")
            )
        })
        .filter_map(|t| text(t, "name"))
        .collect();
    if !failed.is_empty() {
        parts.push(format!("last run failed: {}", failed.join(", ")));
    }
    let running: Vec<&str> = list
        .iter()
        .filter(|t| flag(t, "running"))
        .filter_map(|t| text(t, "name"))
        .collect();
    if !running.is_empty() {
        parts.push(format!("running: {}", running.join(", ")));
    }
    if let Some(next) = list
        .iter()
        .filter(|t| !flag(t, "overdue") && text(t, "status") == Some("active"))
        .filter_map(|t| Some((text(t, "next_run")?, t)))
        .min_by_key(|(at, _)| *at)
    {
        parts.push(format!(
            "next: {} {}",
            text(next.1, "name").unwrap_or("?"),
            relative(Some(&Value::String(next.0.to_owned())), now)
        ));
    }
    let rows = list
        .iter()
        .map(|t| {
            vec![
                cell(t.get("name")),
                format!(
                    "{} {}",
                    text(t, "schedule_type").unwrap_or(""),
                    text(t, "schedule_value").unwrap_or("")
                )
                .trim()
                .to_owned(),
                cell(t.get("status")),
                relative(t.get("next_run"), now),
                relative(t.get("last_run"), now),
                if flag(t, "running") {
                    "running".into()
                } else {
                    cell(t.get("last_result"))
                },
            ]
        })
        .collect();
    let table = Table {
        title: "schedule",
        columns: vec![
            "name", "schedule", "status", "next run", "last run", "result",
        ],
        rows,
    };
    (parts.join("; "), vec![table])
}

fn target_state(t: &Value) -> &'static str {
    if flag(t, "circuit_open") {
        "circuit open"
    } else if !flag(t, "healthy") {
        if num(t, "tier").unwrap_or(0) > 0 {
            "healing"
        } else {
            "unhealthy"
        }
    } else {
        "healthy"
    }
}

fn watchdog(d: &Value, now: DateTime<Utc>) -> (String, Vec<Table>) {
    let Some(targets) = d.as_object().filter(|m| !m.is_empty()) else {
        return ("no target configured".into(), Vec::new());
    };
    let healthy = targets.values().filter(|t| flag(t, "healthy")).count();
    let mut s = format!("{healthy} of {} healthy", targets.len());
    let mut rows = Vec::new();
    for (name, t) in targets {
        let state = target_state(t);
        if state != "healthy" {
            s.push_str(&format!("; {name} {state}"));
            if let Some(r) = text(t, "circuit_reason").filter(|_| state == "circuit open") {
                s.push_str(&format!(" ({r})"));
            }
        }
        let next = match (text(t, "next_action"), t.get("next_action_at")) {
            (Some(a), Some(at)) if !at.is_null() => format!("{a} ({})", relative(Some(at), now)),
            (Some(a), _) => a.to_owned(),
            (None, _) => "—".into(),
        };
        rows.push(vec![
            name.clone(),
            cell(t.get("kind")),
            state.to_owned(),
            cell(t.get("tier")),
            next,
            relative(t.get("last_action_at"), now),
            cell(t.get("observation")),
        ]);
    }
    let table = Table {
        title: "targets",
        columns: vec![
            "target",
            "kind",
            "state",
            "tier",
            "next action",
            "last action",
            "last probe saw",
        ],
        rows,
    };
    (s, vec![table])
}

fn gateway(d: &Value) -> (String, Vec<Table>) {
    let Some(mode) = text(d, "mode") else {
        return ("not configured".into(), Vec::new());
    };
    let containers = d.get("containers").and_then(Value::as_object);
    let total = containers.map_or(0, |c| c.len());
    let running = containers
        .into_iter()
        .flatten()
        .filter(|(_, c)| text(c, "state") == Some("running"))
        .count();
    let mut s = format!("{mode}: {running} of {total} containers running");
    match (num(d, "healthy_models"), num(d, "unhealthy_models")) {
        (Some(h), Some(u)) => s.push_str(&format!(", {h} models healthy, {u} unhealthy")),
        (Some(h), None) => s.push_str(&format!(", {h} models healthy")),
        _ => {}
    }
    if let Some(e) = text(d, "health_error").or(text(d, "error")) {
        s.push_str(&format!("; health: {e}"));
    }
    let rows: Vec<Vec<String>> = containers
        .into_iter()
        .flatten()
        .map(|(n, c)| {
            vec![
                n.clone(),
                text(c, "state").unwrap_or("?").replace('_', " "),
                cell(c.get("health")),
            ]
        })
        .collect();
    let tables = if rows.is_empty() {
        Vec::new()
    } else {
        vec![Table {
            title: "containers",
            columns: vec!["container", "state", "health"],
            rows,
        }]
    };
    (s, tables)
}

fn boot(d: &Value, now: DateTime<Utc>) -> (String, Vec<Table>) {
    let Some(services) = d.as_object().filter(|m| !m.is_empty()) else {
        return ("no service reported a start".into(), Vec::new());
    };
    let mut parts = Vec::new();
    let mut rows = Vec::new();
    for (name, b) in services {
        let failed = num(b, "failed_in_a_row").unwrap_or(0);
        let latest = text(b, "latest").unwrap_or("?");
        if failed > 0 {
            let mut p = format!(
                "{name} failed {} in a row",
                plural(failed, "start", "starts")
            );
            if let Some(c) = text(b, "last_cause") {
                p.push_str(&format!(": {c}"));
            }
            parts.push(p);
        } else {
            parts.push(format!(
                "{name} {latest} {}",
                relative(b.get("last_ready_at").or(b.get("latest_started_at")), now)
            ));
        }
        rows.push(vec![
            name.clone(),
            latest.to_owned(),
            relative(b.get("latest_started_at"), now),
            failed.to_string(),
            cell(b.get("last_cause")),
        ]);
    }
    let table = Table {
        title: "services",
        columns: vec![
            "service",
            "latest",
            "started",
            "failed in a row",
            "last cause",
        ],
        rows,
    };
    (parts.join("; "), vec![table])
}

fn notifications(d: &Value) -> String {
    format!(
        "{} pending, {}",
        num(d, "pending_deliveries").unwrap_or(0),
        plural(
            num(d, "dead_letters").unwrap_or(0),
            "dead letter",
            "dead letters"
        )
    )
}

/// "2 channels followed, 0 quiet, 0 chats waiting for an answer".
fn flow(d: &Value) -> String {
    let mut out = format!(
        "{} followed, {} quiet, {} waiting for an answer",
        plural(
            num(d, "channels_followed").unwrap_or(0),
            "channel",
            "channels"
        ),
        num(d, "quiet_channels").unwrap_or(0),
        plural(num(d, "unanswered_chats").unwrap_or(0), "chat", "chats"),
    );
    let late = d
        .get("unconfirmed_chats")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if late > 0 {
        out.push_str(&format!(
            ", {} with deliveries never confirmed",
            plural(late as i64, "chat", "chats")
        ));
    }
    if d.get("catching_up").and_then(Value::as_bool) == Some(true) {
        out.push_str(" (catching up with the log)");
    }
    out
}

/// "3 rules, 1 firing; last match: config-renamed: …".
fn logs(d: &Value) -> String {
    let mut out = format!(
        "{}, {} firing",
        plural(num(d, "rules").unwrap_or(0), "rule", "rules"),
        num(d, "firing").unwrap_or(0)
    );
    if let Some(last) = d.get("last_match").and_then(Value::as_str) {
        out.push_str(&format!("; last match: {last}"));
    }
    out
}

/// "2 open: nightly 3m, container active; sync 1m, process active", and a table of them.
fn runs(d: &Value, now: DateTime<Utc>) -> (String, Vec<Table>) {
    let list = d
        .get("list")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        return ("no host run open".into(), Vec::new());
    }
    let mut parts = Vec::new();
    let mut rows = Vec::new();
    for r in &list {
        let name = text(r, "name").unwrap_or("?");
        let state = text(r, "state").unwrap_or("?");
        let since = relative(r.get("started_at"), now);
        let what = match text(r, "watched") {
            Some(w) => format!("{} {state}", w.split(' ').next().unwrap_or(w)),
            None => state.to_owned(),
        };
        parts.push(format!("{name} {}, {what}", since.trim_end_matches(" ago")));
        rows.push(vec![
            name.to_owned(),
            cell(r.get("group")),
            since,
            cell(r.get("watched")),
            state.to_owned(),
            cell(
                r.get("last_output")
                    .filter(|v| !v.is_null())
                    .or(r.get("progress")),
            ),
        ]);
    }
    let table = Table {
        title: "runs",
        columns: vec!["run", "group", "started", "watched", "state", "last output"],
        rows,
    };
    (
        format!("{} open: {}", list.len(), parts.join("; ")),
        vec![table],
    )
}

/// "event stream connected 3h ago; following agent-*, label:x; 3 events, last 2m ago".
fn docker(d: &Value, now: DateTime<Utc>) -> String {
    let following = d
        .get("following")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let stream = text(d, "stream").unwrap_or("?");
    let mut out = format!("event stream {stream} {}", relative(d.get("since"), now));
    if let Some(e) = text(d, "last_error") {
        out.push_str(&format!(": {e}"));
    }
    out.push_str(&format!(
        "; following {following}; {}",
        plural(num(d, "events").unwrap_or(0), "event", "events")
    ));
    if d.get("last_event_at").is_some_and(|v| !v.is_null()) {
        out.push_str(&format!(", last {}", relative(d.get("last_event_at"), now)));
    }
    out
}

/// A section this module does not know: its scalar fields.
fn generic(d: &Value) -> String {
    match d.as_object() {
        Some(o) => o
            .iter()
            .filter(|(_, v)| !v.is_object() && !v.is_array() && !v.is_null())
            .map(|(k, v)| format!("{k} {}", cell(Some(v))))
            .collect::<Vec<_>>()
            .join(", "),
        None => cell(Some(d)),
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
