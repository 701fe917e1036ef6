//! `lookout status`, `health`, `doctor` and `stale-scan`: what lookoutd sees of the host.

use crate::client::refused;
use crate::{Client, Failure, Output};

/// Every check of the daemon's configuration with a suggested fix; exit 1 when any fails. A daemon
/// that cannot be reached is itself the first failed check.
pub(crate) async fn doctor(client: &Client, out: Output) -> Result<u8, Failure> {
    let (code, body) = match client.get_json("/api/doctor").await {
        Ok(x) => x,
        Err(f) if f.code == 3 => {
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "failed": 1, "checks": [{"name": "daemon", "status": "fail", "detail": f.message, "fix": "start lookoutd (README: cargo run --release -p lookoutd), or point --url / LOOKOUT_URL at it"}]})
                );
            } else {
                println!(
                    "✖ daemon — {}\n    fix: start lookoutd (README: cargo run --release -p lookoutd), or point --url / LOOKOUT_URL at it",
                    f.message
                );
            }
            return Ok(1);
        }
        Err(f) => return Err(f),
    };
    if !code.is_success() {
        return Err(refused("/api/doctor", code, &body, 1));
    }
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        for c in body
            .get("checks")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let mark = match s("status") {
                "ok" => "✔",
                "warn" => "!",
                _ => "✖",
            };
            println!("{mark} {} — {}", s("name"), s("detail"));
            if !s("fix").is_empty() {
                println!("    fix: {}", s("fix"));
            }
        }
    }
    Ok(
        if body.get("ok").and_then(|v| v.as_bool()).unwrap_or(false) {
            0
        } else {
            1
        },
    )
}

/// The report as a person reads it; exit 0 pass, 1 warn, 2 fail.
pub(crate) async fn status(client: &Client, args: crate::StatusArgs) -> Result<u8, Failure> {
    use std::io::IsTerminal;
    let (report, alerts) = tokio::join!(client.get_json("/status"), client.get_json("/api/alerts"));
    let (code, body) = report?;
    if !code.is_success() {
        return Err(refused("/status", code, &body, 3));
    }
    let verdict = body
        .get("status")
        .and_then(|v| v.as_str())
        .unwrap_or("fail");
    if args.out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        // The alerts need the token when one is set; without them the sections still print.
        let alerts = alerts.ok().filter(|(c, _)| c.is_success()).map(|(_, b)| b);
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = !no_color
            && match args.color.as_str() {
                "always" => true,
                "never" => false,
                _ => std::io::stdout().is_terminal(),
            };
        let style = crate::status_text::Style {
            colour,
            verbose: args.verbose,
        };
        print!(
            "{}",
            crate::status_text::render(&body, alerts.as_ref(), chrono::Utc::now(), style)
        );
    }
    Ok(match verdict {
        "pass" => 0,
        "warn" => 1,
        _ => 2,
    })
}

pub(crate) async fn health(client: &Client, out: Output) -> Result<u8, Failure> {
    let (status, body) = client.get_json("/health").await?;
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        let s = |k: &str| {
            body.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string()
        };
        let uptime = body
            .get("uptime_seconds")
            .and_then(|v| v.as_u64())
            .map(human_duration)
            .unwrap_or_else(|| "?".into());
        println!(
            "lookoutd {} at {}: {} (up {uptime}, since {})",
            s("version"),
            client.base,
            s("status"),
            s("started_at")
        );
    }
    Ok(if status.is_success() { 0 } else { 1 })
}

pub(crate) async fn stale_scan(client: &Client, out: Output) -> Result<u8, Failure> {
    let resp = client
        .post_json("/api/stale-scan", &serde_json::json!({}))
        .await?;
    let findings = resp
        .get("findings")
        .and_then(|f| f.as_array())
        .cloned()
        .unwrap_or_default();
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&resp).unwrap_or_default()
        );
    } else if findings.is_empty() {
        println!(
            "no interrupted runs: nothing in flight longer than {}",
            human_duration(
                resp.get("threshold_secs")
                    .and_then(|t| t.as_u64())
                    .unwrap_or(0)
            )
        );
    } else {
        println!(
            "{:<28} {:<12} {:>6} {:>10}",
            "CHAT", "CHANNEL", "COUNT", "OLDEST"
        );
        for f in &findings {
            println!(
                "{:<28} {:<12} {:>6} {:>10}",
                f.get("chat_jid").and_then(|v| v.as_str()).unwrap_or("?"),
                f.get("channel").and_then(|v| v.as_str()).unwrap_or("?"),
                f.get("count").and_then(|v| v.as_i64()).unwrap_or(0),
                human_duration(
                    f.get("oldest_age_secs")
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0)
                )
            );
        }
    }
    // Like `status`: 1 when something needs a look, so cron monitors and scripts can use it.
    Ok(if findings.is_empty() { 0 } else { 1 })
}

fn human_duration(secs: u64) -> String {
    lookout_common::human_duration(std::time::Duration::from_secs(secs))
}
