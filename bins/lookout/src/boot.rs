//! `lookout boot begin|ready|fail`: the boot hooks of a host's service unit.

use crate::{BootCommand, Client, Failure};

pub(crate) async fn boot(client: &Client, cmd: BootCommand) -> Result<u8, Failure> {
    use serde_json::json;
    let (path, body, out) = match cmd {
        BootCommand::Begin {
            service,
            version,
            pid,
            out,
        } => (
            "/api/boot/begin",
            json!({"service": service, "version": version, "pid": pid}),
            out,
        ),
        BootCommand::Ready { service, out } => {
            ("/api/boot/ready", json!({"service": service}), out)
        }
        BootCommand::Fail {
            service,
            cause,
            out,
        } => (
            "/api/boot/fail",
            json!({"service": service, "cause": cause}),
            out,
        ),
    };
    let resp = client.post_json(path, &body).await?;
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&resp).unwrap_or_default()
        );
        return Ok(0);
    }
    // `ready` prints the line a host appends to its boot message, and nothing when all was well.
    if let Some(m) = resp.get("message").and_then(|m| m.as_str()) {
        println!("{m}");
    }
    if path != "/api/boot/ready"
        && let Some(prev) = resp.get("previous_failed").filter(|p| !p.is_null())
    {
        let cause = prev
            .get("cause")
            .and_then(|c| c.as_str())
            .unwrap_or("unknown");
        println!(
            "previous start failed ({} failed start(s) since the last ready): {cause}",
            resp.get("failed_starts")
                .and_then(|n| n.as_u64())
                .unwrap_or(0)
        );
    }
    if let Some(cl) = resp.get("crash_loop").filter(|c| !c.is_null()) {
        println!(
            "🔁 crash loop: {} failed start(s) with no ready. Last failure: {}",
            cl.get("failed_starts")
                .and_then(|n| n.as_u64())
                .unwrap_or(0),
            cl.get("last_cause")
                .and_then(|c| c.as_str())
                .unwrap_or("unknown")
        );
    }
    Ok(0)
}
