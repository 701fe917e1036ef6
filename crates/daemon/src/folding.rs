//! Root-cause folding as data: the rules lookoutd raises its alerts under, and the fold table the
//! alert lifecycle (lookout-notify's `alerts`) consults — which cause folds which rules, for which
//! subjects (`docs/operations.md`, "Root-cause folding"). A raiser never names a cause: it says
//! what its alert's subject depends on ([`DOCKER_ENGINE`], [`GATEWAY`]), from the configuration or
//! the store, and the lifecycle finds the firing cause in [`rules`].
//!
//! | cause | folds | for subjects that depend on | their one-off messages |
//! |---|---|---|---|
//! | `watchdog_shared:docker engine` | `watchdog_circuit`, `task-failed`, `gateway_down`, `container_died`, `container_unhealthy`, `container_restart_loop` | the Docker engine: `[[watch]]` targets of `kind = "container"`, tasks and jobs running in a container, the gateway while its containers cannot be inspected, the containers followed through the engine's events | dropped |
//! | `gateway_down:gateway` | `task-failed`, `task-overdue`, `unanswered` | the gateway: the tasks and jobs of `gateway.needed_by`, and every chat's answer (an agent answers through the gateway) | sent |
//!
//! Two more relations of the operations guide are not lifecycle folds and live where they are
//! decided: a channel down (`I5`) counts the stuck deliveries on it (`I4`) in its own message
//! (lookout-reconcile-core's invariants), and lookoutd's own downtime is the scheduler's missed-run
//! policy (no overdue alert for a task whose missed runs it handles).

use lookout_notify::alerts::{AlertKey, Dependency, FoldRule};

/// The rules of lookoutd's alert keys (`rule:subject`).
pub(crate) mod rule {
    /// A task's or job's run failed while a cause of it fired (subject: the task).
    pub(crate) const TASK_FAILED: &str = "task-failed";
    /// A task or job overdue (subject: the task).
    pub(crate) const TASK_OVERDUE: &str = "task-overdue";
    /// One run's messages from the scheduler (`task-run:<run id>:<step>`), not alerts.
    pub(crate) const TASK_RUN: &str = "task-run";
    /// A watchdog target's circuit open (subject: the target).
    pub(crate) const WATCHDOG_CIRCUIT: &str = "watchdog_circuit";
    /// A watchdog shared circuit open (subject: the shared upstream, `docker engine`).
    pub(crate) const WATCHDOG_SHARED: &str = "watchdog_shared";
    /// The LLM gateway down (subject: `gateway`).
    pub(crate) const GATEWAY_DOWN: &str = "gateway_down";
    /// A service crash-looping (subject: the service).
    pub(crate) const CRASH_LOOP: &str = "crash_loop";
    /// A service's recovery report (subject: the service), a one-off message.
    pub(crate) const BOOT_RECOVERED: &str = "boot_recovered";
    /// A chat's batch in flight too long (subject: the chat).
    pub(crate) const INTERRUPTED_RUN: &str = "interrupted_run";
}

/// The Docker engine: container targets, container tasks and jobs, and the gateway's containers
/// depend on it. Also the watchdog's shared upstream of container targets, so the subject of its
/// shared circuit's alert.
pub(crate) const DOCKER_ENGINE: Dependency = Dependency("docker engine");

/// The LLM gateway: the tasks and jobs of `gateway.needed_by` depend on it.
pub(crate) const GATEWAY: Dependency = Dependency("gateway");

/// The alert that says the Docker engine is down: the watchdog's shared circuit for it.
pub(crate) fn engine_down() -> AlertKey {
    AlertKey::new(rule::WATCHDOG_SHARED, DOCKER_ENGINE.0)
}

/// The gateway check's alert (there is one gateway).
pub(crate) fn gateway_down() -> AlertKey {
    AlertKey::new(rule::GATEWAY_DOWN, "gateway")
}

/// The fold table, in order: a subject that depends on both causes folds under the first that
/// fires.
pub(crate) fn rules() -> Vec<FoldRule> {
    vec![
        // A container cannot run without its engine: every alert and run message about one is
        // the engine's effect while it is down.
        FoldRule {
            cause: engine_down(),
            folds: &[
                rule::WATCHDOG_CIRCUIT,
                rule::TASK_FAILED,
                rule::GATEWAY_DOWN,
                crate::docker_events::DIED,
                crate::docker_events::UNHEALTHY,
                crate::docker_events::RESTART_LOOP,
            ],
            when: DOCKER_ENGINE,
            drops_messages: true,
        },
        // A task that needs the gateway may still get through (a wrong health URL, a fallback
        // model): only its failures and its lateness are the cause's effect.
        FoldRule {
            cause: gateway_down(),
            folds: &[
                rule::TASK_FAILED,
                rule::TASK_OVERDUE,
                crate::flow::rule::UNANSWERED,
            ],
            when: GATEWAY,
            drops_messages: false,
        },
    ]
}

/// The table in effect: [`rules`], or none with `alerts.fold = false`.
pub(crate) fn table(config: &lookout_config::Config) -> Vec<FoldRule> {
    if config.alerts.fold {
        rules()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
