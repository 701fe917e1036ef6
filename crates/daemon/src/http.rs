//! The HTTP API: routes and handlers, thin over the library crates. Errors are one type,
//! [`ApiError`], that maps to a status code and a JSON body in one place.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use lookout_store::Store;
use serde::Deserialize;
use serde_json::json;

use crate::boot::{BootError, SharedBoots};
use crate::ingest::{self, IngestLimits};
use crate::projector::Projector;
use crate::stale::StaleWatch;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    boots: SharedBoots,
    stale: Arc<StaleWatch>,
    projector: Arc<Projector>,
    limits: IngestLimits,
    writer: ingest::Writer,
    status: lookout_status_collect::StatusCache,
    running: Arc<Running>,
    schedulers: Option<crate::jobs::Schedulers>,
    watchdog: Option<Arc<lookout_watchdog::Watchdog>>,
    reconciler: Arc<crate::reconcile::Reconciler>,
    metrics: Arc<prometheus_client::registry::Registry>,
    alerts: Arc<lookout_notify::alerts::Alerts>,
    outbox: Arc<lookout_notify::Outbox>,
    token: Option<String>,
    selfcheck: Option<Arc<crate::selfcheck::SelfCheck>>,
    docker_stream: Option<crate::docker_stream::StreamStatus>,
    host_runs: crate::host_runs::RunStatuses,
    started_at: DateTime<Utc>,
    started: Instant,
}

/// What the daemon hands the HTTP layer.
pub(crate) struct Parts {
    pub(crate) store: Store,
    pub(crate) boots: SharedBoots,
    pub(crate) stale: Arc<StaleWatch>,
    pub(crate) projector: Arc<Projector>,
    pub(crate) limits: IngestLimits,
    pub(crate) token: Option<String>,
    pub(crate) collectors: Vec<Arc<dyn lookout_status_collect::Collector>>,
    pub(crate) section_timeout: std::time::Duration,
    pub(crate) status_ttl: std::time::Duration,
    pub(crate) running: Arc<Running>,
    pub(crate) schedulers: Option<crate::jobs::Schedulers>,
    pub(crate) watchdog: Option<Arc<lookout_watchdog::Watchdog>>,
    pub(crate) reconciler: Arc<crate::reconcile::Reconciler>,
    pub(crate) metrics: Arc<prometheus_client::registry::Registry>,
    pub(crate) alerts: Arc<lookout_notify::alerts::Alerts>,
    pub(crate) outbox: Arc<lookout_notify::Outbox>,
    /// Notified when new events are projected (wakes the reconciler).
    pub(crate) events_applied: Arc<tokio::sync::Notify>,
    /// The log's append signal (the ingest writer raises it; the projector follows it).
    pub(crate) log: crate::log::EventLog,
    /// The self-check's state, when `[selfcheck]` pings (the doctor shows its last ping).
    pub(crate) selfcheck: Option<Arc<crate::selfcheck::SelfCheck>>,
    /// The Docker event stream's state, when containers are followed (the doctor shows it).
    pub(crate) docker_stream: Option<crate::docker_stream::StreamStatus>,
    /// The host's open runs lookoutd follows (the doctor shows them).
    pub(crate) host_runs: crate::host_runs::RunStatuses,
}

impl AppState {
    /// Starts the ingest writer and the projection task, and holds everything the handlers reach.
    pub(crate) fn new(p: Parts) -> Self {
        let Parts {
            store,
            boots,
            stale,
            projector,
            limits,
            token,
            collectors,
            section_timeout,
            status_ttl,
            running,
            schedulers,
            watchdog,
            reconciler,
            metrics,
            alerts,
            outbox,
            events_applied,
            log,
            selfcheck,
            docker_stream,
            host_runs,
        } = p;
        AppState {
            inner: Arc::new(Inner {
                writer: {
                    ingest::spawn_projection(&log, projector.clone(), events_applied);
                    ingest::Writer::start(store.clone(), log)
                },
                store,
                boots,
                stale,
                projector,
                limits,
                token,
                status: lookout_status_collect::StatusCache::new(
                    collectors,
                    section_timeout,
                    status_ttl,
                ),
                running,
                schedulers,
                watchdog,
                reconciler,
                metrics,
                alerts,
                outbox,
                selfcheck,
                docker_stream,
                host_runs,
                started_at: Utc::now(),
                started: Instant::now(),
            }),
        }
    }
}

impl AppState {
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn boots(&self) -> &SharedBoots {
        &self.inner.boots
    }

