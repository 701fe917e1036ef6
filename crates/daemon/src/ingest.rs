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
use lookout_reconcile_core::ContainerStatusFilter;
use lookout_reconcile_core::vocabulary::{Decoded, check_not_ahead, decode};
use lookout_store::{Appended, NewEvent, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{ApiError, AppState};

/// Limits of one ingest request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IngestLimits {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_events: usize,
    /// How far ahead of lookoutd's clock an event's time may be (`ingest.max_skew`).
    pub(crate) max_skew: std::time::Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 1024 * 1024,
            max_events: 1000,
            max_skew: std::time::Duration::from_secs(300),
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
    let now = chrono::Utc::now();
    let max_skew = chrono::TimeDelta::from_std(limits.max_skew).unwrap_or(chrono::TimeDelta::MAX);
    for (i, item) in items.into_iter().enumerate() {
        let d = decode(item)
            .and_then(|d| check_not_ahead(&d, now, max_skew).map(|()| d))
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("event {i}: {}", e.message))
                    .with("index", json!(i))
                    .with("field", json!(e.field))
            })?;
        decoded.push(d);
    }
    let warnings = remember_runs(state.store(), &mut decoded).await?;
    let seqs = store_events(&state, decoded).await?;
    if warnings.is_empty() {
        Ok(Json(json!({ "seqs": seqs })))
    } else {
        Ok(Json(json!({ "seqs": seqs, "warnings": warnings })))
    }
}

/// The fields a run's later events take from its `run_started` when they do not say them.
const REMEMBERED: [&str; 3] = ["group", "run_kind", "task"];

/// Fills a `run_heartbeat` or `run_finished` that says only its run (and what changed) with the
/// group, kind and task of the run's `run_started` — one earlier in the same request, else the
/// latest in the log — so every consumer reads complete run events and a host need not repeat
/// them. One whose run was never started is stored as it came, with a warning in the answer.
async fn remember_runs(store: &Store, decoded: &mut [Decoded]) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    for i in 0..decoded.len() {
        let (earlier, rest) = decoded.split_at_mut(i);
        let d = &mut rest[0];
        if !matches!(d.kind, "run_heartbeat" | "run_finished")
            || ["group", "run_kind"]
                .iter()
                .all(|f| d.payload.contains_key(*f))
        {
            continue;
        }
        let Some(run_id) = d.subject.clone() else {
            continue;
        };
        let started = match earlier
            .iter()
            .rev()
            .find(|e| e.kind == "run_started" && e.subject.as_deref() == Some(run_id.as_str()))
        {
            Some(e) => Some(e.payload.clone()),
            None => store
                .last_event_of("run_started", &run_id)
                .await
                .map_err(ApiError::internal)?
                .and_then(|e| e.payload.as_object().cloned()),
        };
        match started {
            Some(started) => {
                for field in REMEMBERED {
                    if let (false, Some(v)) = (d.payload.contains_key(field), started.get(field)) {
                        d.payload.insert(field.to_owned(), v.clone());
                    }
                }
            }
            None => warnings.push(format!(
                "event {i}: run `{run_id}` has no run_started; its {} is stored without the \
                 run's group and kind",
                d.kind
            )),
        }
    }
    Ok(warnings)
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
    let written = state.writer().write(decoded).await?;

    // Boot events drive the boot records as `lookout boot` does (once: a retried event is not new).
    // In a task of its own: the events are committed, so their bookkeeping must finish even when
    // this request is dropped (a timeout, a client that hung up).
    if written.stored.iter().any(|(_, a)| a.new) {
        let (state, stored) = (state.clone(), written.stored);
        let task = tokio::spawn(async move {
            let store = state.store();
            for (d, a) in &stored {
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
        });
        let _ = task.await;
    }
    // Projection runs in its own task, woken by the writer; readers that need it current (the stale
    // scan) catch up first.
    Ok(written.seqs)
}

/// What the writer did with one request.
struct Written {
    /// The seq answering each event of the request, in order.
    seqs: Vec<i64>,
    /// The events this request had appended (not the filtered repeats), with their outcome.
    stored: Vec<(Decoded, Appended)>,
}

struct Job {
    decoded: Vec<Decoded>,
    reply: tokio::sync::oneshot::Sender<Result<Written, String>>,
}

/// Group commit: one task appends every ingest request waiting at that moment in one store append
/// (one statement and one fsync on SQLite), instead of one transaction per request. Requests are
/// validated before they get here, so a bad one never joins a group; if the append fails, every
/// request of the group gets the error and nothing of the group is stored.
pub(crate) struct Writer {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

/// Applies new events to the tables in the background: woken by every group commit (the log's
/// subscription), and every few seconds for what other writers appended.
pub(crate) fn spawn_projection(
    log: &crate::log::EventLog,
    projector: std::sync::Arc<crate::projector::Projector>,
    then: std::sync::Arc<tokio::sync::Notify>,
) {
    let mut woken = log.wakeups();
    tokio::spawn(async move {
        loop {
            match projector.catch_up().await {
                // New events are in the tables: the reconciler looks at them now.
                Ok(n) if n > 0 => then.notify_one(),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "projection of new events failed; retried shortly")
                }
            }
            woken.wait(std::time::Duration::from_secs(5)).await;
        }
    });
}

