//! `lookout events send|tail`: sends events to lookoutd, or follows its event log.

use std::time::Duration;

use crate::client::refused;
use crate::{Client, EventsCommand, Failure, Output};

/// `key=text` and `key:=JSON` arguments as an event's fields, merged over `base`; an argument
/// that is neither, or whose JSON does not parse, is named in the error.
pub(crate) fn fields_from_args(
    args: &[String],
    base: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut fields = base;
    for arg in args {
        let (key, value) = match (arg.find(":="), arg.find('=')) {
            (Some(typed), Some(eq)) if typed < eq => {
                let raw = &arg[typed + 2..];
                let v = serde_json::from_str(raw).map_err(|e| {
                    format!(
                        "`{arg}`: the value after `:=` is not JSON ({e}); use `key=text` for text"
                    )
                })?;
                (&arg[..typed], v)
            }
            (_, Some(eq)) => (
                &arg[..eq],
                serde_json::Value::String(arg[eq + 1..].to_owned()),
            ),
            (_, None) => {
                return Err(format!(
                    "`{arg}` is not a field: write `key=text` or `key:=JSON`"
                ));
            }
        };
        if key.is_empty() {
            return Err(format!("`{arg}` has no key before `=`"));
        }
        if key == "kind" {
            return Err(format!(
                "`{arg}`: the kind is the first argument, not a field"
            ));
        }
        fields.insert(key.to_owned(), value);
    }
    Ok(fields)
}

/// `lookout emit KIND key=value …`: one event, from a shell script or a systemd unit.
pub(crate) async fn emit(
    client: &Client,
    kind: &str,
    args: &[String],
    stdin_json: bool,
    out: Output,
) -> Result<u8, Failure> {
    let usage = |message: String| Failure { code: 2, message };
    let base = if stdin_json {
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
            .map_err(|e| usage(format!("cannot read stdin: {e}")))?;
        match serde_json::from_str::<serde_json::Value>(&buf) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("kind");
                m
            }
            Ok(_) => return Err(usage("stdin must hold one JSON object of fields".into())),
            Err(e) => {
                return Err(usage(format!(
                    "stdin is not JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                )));
            }
        }
    } else {
        serde_json::Map::new()
    };
    let mut event = fields_from_args(args, base).map_err(usage)?;
    event.insert("kind".into(), serde_json::Value::String(kind.to_owned()));
    let resp = client
        .post_json("/api/events", &serde_json::Value::Object(event))
        .await?;
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&resp).unwrap_or_default()
        );
    } else {
        let seq = resp
            .get("seqs")
            .and_then(|s| s.get(0))
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into());
        println!("stored {kind}: seq {seq}");
        for w in resp
            .get("warnings")
            .and_then(|w| w.as_array())
            .into_iter()
            .flatten()
        {
            eprintln!(
                "warning: {}",
                w.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| w.to_string())
            );
        }
    }
    Ok(0)
}

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

#[cfg(test)]
mod tests {
    use super::fields_from_args;
    use serde_json::json;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn text_typed_json_and_stdin_fields_merge_with_the_arguments_winning() {
        let base = json!({"run_id": "from-stdin", "note": "kept"});
        let got = fields_from_args(
            &args(&[
                "run_id=r1",
                "outcome=failed",
                "error=exit 3: a=b",
                "progress:=12",
                "heartbeats:=false",
                "message_ids:=[\"m1\",\"m2\"]",
                "url=http://x/?a:=b",
            ]),
            base.as_object().unwrap().clone(),
        )
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(got),
            json!({"run_id": "r1", "note": "kept", "outcome": "failed", "error": "exit 3: a=b",
                   "progress": 12, "heartbeats": false, "message_ids": ["m1", "m2"],
                   "url": "http://x/?a:=b"})
        );
    }

    #[test]
    fn a_bad_argument_is_named() {
        let e = fields_from_args(&args(&["run_id=r1", "oops"]), Default::default()).unwrap_err();
        assert!(e.contains("`oops`"), "{e}");
        let e = fields_from_args(&args(&["n:={nope"]), Default::default()).unwrap_err();
        assert!(e.contains("`n:={nope`") && e.contains("not JSON"), "{e}");
        let e = fields_from_args(&args(&["=x"]), Default::default()).unwrap_err();
        assert!(e.contains("no key"), "{e}");
        let e = fields_from_args(&args(&["kind=deploy"]), Default::default()).unwrap_err();
        assert!(e.contains("first argument"), "{e}");
    }
}
