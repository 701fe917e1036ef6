//! `lookout dry-run`, `lookout replay`, `lookout watchdog …`, `lookout alerts list` and
//! `lookout quiet …`.

use serde_json::{Value, json};

use crate::{AlertsCommand, Client, Failure, Output, QuietCommand, WatchdogCommand};

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "-".into(),
        Some(o) => o.to_string(),
    }
}

/// One line per action: its type and what it says or does.
fn print_actions(actions: &[Value]) {
    if actions.is_empty() {
        println!("no action");
        return;
    }
    println!("{:<10} WHAT", "ACTION");
    for a in actions {
        let kind = text(a, "type");
        let what = match kind.as_str() {
            "notify" => format!("to {}: {}", text(a, "group"), text(a, "text")),
            "alert" => format!(
                "[{}] {} {}: {}",
                text(a, "invariant"),
                text(a, "state"),
                text(a, "subject"),
                text(a, "message")
            ),
            "repair" => format!(
                "{} run {} (container {} gone)",
                text(a, "repair"),
                text(a, "run_id"),
                text(a, "container")
            ),
            "mark" => format!(
                "{} {} message(s) on {}",
                text(a, "mark"),
                a.get("message_ids")
                    .and_then(|m| m.as_array())
                    .map_or(0, |m| m.len()),
                text(a, "channel")
            ),
            _ => a.to_string(),
        };
        println!("{kind:<10} {what}");
    }
}

fn print_violations(violations: &[Value]) {
    for v in violations {
        println!(
            "violation [{}] {}: {}",
            text(v, "invariant"),
            text(v, "subject"),
            text(v, "message")
        );
    }
}

/// `lookout dry-run`: exit 0 with no action, 1 when the reconciler would act.
pub(crate) async fn dry_run(client: &Client, out: Output) -> Result<u8, Failure> {
    let r = client
        .post_json("/debug/reconcile-dry-run", &json!({}))
        .await?;
    let actions = r["actions"].as_array().cloned().unwrap_or_default();
    if out.json {
        println!("{}", pretty(&r));
    } else {
        print_violations(r["violations"].as_array().map_or(&[], |v| v.as_slice()));
        print_actions(&actions);
        let held = r["not_executed"].as_array().map_or(0, |v| v.len());
        if held > 0 {
            println!("({held} repair(s) would not run: reconcile.auto_repair is off)");
        }
    }
    Ok(u8::from(!actions.is_empty()))
}

/// `lookout replay --from --to`.
pub(crate) async fn replay(
    client: &Client,
    from: &str,
    to: &str,
    out: Output,
) -> Result<u8, Failure> {
    let r = client
        .post_json("/debug/replay-events", &json!({"from": from, "to": to}))
        .await
        .map_err(|f| Failure { code: 2, ..f })?;
    if out.json {
        println!("{}", pretty(&r));
    } else {
        println!(
            "replayed {} event(s) from {} to {}",
            text(&r, "events"),
            text(&r, "from"),
            text(&r, "to")
        );
        print_violations(r["violations"].as_array().map_or(&[], |v| v.as_slice()));
        print_actions(r["actions"].as_array().map_or(&[], |v| v.as_slice()));
    }
    Ok(0)
}

