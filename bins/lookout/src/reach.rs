//! `lookout notify test SINK`, `lookout incidents` and `lookout alerts ack ALERT`: reaching people,
//! and what happened.

use serde_json::{Value, json};

use crate::{Client, Failure, Output};

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "-".into(),
        Some(o) => o.to_string(),
    }
}

/// `lookout notify test SINK`: one test message straight to the sink; its answer is printed, and
/// a sink that does not take it exits non-zero with the sink's error.
pub(crate) async fn notify_test(client: &Client, sink: &str, out: Output) -> Result<u8, Failure> {
    let r = client
        .post_json("/api/notify/test", &json!({ "sink": sink }))
        .await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        println!(
            "{sink}: delivered in {} ms (id {})",
            text(&r, "elapsed_ms"),
            text(&r, "id")
        );
    }
    Ok(0)
}

/// `lookout alerts ack ALERT`: no more reminders for this firing.
pub(crate) async fn ack(client: &Client, alert: &str) -> Result<u8, Failure> {
    let by = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let r = client
        .post_json("/api/alerts/ack", &json!({ "alert": alert, "by": by }))
        .await?;
    println!(
        "{}: acknowledged by {} — no more reminders; it still resolves",
        text(&r, "acked"),
        text(&r, "by")
    );
    Ok(0)
}

/// `lookout incidents [--since 7d] [--json]`: newest first, each with what was folded under it and
/// what was done.
pub(crate) async fn incidents(
    client: &Client,
    since: Option<&str>,
    out: Output,
) -> Result<u8, Failure> {
    let path = match since {
        // The value is a duration or an RFC 3339 instant: `+` must not read as a space.
        Some(s) => format!("/api/incidents?since={}", s.replace('+', "%2B")),
        None => "/api/incidents".into(),
    };
    let r = client.get_ok(&path).await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(0);
    }
    let list = r["incidents"].as_array().map_or(&[][..], |v| v.as_slice());
    if list.is_empty() {
        println!("no incident since {}", text(&r, "since"));
        return Ok(0);
    }
    println!(
        "{:<26} {:<10} {:<9} {:<40} TEXT",
        "STARTED", "LASTED", "SEVERITY", "ALERT"
    );
    for i in list {
        let secs = i["duration_seconds"].as_i64().unwrap_or(0);
        let lasted =
            lookout_common::human_duration(std::time::Duration::from_secs(secs.max(0) as u64));
        let lasted = if i["open"].as_bool() == Some(true) {
            format!("{lasted}+")
        } else {
            lasted
        };
        println!(
            "{:<26} {:<10} {:<9} {:<40} {}",
            text(i, "started_at"),
            lasted,
            text(i, "severity"),
            text(i, "alert"),
            text(i, "text").lines().next().unwrap_or_default()
        );
        for f in i["folded"].as_array().into_iter().flatten() {
            println!("    folded: {} — {}", text(f, "alert"), text(f, "text"));
        }
        for a in i["actions"].as_array().into_iter().flatten() {
            let by = a
                .get("by")
                .and_then(Value::as_str)
                .map(|b| format!(" ({b})"))
                .unwrap_or_default();
            println!(
                "    {} {}: {}{by}",
                text(a, "at"),
                text(a, "kind"),
                text(a, "text")
            );
        }
    }
    Ok(0)
}
