//! `lookout dry-run`, `lookout replay` and `lookout watchdog …`.

use serde_json::{Value, json};

use crate::{Client, Failure, Output, WatchdogCommand};

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