/// Events per group at most: bounds one statement's size and one group's latency.
const MAX_GROUP_EVENTS: usize = 20_000;

impl Writer {
    /// Starts the writer; `log` hears of every group commit.
    pub(crate) fn start(store: Store, log: crate::log::EventLog) -> Writer {
        let (jobs, mut rx) = tokio::sync::mpsc::channel::<Job>(1024);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                let mut n = group[0].decoded.len();
                while n < MAX_GROUP_EVENTS {
                    match rx.try_recv() {
                        Ok(j) => {
                            n += j.decoded.len();
                            group.push(j);
                        }
                        Err(_) => break,
                    }
                }
                write_group(&store, group).await;
                log.appended();
            }
        });
        Writer { jobs }
    }

    async fn write(&self, decoded: Vec<Decoded>) -> Result<Written, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { decoded, reply })
            .await
            .map_err(|_| ApiError::internal("the event writer has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the event writer dropped a request"))?
            .map_err(|e| {
                // A full disk is the operator's to fix, and the host's cue to keep its events
                // and retry: say it plainly, with 507.
                if e.contains("disk is full") || e.contains("No space left") {
                    tracing::error!(error = %e, "cannot store events: the disk is full");
                    ApiError::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        "the disk of lookoutd's store is full: nothing of this request was stored \
                         (earlier acknowledged events are safe); free space, then retry",
                    )
                } else {
                    ApiError::internal(e)
                }
            })
    }
}

/// Where each event of a request went: into the append (its index), or answered by a stored seq.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Appended(usize),
    Existing(i64),
}

async fn write_group(store: &Store, group: Vec<Job>) {
    let now = chrono::Utc::now();
    // container_status noise filter (reconcile-core's): the last status per container, read from
    // the log once per group (another daemon on the same PostgreSQL may have written since), then
    // followed in order. A repeat is not stored; it answers with the seq of the status it repeats.
    let mut filter = ContainerStatusFilter::new();
    let mut last_admitted: HashMap<String, Slot> = HashMap::new();
    let mut events: Vec<NewEvent> = Vec::new();
    let mut plans: Vec<Vec<Slot>> = Vec::with_capacity(group.len());
    let mut failed: Option<String> = None;
    for job in &group {
        let mut slots = Vec::with_capacity(job.decoded.len());
        for d in &job.decoded {
            if d.kind == "container_status"
                && let (Some(container), Some(status)) = (
                    d.subject.as_deref(),
                    d.payload.get("status").and_then(Value::as_str),
                )
            {
                if !last_admitted.contains_key(container) {
                    match store.last_event_of("container_status", container).await {
                        Ok(Some(e)) => {
                            let stored = e.payload.get("status").and_then(Value::as_str);
                            filter.seed(container, stored.unwrap_or(""));
                            last_admitted.insert(container.to_owned(), Slot::Existing(e.seq));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            failed = Some(e.to_string());
                            break;
                        }
                    }
                }
                if !filter.admit(container, status) {
                    // Admitted before means a slot was recorded for it (seeded or appended).
                    if let Some(slot) = last_admitted.get(container) {
                        slots.push(*slot);
                        continue;
                    }
                }
                last_admitted.insert(container.to_owned(), Slot::Appended(events.len()));
            }
            let mut e =
                NewEvent::new(d.kind, Value::Object(d.payload.clone())).at(d.at.unwrap_or(now));
            e.subject = d.subject.clone();
            e.idempotency_key = d.idempotency_key.clone();
            slots.push(Slot::Appended(events.len()));
            events.push(e);
        }
        plans.push(slots);
        if failed.is_some() {
            break; // the whole group gets the error; no need to plan the rest
        }
    }
    let appended = match failed {
        Some(e) => Err(e),
        None => store
            .append_events_reporting(&events)
            .await
            .map_err(|e| e.to_string()),
    };
    plans.resize_with(group.len(), Vec::new);
    for (job, slots) in group.into_iter().zip(plans) {
        let answer = match &appended {
            Err(e) => Err(e.clone()),
            Ok(appended) => {
                let seqs = slots
                    .iter()
                    .map(|s| match s {
                        Slot::Appended(i) => appended[*i].seq,
                        Slot::Existing(seq) => *seq,
                    })
                    .collect();
                let mut stored = Vec::new();
                for (d, s) in job.decoded.into_iter().zip(&slots) {
                    // Only this request's own appends drive boot records (a repeat points elsewhere).
                    if let Slot::Appended(i) = s
                        && d.kind.starts_with("boot_")
                        && !stored
                            .iter()
                            .any(|(_, a): &(Decoded, Appended)| a.seq == appended[*i].seq)
                    {
                        stored.push((d, appended[*i]));
                    }
                }
                Ok(Written { seqs, stored })
            }
        };
        let _ = job.reply.send(answer);
    }
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
