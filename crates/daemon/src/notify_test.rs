//! `POST /api/notify/test {"sink"}` (`lookout notify test SINK`): one test message delivered to
//! that sink directly — not through the outbox, so a person sees the sink's own answer (its error,
//! or that it took the message) at once instead of a retry later.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use lookout_notify::{Outgoing, Severity};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{ApiError, AppState};

/// The body of `POST /api/notify/test`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestBody {
    /// The sink's name (`[[notify.sinks]] name`, or its kind).
    sink: String,
}

/// Delivers a test message to the sink: 200 with how long it took when the sink took it, 502 with
/// the sink's error when it did not, 404 naming the sinks when there is no such sink.
pub(crate) async fn test(
    State(state): State<AppState>,
    body: Result<Json<TestBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let Some(sink) = state.outbox().sink(&b.sink) else {
        let names = state.outbox().sink_names();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no sink is named `{}` (sinks: {})",
                b.sink,
                names.join(", ")
            ),
        )
        .with("field", json!("sink"))
        .with("sinks", json!(names)));
    };
    let now = Utc::now();
    let n = Outgoing {
        id: format!("test-{}", now.timestamp_micros()),
        created_at: now,
        key: Some(format!("test:{}", b.sink)),
        group: None,
        severity: Severity::Info,
        text: format!(
            "🧪 Lookout test message to `{}` from lookoutd on {}\nIf you read this, alerts reach you here.",
            b.sink,
            hostname()
        ),
        payload: json!({ "test": true }),
        fallback_for: None,
    };
    let started = Instant::now();
    let result = sink.deliver(&n).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => {
            tracing::info!(sink = %b.sink, elapsed_ms, "test message delivered");
            Ok(Json(json!({
                "sink": b.sink,
                "delivered": true,
                "id": n.id,
                "elapsed_ms": elapsed_ms,
            })))
        }
        Err(e) => {
            tracing::warn!(sink = %b.sink, error = %e, "test message not delivered");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("sink `{}` did not take the test message: {e}", b.sink),
            )
            .with("sink", json!(b.sink))
            .with("delivered", json!(false))
            .with("elapsed_ms", json!(elapsed_ms)))
        }
    }
}

/// This machine's name, for the test message (so a person with several hosts knows which).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}
