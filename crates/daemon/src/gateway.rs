//! The gateway check: one `gateway_down` alert while the LLM gateway fails (a container not
//! running, no healthy model, a health endpoint that fails), and one "resolved" when it passes.
//! It is the cause the failures and overdue alerts of the tasks that need the gateway
//! (`gateway.needed_by`) are folded under; while its containers cannot be inspected it depends on
//! the Docker engine, and folds under the engine's alert (the fold table, `folding.rs`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_notify::Severity;
use lookout_notify::alerts::{Alert, Alerts, Outcome};
use lookout_status_collect::{CollectError, Collected, Collector, Verdict};

use crate::folding::{DOCKER_ENGINE, gateway_down};

/// The gateway down, from one collection of its section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Down {
    /// Why, as `/status` and `lookout doctor` say it.
    pub(crate) reasons: Vec<String>,
    /// Its containers could not be inspected: the Docker engine is unreachable.
    pub(crate) engine_unreachable: bool,
}

/// Why the gateway is down, from one collection of its section; `None` when it is up. Down is
/// what `/status` calls a failure (a container not running, the engine unreachable, no healthy
/// model) and, unlike `/status`, a health endpoint that fails, times out or answers garbage: the
/// host's LLM calls go through it, so a gateway that cannot say it is healthy is not trusted.
pub(crate) fn down(collected: &Result<Collected, CollectError>) -> Option<Down> {
    let c = match collected {
        Ok(c) => c,
        Err(e) => {
            return Some(Down {
                reasons: vec![format!("the gateway check failed: {e}")],
                engine_unreachable: false,
            });
        }
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
    // The section marks each container it could not inspect (`state = "engine_unreachable"`).
    let engine_unreachable = c.data["containers"]
        .as_object()
        .is_some_and(|m| m.values().any(|s| s["state"] == "engine_unreachable"));
    (!reasons.is_empty()).then_some(Down {
        reasons,
        engine_unreachable,
    })
}

/// [`down`]'s reasons (what `lookout doctor` shows).
pub(crate) fn down_reasons(collected: &Result<Collected, CollectError>) -> Option<Vec<String>> {
    down(collected).map(|d| d.reasons)
}

/// The alert for `down`: its subject depends on the Docker engine while the engine is what keeps
/// its containers from being inspected.
pub(crate) fn alert(down: &Down) -> Alert {
    let a = Alert::keyed(
        gateway_down(),
        Severity::Critical,
        format!("🔌 LLM gateway down: {}", down.reasons.join("; ")),
    );
    if down.engine_unreachable {
        a.depends_on(DOCKER_ENGINE)
    } else {
        a
    }
}

/// One check's verdict to the lifecycle at `now`: fires while down, resolves when up.
pub(crate) async fn record(
    alerts: &Alerts,
    collected: &Result<Collected, CollectError>,
    now: DateTime<Utc>,
) -> Result<Outcome, lookout_store::StoreError> {
    match down(collected) {
        Some(d) => alerts.fire(alert(&d), now).await,
        None => alerts.resolve_key(&gateway_down(), now).await,
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
    // The health endpoint has its own timeout; this bounds a hung engine socket.
    let limit = config.gateway.health_timeout + Duration::from_secs(5);
    tokio::spawn(async move {
        loop {
            let collected = tokio::time::timeout(limit, section.collect())
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}s", limit.as_secs()).into()));
            match record(&alerts, &collected, Utc::now()).await {
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

    fn collected(
        findings: Vec<Finding>,
        health_error: Option<&str>,
    ) -> Result<Collected, CollectError> {
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
    fn the_alert_names_its_reasons_and_depends_on_an_unreachable_engine() {
        let http_500 = collected(vec![], Some("health endpoint answered HTTP 500"));
        let a = alert(&down(&http_500).unwrap());
        assert_eq!(a.key().to_string(), "gateway_down:gateway");
        assert_eq!(
            a.text,
            "🔌 LLM gateway down: gateway health endpoint answered HTTP 500"
        );
        assert_eq!(a.cause, None);
        assert!(a.depends_on.is_empty(), "{a:?}");
        // The engine unreachable: the section marks the containers it could not inspect (the
        // reason's wording plays no part).
        let engine = Ok(Collected {
            data: json!({"containers": {"litellm": {"state": "engine_unreachable"}}}),
            findings: vec![Finding::fail("the engine said no")],
        });
        let d = down(&engine).unwrap();
        assert!(d.engine_unreachable);
        assert_eq!(alert(&d).depends_on, vec![DOCKER_ENGINE]);
        assert_eq!(alert(&d).cause, None, "the fold table names the cause");
    }
}
