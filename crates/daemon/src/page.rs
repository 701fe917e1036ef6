//! The page at `/`: what a person reads at a glance. The verdict and its reasons, firing alerts
//! first (folded ones under their cause), then a card per section with its one-line summary, a
//! 24-hour strip of its stored verdicts and its details in tables. Server-rendered, no script, no
//! external asset, light and dark; every value from the report or the store is HTML-escaped.
//!
//! The summaries and tables come from [`lookout_status_collect::view`], the same place the
//! terminal's `lookout status` reads them from.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use lookout_notify::alerts::AlertView;
use lookout_status_collect::Verdict;
use lookout_status_collect::view::{self, SectionView};
use lookout_store::{HISTORY_BUCKET, HistorySample, history_bucket};
use serde_json::Value;

use crate::http::AppState;

/// How often the history sampler records a report, and how long samples are kept.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
const KEEP_HISTORY: chrono::TimeDelta = chrono::TimeDelta::days(8);

/// Everything the page shows, gathered once per request.
pub(crate) struct PageData<'a> {
    /// The `/status` report as JSON.
    pub(crate) report: &'a Value,
    /// Every alert with how it shows.
    pub(crate) alerts: &'a [AlertView],
    /// The last 24 hours of stored section verdicts.
    pub(crate) history: &'a [HistorySample],
    /// The incidents of the last 30 days (and any still open), newest first.
    pub(crate) incidents: &'a [crate::incidents::IncidentView],
    /// What the strips and relative times are measured from.
    pub(crate) now: DateTime<Utc>,
}

/// Gathers the page's data and renders it. A store that cannot be read leaves out alerts and
/// history (said on the page), never the report.
pub(crate) async fn render(state: &AppState) -> String {
    let report = state.status().report(None).await;
    let json = serde_json::to_value(&*report).unwrap_or(Value::Null);
    let now = Utc::now();
    let mut problems = Vec::new();
    let alerts = state.alerts().list(now).await.unwrap_or_else(|e| {
        problems.push(format!("alerts cannot be read: {e}"));
        Vec::new()
    });
    let history = state
        .store()
        .history_since(now - chrono::TimeDelta::hours(24))
        .await
        .unwrap_or_else(|e| {
            problems.push(format!("history cannot be read: {e}"));
            Vec::new()
        });
    let since =
        now - chrono::Duration::from_std(crate::incidents::DEFAULT_SINCE).unwrap_or_default();
    let incidents = crate::incidents::views(state.store(), since, now)
        .await
        .unwrap_or_else(|e| {
            problems.push(format!("incidents cannot be read: {e}"));
            Vec::new()
        });
    let mut html = page(&PageData {
        report: &json,
        alerts: &alerts,
        history: &history,
        incidents: &incidents,
        now,
    });
    if !problems.is_empty() {
        let note: String = problems
            .iter()
            .map(|p| format!("<p class=\"note\">{}</p>", esc(p)))
            .collect();
        html = html.replacen("<main>", &format!("<main>{note}"), 1);
    }
    html
}

/// Records the sections' verdicts every minute (the strips' data) and forgets what is older than
/// 8 days, until `stop`.
pub(crate) fn spawn_history(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune: Option<DateTime<Utc>> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|v| *v) => return,
            }
            let report = state.status().report(None).await;
            let levels: Vec<(&str, i16)> = report
                .section_status
                .iter()
                .map(|(name, v)| (name.as_str(), level(*v)))
                .collect();
            if let Err(e) = state
                .store()
                .history_record(report.generated_at, &levels)
                .await
            {
                tracing::warn!(error = %e, "cannot record the status history");
            }
            let now = Utc::now();
            if last_prune.is_none_or(|t| now - t > chrono::TimeDelta::hours(1)) {
                last_prune = Some(now);
                if let Err(e) = state.store().history_prune(now - KEEP_HISTORY).await {
                    tracing::warn!(error = %e, "cannot prune the status history");
                }
            }
        }
    })
}

