//! The HTTP API: routes and handlers, thin over the library crates.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use lookout_store::Store;
use serde_json::json;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    #[allow(dead_code)] // read by the routes that land with the status and ingest issues
    store: Store,
    started_at: DateTime<Utc>,
    started: Instant,
}

impl AppState {
    pub(crate) fn new(store: Store) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store,
                started_at: Utc::now(),
                started: Instant::now(),
            }),
        }
    }
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(state)
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

async fn not_found(uri: Uri) -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not found", "path": uri.path() })),
    )
}
