//! # lookout-daemon — lookoutd as a library
//!
//! Everything lookoutd does between its flags and its socket: ingest (`POST /api/events`, its
//! group-commit writer), the projector (events → messages and deliveries tables), alert routing and
//! root-cause folding over lookout-notify's lifecycle, quiet windows (configured, deploy), the two
//! schedulers (agent tasks and `[[jobs]]`), the watchdog (`[[watch]]`), the reconciler's driver and
//! effects, the gateway check, the adapters that feed lookout-status-collect, `lookout doctor`'s
//! checks, and the HTTP API with its protection (token, loopback-only, limits).
//!
//! `bins/lookoutd` parses flags and calls [`run`]; a host written in Rust can run the same daemon
//! in-process with [`run_until`] and its own stop signal:
//!
//! ```no_run
//! # async fn demo() -> Result<(), lookout_daemon::StartupError> {
//! let options = lookout_daemon::Options {
//!     bind: Some("127.0.0.1:0".into()),
//!     state_dir: Some(std::env::temp_dir().join("lookout-demo")),
//!     ..Default::default()
//! };
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let daemon = tokio::spawn(lookout_daemon::run_until(options, async move {
//!     let _ = stopped.await;
//! }));
//! // … the host runs; then:
//! let _ = stop.send(());
//! daemon.await.expect("the daemon task")?;
//! # Ok(()) }
//! ```
//!
//! **Invariant:** every condition it alerts on goes through lookout-notify's lifecycle, and every
//! message through the durable outbox; it reads the world only through the library crates' traits.

mod alerts;
mod boot;
mod chat;
mod checks;
mod daemon;
mod docker_events;
mod docker_stream;
mod doctor;
mod flow;
mod folding;
mod gateway;
mod host_runs;
mod http;
mod incidents;
mod ingest;
mod jobs;
mod log;
mod logs;
mod notify_test;
mod page;
mod projector;
mod reconcile;
mod reload;
mod run_watch;
mod selfcheck;
mod stale;
mod startup;
mod status;
mod systemd;
#[cfg(test)]
mod testing;
mod watch;
mod wiring;

pub use checks::{
    check_config, check_programs, check_schedules, check_store_url, check_values, load_config,
    task_spec,
};
pub use daemon::{Options, default_state_dir, run, run_until};
pub use logs::{LogTest, LogTestLine, test_log_rule};
pub use startup::StartupError;