    pub(crate) fn limits(&self) -> IngestLimits {
        self.inner.limits
    }

    pub(crate) fn status(&self) -> &lookout_status_collect::StatusCache {
        &self.inner.status
    }

    pub(crate) fn schedulers(&self) -> Option<&crate::jobs::Schedulers> {
        self.inner.schedulers.as_ref()
    }

    pub(crate) fn watchdog(&self) -> Option<&lookout_watchdog::Watchdog> {
        self.inner.watchdog.as_deref()
    }

    pub(crate) fn alerts(&self) -> &lookout_notify::alerts::Alerts {
        &self.inner.alerts
    }

    pub(crate) fn outbox(&self) -> &lookout_notify::Outbox {
        &self.inner.outbox
    }

    pub(crate) fn reconciler(&self) -> &crate::reconcile::Reconciler {
        &self.inner.reconciler
    }

    /// The group-commit writer of ingest.
    pub(crate) fn writer(&self) -> &ingest::Writer {
        &self.inner.writer
    }
}

/// Protection of every route: a request that takes longer than `timeout` (a slow client included,
/// since bodies are read inside the handlers) gets 408; past `concurrency` requests in progress, new
/// ones are shed with 503 at once instead of queueing; bodies are capped at `max_body` bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Protection {
    pub(crate) timeout: std::time::Duration,
    pub(crate) concurrency: usize,
    /// `/status` and `/` behind the bearer token too (`server.status_requires_token`).
    pub(crate) status_requires_token: bool,
}

/// The configuration in force (replaced by a SIGHUP reload), where it came from, and the state dir.
pub(crate) struct Running {
    pub(crate) config: std::sync::RwLock<lookout_config::Config>,
    pub(crate) config_path: Option<std::path::PathBuf>,
    pub(crate) state_dir: std::path::PathBuf,
}

pub(crate) fn router(state: AppState, protection: Protection) -> Router {
    let max_body = state.inner.limits.max_body_bytes;
    let api = Router::new()
        .route(
            "/events",
            post(ingest::post_events)
                .get(ingest::get_events)
                .layer(axum::extract::DefaultBodyLimit::max(max_body)),
        )
        .route("/boot/begin", post(boot_begin))
        .route("/boot/ready", post(boot_ready))
        .route("/boot/fail", post(boot_fail))
        .route("/stale-scan", post(stale_scan))
        .route("/doctor", get(doctor))
        .route("/tasks", get(crate::jobs::list).post(crate::jobs::add))
        .route("/tasks/{name}/pause", post(crate::jobs::pause))
        .route("/tasks/{name}/resume", post(crate::jobs::resume))
        .route("/tasks/{name}/run", post(crate::jobs::run_now))
        .route("/tasks/{name}/history", get(crate::jobs::history))
        .route("/alerts", get(crate::alerts::list))
        .route("/alerts/{id}/retry", post(crate::alerts::retry))
        .route("/alerts/ack", post(crate::incidents::ack))
        .route("/incidents", get(crate::incidents::list))
        .route("/notify/test", post(crate::notify_test::test))
        .route(
            "/quiet",
            get(crate::alerts::quiet_list).post(crate::alerts::quiet_add),
        )
        .route("/quiet/{id}/end", post(crate::alerts::quiet_end))
        .route("/watchdog", get(crate::watch::list))
        .route("/watchdog/{target}/explain", get(crate::watch::explain))
        .route("/watchdog/{target}/reset", post(crate::watch::reset))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    let debug = Router::new()
        .route(
            "/reconcile-dry-run",
            post(crate::reconcile::dry_run_handler),
        )
        .route("/replay-events", post(crate::reconcile::replay_handler))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    let timeout_secs = protection.timeout.as_secs_f64();
    let concurrency = protection.concurrency;
    let guard = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            move |e: tower::BoxError| async move {
                if e.is::<tower::timeout::error::Elapsed>() {
                    ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!("request took longer than the limit of {timeout_secs}s"),
                    )
                } else if e.is::<tower::load_shed::error::Overloaded>() {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("{concurrency} requests already in progress; retry shortly"),
                    )
                    .with("limit", json!(concurrency))
                } else {
                    ApiError::internal(e)
                }
            },
        ))
        .load_shed()
        .concurrency_limit(protection.concurrency)
        .timeout(protection.timeout);
    let mut status = Router::new()
        .route("/status", get(crate::status::status))
        .route("/", get(crate::status::index));
    if protection.status_requires_token {
        status = status.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    }
    let routes = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(status)
        .nest("/api", api)
        .nest("/debug", debug)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state);
    // The guard wraps the router as one service: `Router::layer` would give every route its own
    // limit, and the concurrency limit is the daemon's, not a route's.
    Router::new().fallback_service(guard.service(routes))
}