fn level(v: Verdict) -> i16 {
    match v {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 2,
    }
}

/// Text made safe for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
    }
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✔",
        Verdict::Warn => "▲",
        Verdict::Fail => "✖",
    }
}

const STYLE: &str = "\
:root{--bg:#f6f8fa;--card:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;\
--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e;--none:#e6e9ed;color-scheme:light dark}\
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#151b23;--fg:#e6edf3;\
--muted:#9198a1;--line:#3d444d;--pass:#3fb950;--warn:#d29922;--fail:#f85149;--none:#262c36}}\
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif}\
main{max-width:72em;margin:0 auto;padding:1.5em}\
header{display:flex;gap:1em;align-items:center;flex-wrap:wrap}\
.badge{font-size:1.6em;font-weight:700;color:#fff;padding:.15em .6em;border-radius:.3em}\
.pass .badge,.badge.pass{background:var(--pass)}.badge.warn{background:var(--warn)}.badge.fail{background:var(--fail)}\
.meta,.note{color:var(--muted)}ul.reasons{margin:.6em 0 1.2em}\
h2{font-size:1.1em;margin:1.4em 0 .5em}\
.alert{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--fail);\
border-radius:6px;padding:.5em .8em;margin:.4em 0}.alert.warning{border-left-color:var(--warn)}\
.alert.info{border-left-color:var(--muted)}.alert .key{color:var(--muted);font-size:.85em}\
.alert ul{margin:.3em 0 0;color:var(--muted)}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(30em,1fr));gap:.8em}\
.card{background:var(--card);border:1px solid var(--line);border-top:4px solid var(--pass);\
border-radius:6px;padding:.6em .9em;min-width:0}.card.warn{border-top-color:var(--warn)}\
.card.fail{border-top-color:var(--fail)}.card h3{margin:0;font-size:1em;display:flex;gap:.4em}\
.card h3 .v{margin-left:auto;font-weight:400;color:var(--muted)}\
.m.pass{color:var(--pass)}.m.warn{color:var(--warn)}.m.fail{color:var(--fail)}\
.summary{margin:.3em 0;overflow-wrap:anywhere}\
.strip{display:flex;gap:1px;height:14px;margin:.4em 0}.strip{background:var(--none)}.strip i{flex:1;border-radius:1px;background:var(--none)}\
.strip .l0{background:var(--pass)}.strip .l1{background:var(--warn)}.strip .l2{background:var(--fail)}\
.axis{display:flex;justify-content:space-between;font-size:.75em;color:var(--muted)}\
details summary{cursor:pointer;color:var(--muted);font-size:.9em}\
table{border-collapse:collapse;width:100%;font-size:.88em;margin:.3em 0}\
th,td{text-align:left;padding:.15em .5em .15em 0;border-bottom:1px solid var(--line);\
vertical-align:top;overflow-wrap:break-word}th{color:var(--muted);font-weight:600;white-space:nowrap}\
.scroll{overflow-x:auto}.cards.attention{grid-template-columns:1fr;margin-bottom:.8em}";

