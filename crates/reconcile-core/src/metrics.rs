//! Per-tick metrics, in Prometheus terms (units in names, counters end in `_total`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `lookout_reconcile_ticks_total` | counter | |
//! | `lookout_reconcile_tick_errors_total` | counter | |
//! | `lookout_reconcile_events_drained_total` | counter | |
//! | `lookout_reconcile_tick_events` | histogram (events per tick) | |
//! | `lookout_reconcile_actions_total` | counter | `type` |
//! | `lookout_reconcile_effects_attempted_total` | counter | `type` |
//! | `lookout_reconcile_effects_succeeded_total` | counter | `type` |
//! | `lookout_reconcile_effects_failed_total` | counter | `type` |
//! | `lookout_reconcile_invariant_violations_total` | counter (onsets) | `invariant` |
//! | `lookout_reconcile_invariant_violations_firing` | gauge (holding now) | `invariant` |
//! | `lookout_reconcile_tick_duration_seconds` | histogram | |
//! | `lookout_reconcile_pending_events` | gauge (queue depth) | |

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(String, String)>;

/// The reconciler's metrics. Cheap to clone (handles to the same values).
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    ticks: Counter,
    tick_errors: Counter,
    events_drained: Counter,
    tick_events: Histogram,
    actions: Family<Labels, Counter>,
    attempted: Family<Labels, Counter>,
    succeeded: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    violations_total: Family<Labels, Counter>,
    violations_now: Family<Labels, Gauge>,
    tick_seconds: Histogram,
    pending: Gauge,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        ReconcileMetrics {
            ticks: Counter::default(),
            tick_errors: Counter::default(),
            events_drained: Counter::default(),
            tick_events: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            actions: Family::default(),
            attempted: Family::default(),
            succeeded: Family::default(),
            failed: Family::default(),
            violations_total: Family::default(),
            violations_now: Family::default(),
            tick_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            pending: Gauge::default(),
        }
    }
}

fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_owned(), v.to_owned())]
}

impl ReconcileMetrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ticks run so far (a liveness signal: a loop that stops ticking stops this count).
    pub fn ticks(&self) -> u64 {
        self.ticks.get()
    }

    /// Registers every metric in `registry` (names start with `lookout_reconcile_`).
    ///
    /// The host model's action types and invariants are created at zero, so every series exists
    /// from the first scrape (a rate over a series that appears late misses its first increase).
    pub fn register(&self, registry: &mut Registry) {
        for kind in crate::host::ACTION_KINDS {
            let l = label("type", kind);
            for f in [
                &self.actions,
                &self.attempted,
                &self.succeeded,
                &self.failed,
            ] {
                let _ = f.get_or_create(&l);
            }
        }
        for inv in crate::host::Invariant::ALL.iter().map(|i| i.id()) {
            let l = label("invariant", inv);
            let _ = self.violations_total.get_or_create(&l);
            let _ = self.violations_now.get_or_create(&l);
        }
        let r = registry.sub_registry_with_prefix("lookout_reconcile");
        r.register("ticks", "Reconciler ticks run", self.ticks.clone());
        r.register(
            "tick_errors",
            "Reconciler ticks that failed (store unreachable, state unreadable)",
            self.tick_errors.clone(),
        );
        r.register(
            "events_drained",
            "Events drained from the log and applied",
            self.events_drained.clone(),
        );
        r.register(
            "tick_events",
            "Events drained per tick",
            self.tick_events.clone(),
        );
        r.register(
            "actions",
            "Actions emitted (not yet done), by type",
            self.actions.clone(),
        );
        r.register(
            "effects_attempted",
            "Side effects attempted, by action type",
            self.attempted.clone(),
        );
        r.register(
            "effects_succeeded",
            "Side effects that succeeded, by action type",
            self.succeeded.clone(),
        );
        r.register(
            "effects_failed",
            "Side effects that failed (retried next tick), by action type",
            self.failed.clone(),
        );
        r.register(
            "invariant_violations",
            "Invariant violations that began, by invariant",
            self.violations_total.clone(),
        );
        r.register(
            "invariant_violations_firing",
            "Invariant violations holding now, by invariant",
            self.violations_now.clone(),
        );
        r.register_with_unit(
            "tick_duration",
            "Wall time of one tick",
            Unit::Seconds,
            self.tick_seconds.clone(),
        );
        r.register(
            "pending_events",
            "Events in the log not yet applied (queue depth)",
            self.pending.clone(),
        );
    }

    pub(crate) fn tick(&self, events: usize, seconds: f64, pending: i64) {
        self.ticks.inc();
        self.events_drained.inc_by(events as u64);
        self.tick_events.observe(events as f64);
        self.tick_seconds.observe(seconds);
        self.pending.set(pending);
    }

    pub(crate) fn tick_error(&self) {
        self.tick_errors.inc();
    }

    pub(crate) fn action(&self, kind: &str) {
        self.actions.get_or_create(&label("type", kind)).inc();
    }

    pub(crate) fn effect(&self, kind: &str, ok: bool) {
        let l = label("type", kind);
        self.attempted.get_or_create(&l).inc();
        if ok {
            self.succeeded.get_or_create(&l).inc();
        } else {
            self.failed.get_or_create(&l).inc();
        }
    }

    pub(crate) fn onset(&self, invariant: &str) {
        self.violations_total
            .get_or_create(&label("invariant", invariant))
            .inc();
    }

    pub(crate) fn firing(&self, by_invariant: &std::collections::BTreeMap<String, usize>) {
        // Every known invariant gets a value, so a cleared one drops to 0 instead of going stale.
        for inv in crate::host::Invariant::ALL.iter().map(|i| i.id()) {
            self.violations_now
                .get_or_create(&label("invariant", inv))
                .set(0);
        }
        for (inv, n) in by_invariant {
            self.violations_now
                .get_or_create(&label("invariant", inv))
                .set(*n as i64);
        }
    }
}