/// An error a client gets as JSON: `{"error": "...", "field": "..."}` with its status code.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
            extra: serde_json::Map::new(),
        }
    }

    /// What the error says (for an answer that is not HTTP: a chat command's).
    pub(crate) fn message(&self) -> String {
        self.message.clone()
    }

    /// Adds a field to the JSON body (`index`, `field`, `limit` …).
    pub(crate) fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    fn bad_request(message: impl Into<String>, field: Option<&'static str>) -> Self {
        ApiError {
            field,
            ..ApiError::new(StatusCode::BAD_REQUEST, message)
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        for (k, v) in self.extra {
            body[k] = v;
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        // The rejection's text names the missing or mistyped field and where it is.
        let status = match r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, r.body_text())
    }
}

impl From<BootError> for ApiError {
    fn from(e: BootError) -> Self {
        match e {
            BootError::Book(lookout_crash_detect::CrashDetectError::InvalidService(_)) => {
                ApiError::bad_request(e.to_string(), Some("service"))
            }
            other => ApiError::internal(other),
        }
    }
}

/// With a token configured, every `/api` request must carry `Authorization: Bearer <token>`.
async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.inner.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "missing or wrong bearer token (set LOOKOUT_TOKEN for the CLI)"})),
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /metrics`: Prometheus text (OpenMetrics), read-only.
async fn metrics(State(state): State<AppState>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.inner.metrics)
        .map_err(ApiError::internal)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Lightweight liveness: in-memory only, never touches the store, git or Docker.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": state.inner.started_at.to_rfc3339(),
        "uptime_seconds": state.inner.started.elapsed().as_secs(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootBegin {
    service: String,
    version: Option<String>,
    pid: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootReady {
    service: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootFail {
    service: String,
    cause: String,
}

async fn boot_begin(
    State(state): State<AppState>,
    body: Result<Json<BootBegin>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(b) = body?;
    let s = &state.inner;
    let outcome = s.boots.begin(&s.store, b.service, b.version, b.pid).await?;
    Ok(Json(outcome))
}

async fn boot_ready(
    State(state): State<AppState>,
    body: Result<Json<BootReady>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(b) = body?;
    let s = &state.inner;
    let report = s.boots.ready(&s.store, b.service).await?;
    let mut body = serde_json::to_value(&report).map_err(ApiError::internal)?;
    body["message"] = json!(report.message());
    Ok(Json(body))
}

async fn boot_fail(
    State(state): State<AppState>,
    body: Result<Json<BootFail>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(b) = body?;
    if b.cause.trim().is_empty() {
        return Err(ApiError::bad_request(
            "cause must not be empty",
            Some("cause"),
        ));
    }
    let s = &state.inner;
    let outcome = s.boots.fail(&s.store, b.service, b.cause).await?;
    Ok(Json(outcome))
}

async fn stale_scan(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let s = &state.inner;
    // Scan what the host has reported so far, including events not projected yet.
    s.projector.catch_up().await.map_err(ApiError::internal)?;
    let findings = s.stale.scan(&s.store).await.map_err(ApiError::internal)?;
    let messages: Vec<String> = findings.iter().map(|f| f.message()).collect();
    Ok(Json(json!({
        "threshold_secs": s.stale.threshold().as_secs(),
        "findings": findings,
        "messages": messages,
    })))
}

async fn doctor(State(state): State<AppState>) -> impl IntoResponse {
    let s = &state.inner;
    let config = s
        .running
        .config
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let host_runs = s
        .host_runs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let checks = crate::doctor::run(crate::doctor::DoctorInput {
        config: &config,
        config_path: s.running.config_path.as_deref(),
        state_dir: &s.running.state_dir,
        store: &s.store,
        selfcheck: s.selfcheck.as_ref().and_then(|c| c.last()),
        docker_stream: s.docker_stream.as_ref().map(|d| d.get()),
        host_runs,
    })
    .await;
    let failed = checks.iter().filter(|c| c.status == "fail").count();
    Json(json!({"ok": failed == 0, "failed": failed, "checks": checks}))
}

async fn not_found(uri: Uri) -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not found", "path": uri.path() })),
    )
}
