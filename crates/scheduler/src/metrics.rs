//! The scheduler's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Counters, gauges and histograms of one scheduler. Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct SchedulerMetrics {
    /// Runs started.
    pub runs_started: Counter,
    /// Runs finished, by outcome (`ok`, `failed`, `timeout`, `interrupted`, `skipped`).
    pub runs_finished: Family<Vec<(String, String)>, Counter>,
    /// How long runs took, in seconds.
    pub run_duration: Histogram,
    /// Due runs not started: tasks whose next run is past and that no scheduler claimed.
    pub due_not_started: Gauge,
    /// Actual start − scheduled time, in seconds (jitter included).
    pub scheduling_lag: Histogram,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics {
            runs_started: Counter::default(),
            runs_finished: Family::default(),
            // 0.1 s … ~ 2 days
            run_duration: Histogram::new(exponential_buckets(0.1, 4.0, 12)),
            due_not_started: Gauge::default(),
            // 1 ms … ~ 4.7 h
            scheduling_lag: Histogram::new(exponential_buckets(0.001, 4.0, 12)),
        }
    }
}

impl SchedulerMetrics {
    /// Registers every metric under the `lookout_scheduler_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("lookout_scheduler");
        r.register("runs_started", "Runs started", self.runs_started.clone());
        r.register(
            "runs_finished",
            "Runs finished, by outcome",
            self.runs_finished.clone(),
        );
        r.register(
            "run_duration_seconds",
            "How long runs took",
            self.run_duration.clone(),
        );
        r.register(
            "due_not_started",
            "Tasks whose next run is past and not started",
            self.due_not_started.clone(),
        );
        r.register(
            "scheduling_lag_seconds",
            "Actual start minus scheduled time",
            self.scheduling_lag.clone(),
        );
    }

    pub(crate) fn finished(&self, outcome: &str) {
        self.runs_finished
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .inc();
    }
}
