//! `lookout tasks …`: `preview` computes locally (no daemon); the others ask lookoutd.

use chrono::{DateTime, Utc};
use lookout_scheduler::Schedule;
use serde_json::{Value, json};

use crate::{Client, Failure, Output, TasksCommand};

fn usage(message: String) -> Failure {
    Failure { code: 2, message }
}

/// `tasks preview 'EXPR' [--tz ZONE] [--from T] [--count N]`: one ISO-8601 instant with offset per
/// line, in the schedule's zone, or a JSON array.
pub(crate) fn preview(
    expr: &str,
    tz: &str,
    from: Option<&str>,
    count: u32,
    out: &Output,
) -> Result<u8, Failure> {
    let schedule = Schedule::parse(expr, tz).map_err(|e| usage(e.to_string()))?;
    let from: DateTime<Utc> = match from {
        None => Utc::now(),
        Some(f) => DateTime::parse_from_rfc3339(f)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                usage(format!(
                    "--from `{f}` is not an ISO-8601 instant with an offset (e.g. 2026-03-08T00:00:00-05:00): {e}"
                ))
            })?,
    };
    let zone = schedule.tz();
    let times: Vec<String> = schedule
        .upcoming(from, count as usize)
        .map(|t| t.with_timezone(&zone).to_rfc3339())
        .collect();
    if out.json {
        println!("{}", Value::from(times));
    } else {
        for t in &times {
            println!("{t}");
        }
    }
    Ok(0)
}

fn at(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn print_or_json(out: &Output, body: &Value, table: impl FnOnce()) {
    if out.json {
        println!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
    } else {
        table();
    }
}

pub(crate) async fn run(client: &Client, cmd: TasksCommand) -> Result<u8, Failure> {
    match cmd {
        TasksCommand::Preview {
            expr,
            tz,
            from,
            count,
            out,
        } => preview(&expr, &tz, from.as_deref(), count, &out),
        TasksCommand::List(out) => {
            let body = client.get_ok("/api/tasks").await?;
            print_or_json(&out, &body, || {
                println!(
                    "{:<20} {:<9} {:<10} {:<22} {:<9} {:<26} LAST RESULT",
                    "NAME", "KIND", "GROUP", "SCHEDULE", "STATUS", "NEXT RUN"
                );
                for t in body["tasks"].as_array().into_iter().flatten() {
                    println!(
                        "{:<20} {:<9} {:<10} {:<22} {:<9} {:<26} {}",
                        at(t, "name"),
                        at(t, "kind"),
                        at(t, "group"),
                        format!("{} {}", at(t, "schedule_kind"), at(t, "schedule_value")),
                        at(t, "status"),
                        at(t, "next_run"),
                        at(t, "last_result"),
                    );
                }
            });
            Ok(0)
        }
        TasksCommand::Add {
            name,
            group,
            cron,
            every,
            at: when,
            tz,
            command,
            image,
        } => {
            let body = json!({
                "name": name, "group": group, "cron": cron, "every": every, "at": when,
                "tz": tz, "command": command, "image": image,
            });
            let r = client.post_json("/api/tasks", &body).await?;
            println!(
                "added {} ({} {}), next run {}",
                at(&r["task"], "name"),
                at(&r["task"], "schedule_kind"),
                at(&r["task"], "schedule_value"),
                at(&r["task"], "next_run")
            );
            Ok(0)
        }
        TasksCommand::Pause { name } => {
            client
                .post_json(&format!("/api/tasks/{name}/pause"), &json!({}))
                .await?;
            println!("paused {name}");
            Ok(0)
        }
        TasksCommand::Resume { name } => {
            let r = client
                .post_json(&format!("/api/tasks/{name}/resume"), &json!({}))
                .await?;
            println!("resumed {name}, next run {}", at(&r["task"], "next_run"));
            Ok(0)
        }
        TasksCommand::Run { name } => {
            let r = client
                .post_json(&format!("/api/tasks/{name}/run"), &json!({}))
                .await?;
            println!("started {name}: run {}", at(&r, "run_id"));
            Ok(0)
        }
        TasksCommand::History { name, out } => {
            let body = client.get_ok(&format!("/api/tasks/{name}/history")).await?;
            print_or_json(&out, &body, || {
                println!(
                    "{:<8} {:<26} {:<26} {:<12} SUMMARY",
                    "RUN", "SCHEDULED FOR", "FINISHED", "OUTCOME"
                );
                for r in body["runs"].as_array().into_iter().flatten() {
                    println!(
                        "{:<8} {:<26} {:<26} {:<12} {}",
                        at(r, "id"),
                        at(r, "scheduled_for"),
                        at(r, "finished_at"),
                        at(r, "outcome"),
                        at(r, "output_summary").lines().next().unwrap_or_default(),
                    );
                }
            });
            Ok(0)
        }
    }
}
