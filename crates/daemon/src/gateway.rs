//! The gateway check: one `gateway_down` alert while the LLM gateway fails (a container not
//! running, no healthy model, a health endpoint that fails), and one "resolved" when it passes.
//! It is the cause the failures and overdue alerts of the tasks that need the gateway
//! (`gateway.needed_by`) are folded under.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lookout_notify::Severity;
use lookout_notify::alerts::{Alert, Alerts};
use lookout_status_collect::{Collected, Collector, Verdict};

/// The rule of the gateway's alert.
pub(crate) const RULE: &str = "gateway_down";
/// Its subject: there is one gateway.
pub(crate) const SUBJECT: &str = "gateway";
/// Its key, the cause named by the alerts folded under it.
pub(crate) const GATEWAY_DOWN: &str = "gateway_down:gateway";

/// Why the gateway is down, from one collection of its section; `None` when it is up. Down is
/// what `/status` calls a failure (a container not running, the engine unreachable, no healthy
/// model) and, unlike `/status`, a health endpoint that fails, times out or answers garbage: the
/// host's LLM calls go through it, so a gateway that cannot say it is healthy is not trusted.
pub(crate) fn down_reasons(collected: &Result<Collected, String>) -> Option<Vec<String>> {
    let c = match collected {
        Ok(c) => c,
        Err(e) => return Some(vec![format!("the gateway check failed: {e}")]),
    };
    let mut reasons: Vec<String> = c
        .findings
        .iter()
        .filter(|f| f.level == Verdict::Fail)
        .map(|f| f.reason.clone())
        .collect();
    if let Some(e) = c.data["health_error"].as_str() {
        reasons.push(format!("gateway {e}"));
    }
    (!reasons.is_empty()).then_some(reasons)
}

/// The alert for `reasons`; folded under the Docker engine's alert when the engine is what is
/// unreachable.
pub(crate) fn alert(reasons: &[String], fold: bool) -> Alert {
    let a = Alert::new(
        RULE,
        SUBJECT,
        Severity::Critical,
        format!("🔌 LLM gateway down: {}", reasons.join("; ")),
    );
    if fold
        && reasons
            .iter()
            .any(|r| r.starts_with("docker engine unreachable"))
    {
        a.caused_by(crate::jobs::DOCKER_ENGINE_DOWN)
    } else {
        a
    }
}

/// Checks the gateway every `every` until `shutdown`; nothing to do when no container and no
/// health URL are configured.
pub(crate) fn spawn(
    config: &lookout_config::Config,
    alerts: Arc<Alerts>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if !config.gateway.is_checked() {
        return;
    }
    let section = crate::status::gateway_section(config);
    let every = config.gateway.probe_interval;
    let fold = config.alerts.fold;
    // The health endpoint has its own timeout; this bounds a hung engine socket.
    let limit = config.gateway.health_timeout + Duration::from_secs(5);
    tokio::spawn(async move {
        loop {
            let collected = tokio::time::timeout(limit, section.collect())
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}s", limit.as_secs())));
            let now = Utc::now();
            let done = match down_reasons(&collected) {
                Some(reasons) => alerts.fire(alert(&reasons, fold), now).await,
                None => alerts.resolve(RULE, SUBJECT, now).await,
            };
            match done {
                Ok(outcome) => tracing::debug!(?outcome, "gateway check"),
                Err(e) => tracing::warn!(error = %e, "cannot record the gateway check"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|v| *v) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use lookout_status_collect::Finding;
    use serde_json::json;

    use super::*;

    fn collected(findings: Vec<Finding>, health_error: Option<&str>) -> Result<Collected, String> {
        Ok(Collected {
            data: json!({"health_error": health_error}),
            findings,
        })
    }

    #[test]
    fn a_healthy_gateway_or_a_warning_is_not_down() {
        assert_eq!(down_reasons(&collected(vec![], None)), None);
        let one_model = Finding::warn("gateway: 1 unhealthy model(s)");
        assert_eq!(down_reasons(&collected(vec![one_model], None)), None);
    }

    #[test]
    fn failures_and_a_failing_health_endpoint_are_down_with_their_reasons() {
        let exited = Finding::fail("gateway container litellm is exited");
        let r = down_reasons(&collected(
            vec![exited],
            Some("health endpoint answered HTTP 500"),
        ));
        assert_eq!(
            r.unwrap(),
            [
                "gateway container litellm is exited",
                "gateway health endpoint answered HTTP 500"
            ]
        );
        let r = down_reasons(&Err("timed out".into())).unwrap();
        assert_eq!(r, ["the gateway check failed: timed out"]);
    }

    #[test]
    fn the_alert_names_its_reasons_and_folds_under_an_unreachable_engine() {
        let a = alert(&["gateway health endpoint answered HTTP 500".into()], true);
        assert_eq!(a.key(), GATEWAY_DOWN);
        assert_eq!(
            a.text,
            "🔌 LLM gateway down: gateway health endpoint answered HTTP 500"
        );
        assert_eq!(a.cause, None);
        let engine = vec!["docker engine unreachable: no such socket".to_owned()];
        assert_eq!(
            alert(&engine, true).cause.as_deref(),
            Some(crate::jobs::DOCKER_ENGINE_DOWN)
        );
        assert_eq!(alert(&engine, false).cause, None);
    }
}