/// The page, from its data alone (no I/O): what `GET /` serves.
pub(crate) fn page(d: &PageData<'_>) -> String {
    let verdict = view::verdict_of(
        d.report
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("fail"),
    );
    let mut h = String::with_capacity(32 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>{} — Lookout</title>\
         <style>{STYLE}</style></head><body><main>",
        esc(&word(verdict).to_uppercase())
    );
    let version = d
        .report
        .pointer("/sections/service/version")
        .and_then(Value::as_str)
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    let generated = d
        .report
        .get("generated_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_default();
    let _ = write!(
        h,
        "<header><span class=\"badge {w}\" id=\"verdict\">{W}</span>\
         <span class=\"meta\">lookoutd {v} · collected {g} in {ms} ms · refreshes every 30 s</span></header>",
        w = word(verdict),
        W = esc(&word(verdict).to_uppercase()),
        v = esc(version),
        g = esc(&generated),
        ms = d
            .report
            .get("elapsed_ms")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    );
    let reasons: Vec<&str> = d
        .report
        .get("reasons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if reasons.is_empty() {
        h.push_str("<p class=\"meta\">Everything Lookout watches is as it should be.</p>");
    } else {
        h.push_str("<ul class=\"reasons\">");
        for r in reasons {
            let _ = write!(h, "<li>{}</li>", esc(r));
        }
        h.push_str("</ul>");
    }
    alerts(&mut h, d.alerts, d.now);
    // Sections that need a look first, one per row with their details open; then the rest.
    h.push_str("<h2>Sections</h2>");
    let strips = strips(d.history, d.now);
    let (attention, fine): (Vec<SectionView>, Vec<SectionView>) = view::sections(d.report, d.now)
        .into_iter()
        .partition(|s| s.verdict != Verdict::Pass);
    for (class, list) in [("cards attention", attention), ("cards", fine)] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(h, "<div class=\"{class}\">");
        for s in &list {
            card(&mut h, s, strips.get(s.name.as_str()));
        }
        h.push_str("</div>");
    }
    incidents(&mut h, d.incidents, d.now);
    h.push_str("</main></body></html>");
    h
}

/// The last 30 days' incidents: when, how long (time to resolve), what, what was folded and done.
fn incidents(h: &mut String, list: &[crate::incidents::IncidentView], now: DateTime<Utc>) {
    let resolved: Vec<i64> = list
        .iter()
        .filter(|i| !i.open)
        .map(|i| i.duration_seconds)
        .collect();
    let _ = write!(
        h,
        "<h2 id=\"incidents\">Incidents, last 30 days ({})</h2>",
        list.len()
    );
    if list.is_empty() {
        h.push_str("<p class=\"meta\">None: nothing fired in 30 days.</p>");
        return;
    }
    if !resolved.is_empty() {
        let mut sorted = resolved.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        let _ = write!(
            h,
            "<p class=\"meta\">{} resolved, median time to resolve {}.</p>",
            resolved.len(),
            esc(&view::age(chrono::TimeDelta::seconds(median)))
        );
    }
    h.push_str(
        "<div class=\"scroll\"><table class=\"incidents\"><tr><th>started</th><th>lasted</th>\
         <th>alert</th><th>what happened</th><th>folded</th><th>done</th></tr>",
    );
    for i in list {
        let lasted = view::age(chrono::TimeDelta::seconds(i.duration_seconds));
        let lasted = if i.open {
            format!("open, {lasted}")
        } else {
            lasted
        };
        let done: Vec<String> = i
            .record
            .actions
            .iter()
            .map(|a| match &a.by {
                Some(by) => format!("{} ({by})", a.text),
                None => a.text.clone(),
            })
            .collect();
        let folded: Vec<&str> = i.folded.iter().map(|f| f.alert.as_str()).collect();
        let _ = write!(
            h,
            "<tr class=\"{sev}\"><td>{started}</td><td>{lasted}</td><td>{alert}</td><td>{text}</td>\
             <td>{folded}</td><td>{done}</td></tr>",
            sev = esc(&i.record.severity),
            started = esc(&format!("{} ago", view::age(now - i.record.started_at))),
            lasted = esc(&lasted),
            alert = esc(&i.record.alert),
            text = esc(&i.record.text),
            folded = esc(&folded.join(", ")),
            done = esc(&done.join("; ")),
        );
    }
    h.push_str("</table></div>");
}

