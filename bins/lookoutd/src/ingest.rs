//! `POST /api/events` and `GET /api/events`: the host's way in, and a way to follow the log.
//!
//! A request is validated whole before anything is written: one bad event rejects it with 400
//! naming the event's index and field, and nothing of it is stored. A 2xx means the events are
//! committed. `container_status` repeats of the last status seen for a container are not stored
//! (they answer with the seq of the event that already says so).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lookout_reconcile_core::vocabulary::{Decoded, decode};
use lookout_store::NewEvent;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{ApiError, AppState};

/// Limits of one ingest request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IngestLimits {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_events: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 1024 * 1024,
            max_events: 1000,
        }
    }
}

pub(crate) async fn post_events(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let limits = state.limits();
    let body = body.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body larger than the limit of {} bytes",
                limits.max_body_bytes
            ),
        )
        .with("limit", json!(limits.max_body_bytes))
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "malformed JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected an event object or an array of them, found {}",
                    kind_of(&other)
                ),
            ));
        }
    };
    if items.len() > limits.max_events {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events in one request; the limit is {}",
                items.len(),
                limits.max_events
            ),
        )
        .with("limit", json!(limits.max_events)));
    }
    let mut decoded = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let d = decode(item).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("event {i}: {}", e.message))
                .with("index", json!(i))
                .with("field", json!(e.field))
        })?;
        decoded.push(d);
    }
    let seqs = store_events(&state, decoded).await?;
    Ok(Json(json!({ "seqs": seqs })))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn store_events(state: &AppState, decoded: Vec<Decoded>) -> Result<Vec<i64>, ApiError> {
    let store = state.store();
    let now = chrono::Utc::now();
    // container_status noise filter: the last status per container, from the log and this batch.
    let _filter = state.container_filter_lock().lock().await;
    let mut last_status: HashMap<String, (Option<i64>, String)> = HashMap::new();
    let mut slots: Vec<Result<usize, i64>> = Vec::with_capacity(decoded.len());
    let mut to_store: Vec<(NewEvent, &Decoded)> = Vec::new();
    for d in &decoded {
        if d.kind == "container_status"
            && let (Some(container), Some(status)) = (
                d.subject.as_deref(),
                d.payload.get("status").and_then(Value::as_str),
            )
        {
            if !last_status.contains_key(container) {
                let last = store
                    .last_event_of("container_status", container)
                    .await
                    .map_err(ApiError::internal)?;
                let entry = match last {
                    Some(e) => (
                        Some(e.seq),
                        e.payload
                            .get("status")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    ),
                    None => (None, String::new()),
                };
                last_status.insert(container.to_owned(), entry);
            }
            let (seq, last) = &last_status[container];
            if last == status {
                match seq {
                    Some(seq) => {
                        slots.push(Err(*seq));
                        continue;
                    }
                    None => {
                        // Repeats an event of this very batch: point at it.
                        let idx = to_store
                            .iter()
                            .rposition(|(e, _)| {
                                e.kind == "container_status"
                                    && e.subject.as_deref() == Some(container)
                            })
                            .expect("an earlier event of the batch");
                        slots.push(Ok(idx));
                        continue;
                    }
                }
            }
            last_status.insert(container.to_owned(), (None, status.to_owned()));
        }
        let mut e = NewEvent::new(d.kind, Value::Object(d.payload.clone())).at(d.at.unwrap_or(now));
        e.subject = d.subject.clone();
        e.idempotency_key = d.idempotency_key.clone();
        slots.push(Ok(to_store.len()));
        to_store.push((e, d));
    }
    let events: Vec<NewEvent> = to_store.iter().map(|(e, _)| e.clone()).collect();
    let appended = store
        .append_events_reporting(&events)
        .await
        .map_err(ApiError::internal)?;
    drop(_filter);

    // Boot events drive the boot records as `lookout boot` does (once: a retried event is not new).
    for ((_, d), a) in to_store.iter().zip(&appended) {
        if !a.new {
            continue;
        }
        let service = d.subject.clone().unwrap_or_default();
        let result = match d.kind {
            "boot_started" => state
                .boots()
                .begin_recorded(
                    store,
                    service,
                    d.payload
                        .get("version")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    d.payload
                        .get("pid")
                        .and_then(Value::as_u64)
                        .map(|p| p as u32),
                )
                .await
                .map(|_| ()),
            "boot_ready" => state
                .boots()
                .ready_recorded(store, service)
                .await
                .map(|_| ()),
            _ => Ok(()),
        };
        if let Err(e) = result {
            // The event is stored; its boot bookkeeping is not. Say so, do not fail the request.
            tracing::error!(error = %e, seq = a.seq, "cannot apply a boot event to the boot records");
        }
    }
    if let Err(e) = state.projector().catch_up(store).await {
        tracing::error!(error = %e, "projection of new events failed; it is retried with the next request");
    }
    Ok(slots
        .into_iter()
        .map(|s| match s {
            Ok(i) => appended[i].seq,
            Err(seq) => seq,
        })
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TailQuery {
    #[serde(default)]
    after: i64,
    kind: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/events?after=SEQ&kind=K&limit=N`: events after a seq, oldest first.
pub(crate) async fn get_events(
    State(state): State<AppState>,
    q: Result<Query<TailQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut events = Vec::new();
    let mut cursor = q.after;
    // Skip over other kinds without returning an empty page while matching events exist.
    loop {
        let page = state
            .store()
            .events_after(cursor, 1000)
            .await
            .map_err(ApiError::internal)?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for e in page {
            if q.kind.as_deref().is_none_or(|k| k == e.kind) && events.len() < limit as usize {
                cursor = e.seq;
                events.push(e);
            }
        }
        if events.len() >= limit as usize {
            break;
        }
        cursor = last;
    }
    Ok(Json(json!({ "events": events, "next_after": cursor })))
}