fn explain_lines(e: &Value) {
    println!("{} ({})", text(e, "target"), text(e, "kind"));
    let seen: Vec<&str> = e["seen"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect();
    if seen.is_empty() {
        println!("  seen:    healthy (or not probed yet)");
    }
    for s in seen {
        println!("  seen:    {s}");
    }
    for n in e["observation"]["notes"].as_array().into_iter().flatten() {
        println!("  note:    {}", n.as_str().unwrap_or_default());
    }
    if let Some(a) = e.get("last_action").filter(|a| !a.is_null()) {
        println!("  last:    tier {} at {}", text(a, "tier"), text(a, "at"));
    }
    println!("  next:    {}", compact(&e["next"]));
    println!("  circuit: {}", compact(&e["circuit"]));
    println!("  backoff: {}", compact(&e["backoff"]));
}

/// `{"a":1,"b":null}` as `a=1`.
fn compact(v: &Value) -> String {
    match v.as_object() {
        Some(o) => o
            .iter()
            .filter(|(_, x)| !x.is_null())
            .map(|(k, x)| match x {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => v.to_string(),
    }
}

/// `lookout watchdog list|reset|explain`.
pub(crate) async fn watchdog(client: &Client, cmd: WatchdogCommand) -> Result<u8, Failure> {
    match cmd {
        WatchdogCommand::List(out) => {
            let r = client.get_ok("/api/watchdog").await?;
            if out.json {
                println!("{}", pretty(&r));
            } else {
                println!("{:<20} {:<10} {:<12} SEEN", "TARGET", "KIND", "CIRCUIT");
                for t in r["targets"].as_array().into_iter().flatten() {
                    let seen: Vec<&str> = t["seen"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str())
                        .collect();
                    println!(
                        "{:<20} {:<10} {:<12} {}",
                        text(t, "target"),
                        text(t, "kind"),
                        text(&t["circuit"], "state"),
                        if seen.is_empty() {
                            "healthy".to_owned()
                        } else {
                            seen.join("; ")
                        }
                    );
                }
            }
            Ok(0)
        }
        WatchdogCommand::Reset { target } => {
            client
                .post_json(&format!("/api/watchdog/{target}/reset"), &json!({}))
                .await?;
            println!("{target}: circuit closed, ladder restarted");
            Ok(0)
        }
        WatchdogCommand::Explain { target, out } => {
            let e = client
                .get_ok(&format!("/api/watchdog/{target}/explain"))
                .await?;
            if out.json {
                println!("{}", pretty(&e));
            } else {
                explain_lines(&e);
            }
            Ok(0)
        }
    }
}

/// `lookout alerts list [--failed]`.
pub(crate) async fn alerts(client: &Client, cmd: AlertsCommand) -> Result<u8, Failure> {
    let (failed, out) = match cmd {
        AlertsCommand::List { failed, out } => (failed, out),
        AlertsCommand::Retry { id } => {
            let r = client
                .post_json(&format!("/api/alerts/{id}/retry"), &json!({}))
                .await?;
            println!(
                "{id}: {} delivery(ies) pending again",
                text(&r, "deliveries")
            );
            return Ok(0);
        }
        AlertsCommand::Ack { alert } => return crate::reach::ack(client, &alert).await,
    };
    let path = if failed {
        "/api/alerts?failed=true"
    } else {
        "/api/alerts"
    };
    let r = client.get_ok(path).await?;
    if out.json {
        println!("{}", pretty(&r));
        return Ok(0);
    }
    if failed {
        for s in r["failing_sinks"].as_array().into_iter().flatten() {
            println!(
                "sink {} failing since {}",
                text(s, "sink"),
                text(s, "since")
            );
        }
        println!(
            "{:<38} {:<12} {:<9} {:<30} TEXT",
            "ID", "SINK", "ATTEMPTS", "LAST ERROR"
        );
        for n in r["failed"].as_array().into_iter().flatten() {
            println!(
                "{:<38} {:<12} {:<9} {:<30} {}",
                text(n, "id"),
                text(n, "sink"),
                text(n, "attempts"),
                text(n, "last_error"),
                text(n, "text")
            );
        }
        return Ok(0);
    }
    println!(
        "{:<9} {:<40} {:<26} {:<6} TEXT",
        "STATUS", "ALERT", "SINCE", "SENT"
    );
    for a in r["alerts"].as_array().into_iter().flatten() {
        let status = match a.get("folded_under").and_then(|f| f.as_str()) {
            Some(cause) => format!("folded under {cause}"),
            None => text(a, "status"),
        };
        println!(
            "{:<9} {:<40} {:<26} {:<6} {}",
            status,
            text(a, "key"),
            text(a, "first_seen"),
            text(a, "send_count"),
            text(a, "text")
        );
    }
    for w in r["quiet"].as_array().into_iter().flatten() {
        println!(
            "quiet window {} until {} ({}{})",
            text(w, "id"),
            text(w, "ends_at"),
            text(w, "reason"),
            w.get("matcher")
                .and_then(|m| m.as_str())
                .map(|m| format!(", only {m}"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

/// `lookout quiet add|list|end`.
pub(crate) async fn quiet(client: &Client, cmd: QuietCommand) -> Result<u8, Failure> {
    match cmd {
        QuietCommand::Add { duration, matcher } => {
            let r = client
                .post_json(
                    "/api/quiet",
                    &json!({"for": duration, "match": matcher, "reason": "lookout quiet add"}),
                )
                .await?;
            println!(
                "quiet window {} until {}",
                text(&r["quiet"], "id"),
                text(&r["quiet"], "ends_at")
            );
            Ok(0)
        }
        QuietCommand::List(out) => {
            let r = client.get_ok("/api/quiet").await?;
            if out.json {
                println!("{}", pretty(&r));
            } else {
                println!("{:<22} {:<34} {:<34} REASON", "ID", "FROM", "UNTIL");
                for w in r["quiet"].as_array().into_iter().flatten() {
                    println!(
                        "{:<22} {:<34} {:<34} {}",
                        text(w, "id"),
                        text(w, "starts_at"),
                        text(w, "ends_at"),
                        text(w, "reason")
                    );
                }
            }
            Ok(0)
        }
        QuietCommand::End { id } => {
            client
                .post_json(&format!("/api/quiet/{id}/end"), &json!({}))
                .await?;
            println!("quiet window {id} ended");
            Ok(0)
        }
    }
}