/// Firing and flapping alerts, each with the alerts folded under it; held ones after them.
fn alerts(h: &mut String, all: &[AlertView], now: DateTime<Utc>) {
    let shown: Vec<&AlertView> = all
        .iter()
        .filter(|a| matches!(a.status, "firing" | "flapping"))
        .collect();
    let held: Vec<&AlertView> = all.iter().filter(|a| a.status == "held").collect();
    if shown.is_empty() && held.is_empty() {
        return;
    }
    let _ = write!(h, "<h2>Firing alerts ({})</h2>", shown.len());
    for a in shown {
        let folded: Vec<&AlertView> = all
            .iter()
            .filter(|f| {
                f.status == "folded"
                    && f.folded_under
                        .as_ref()
                        .is_some_and(|k| k.to_string() == a.record.key)
            })
            .collect();
        let since = view::age(now - a.record.first_seen);
        let _ = write!(
            h,
            "<div class=\"alert {sev}\"><div>{text}</div><div class=\"key\">{key} · {sev} · {status} for {since}</div>",
            sev = esc(&a.record.severity),
            text = esc(&a.record.text),
            key = esc(&a.record.key),
            status = a.status,
        );
        if !folded.is_empty() {
            let _ = write!(h, "<ul>");
            for f in folded {
                let _ = write!(h, "<li>folded: {}</li>", esc(&f.record.text));
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>");
    }
    if !held.is_empty() {
        h.push_str("<details><summary>held by a quiet window</summary>");
        for a in held {
            let _ = write!(
                h,
                "<div class=\"alert info\"><div>{}</div><div class=\"key\">{}</div></div>",
                esc(&a.record.text),
                esc(&a.record.key)
            );
        }
        h.push_str("</details>");
    }
}

/// Each section's 96 quarter hours, oldest first: its worst level in each, `None` with no sample.
fn strips(history: &[HistorySample], now: DateTime<Utc>) -> BTreeMap<&str, Vec<Option<i16>>> {
    const CELLS: i64 = 96;
    let len = chrono::TimeDelta::from_std(HISTORY_BUCKET).unwrap_or(chrono::TimeDelta::minutes(15));
    let first = history_bucket(now) - len * (CELLS as i32 - 1);
    let mut out: BTreeMap<&str, Vec<Option<i16>>> = BTreeMap::new();
    for s in history {
        let i = (s.bucket - first).num_seconds() / len.num_seconds().max(1);
        if (0..CELLS).contains(&i) {
            out.entry(s.section.as_str())
                .or_insert_with(|| vec![None; CELLS as usize])[i as usize] = Some(s.level);
        }
    }
    out
}

fn card(h: &mut String, s: &SectionView, strip: Option<&Vec<Option<i16>>>) {
    let w = word(s.verdict);
    // A section that needs a look shows its details open.
    let open = s.verdict != Verdict::Pass;
    let _ = write!(
        h,
        "<section class=\"card {w}\" id=\"section-{id}\"><h3><span class=\"m {w}\">{m}</span>{name}\
         <span class=\"v\">{w}</span></h3><p class=\"summary\">{summary}</p>",
        id = esc(&s.name),
        m = mark(s.verdict),
        name = esc(&s.name.replace('_', " ")),
        summary = esc(&s.summary),
    );
    match strip {
        Some(cells) => {
            h.push_str("<div class=\"strip\" role=\"img\" aria-label=\"last 24 hours\">");
            for c in cells {
                h.push_str(match c {
                    Some(0) => "<i class=\"l0\" title=\"pass\"></i>",
                    Some(1) => "<i class=\"l1\" title=\"warn\"></i>",
                    Some(_) => "<i class=\"l2\" title=\"fail\"></i>",
                    None => "<i></i>",
                });
            }
        }
        None => h.push_str("<div class=\"strip\" title=\"no history yet\">"),
    }
    h.push_str("</div><div class=\"axis\"><span>24 h ago</span><span>now</span></div>");
    for t in &s.tables {
        if t.rows.is_empty() {
            continue;
        }
        let _ = write!(
            h,
            "<details{}><summary>{} ({})</summary><div class=\"scroll\"><table><tr>",
            if open { " open" } else { "" },
            esc(t.title),
            t.rows.len()
        );
        for c in &t.columns {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
        h.push_str("</tr>");
        for row in &t.rows {
            h.push_str("<tr>");
            for c in row {
                let _ = write!(h, "<td>{}</td>", esc(c));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table></div></details>");
    }
    h.push_str("</section>");
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
