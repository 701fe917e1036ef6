//! `lookout events send|tail`: sends events to lookoutd, or follows its event log.

use std::time::Duration;

use crate::client::refused;
use crate::{Client, EventsCommand, Failure};

pub(crate) async fn events(client: &Client, cmd: EventsCommand) -> Result<u8, Failure> {
    match cmd {
        EventsCommand::Send { data, file, out } => {
            let text = match (data, file) {
                (Some(d), _) => d,
                (None, Some(p)) if p.as_os_str() != "-" => {
                    std::fs::read_to_string(&p).map_err(|e| Failure {
                        code: 2,
                        message: format!("cannot read {}: {e}", p.display()),
                    })?
                }
                _ => {
                    let mut buf = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf).map_err(
                        |e| Failure {
                            code: 2,
                            message: format!("cannot read stdin: {e}"),
                        },
                    )?;
                    buf
                }
            };
            let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| Failure {
                code: 2,
                message: format!(
                    "the events are not JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            })?;
            let resp = client.post_json("/api/events", &body).await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&resp).unwrap_or_default()
                );
            } else {
                let seqs: Vec<String> = resp
                    .get("seqs")
                    .and_then(|s| s.as_array())
                    .map(|a| a.iter().map(|v| v.to_string()).collect())
                    .unwrap_or_default();
                println!("stored {} event(s): seq {}", seqs.len(), seqs.join(", "));
            }
            Ok(0)
        }
        EventsCommand::Tail { kind, follow, out } => {
            let mut after = 0i64;
            loop {
                let mut path = format!("/api/events?after={after}&limit=1000");
                if let Some(k) = &kind {
                    path.push_str(&format!("&kind={k}"));
                }
                let (status, body) = client.get_json(&path).await?;
                if !status.is_success() {
                    return Err(refused(&path, status, &body, 1));
                }
                let events = body
                    .get("events")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default();
                for e in &events {
                    if out.json {
                        println!("{e}");
                    } else {
                        println!(
                            "{:>8}  {}  {:<22} {:<20} {}",
                            e.get("seq").and_then(|v| v.as_i64()).unwrap_or(0),
                            e.get("at").and_then(|v| v.as_str()).unwrap_or("?"),
                            e.get("kind").and_then(|v| v.as_str()).unwrap_or("?"),
                            e.get("subject").and_then(|v| v.as_str()).unwrap_or("-"),
                            e.get("payload").map(|p| p.to_string()).unwrap_or_default()
                        );
                    }
                }
                after = body
                    .get("next_after")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(after);
                if events.is_empty() {
                    if !follow {
                        return Ok(0);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
