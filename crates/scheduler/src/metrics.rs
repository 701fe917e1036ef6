//! The scheduler's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn owner(kind: &str) -> Labels {
    vec![("owner".to_string(), kind.to_string())]
}

/// Counters, gauges and histograms of a scheduler, labelled by `owner` (`task` or `host_job`), so
/// the two schedulers of one daemon share one set of metric families. Cheap to clone (shared
/// handles); give the same value to both with [`crate::Scheduler::with_metrics`].
#[derive(Debug, Clone)]
pub struct SchedulerMetrics {
    /// Runs started.
    pub runs_started: Family<Labels, Counter>,
    /// Runs finished, by owner and outcome (`ok`, `failed`, `timeout`, `interrupted`, `skipped`).
    pub runs_finished: Family<Labels, Counter>,
    /// How long runs took, in seconds.
    pub run_duration: Family<Labels, Histogram>,
    /// Due runs not started: tasks whose next run is past and that no scheduler claimed.
    pub due_not_started: Family<Labels, Gauge>,
    /// Actual start − scheduled time, in seconds (jitter included).
    pub scheduling_lag: Family<Labels, Histogram>,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics {
            runs_started: Family::default(),
            runs_finished: Family::default(),
            // 0.1 s … ~ 2 days
            run_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.1, 4.0, 12))
            }),
            due_not_started: Family::default(),
            // 1 ms … ~ 4.7 h
            scheduling_lag: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 4.0, 12))
            }),
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

    /// Creates the series of `kind` at zero, so they exist from the first scrape.
    pub(crate) fn init(&self, kind: &str) {
        let l = owner(kind);
        let _ = self.runs_started.get_or_create(&l);
        let _ = self.due_not_started.get_or_create(&l);
        let _ = self.run_duration.get_or_create(&l);
        let _ = self.scheduling_lag.get_or_create(&l);
    }

    pub(crate) fn started(&self, kind: &str, lag: std::time::Duration) {
        let l = owner(kind);
        self.runs_started.get_or_create(&l).inc();
        self.scheduling_lag
            .get_or_create(&l)
            .observe(lag.as_secs_f64());
    }

    pub(crate) fn due(&self, kind: &str, n: i64) {
        self.due_not_started.get_or_create(&owner(kind)).set(n);
    }

    pub(crate) fn duration(&self, kind: &str, d: std::time::Duration) {
        self.run_duration
            .get_or_create(&owner(kind))
            .observe(d.as_secs_f64());
    }

    pub(crate) fn finished(&self, kind: &str, outcome: &str) {
        let mut l = owner(kind);
        l.push(("outcome".to_string(), outcome.to_string()));
        self.runs_finished.get_or_create(&l).inc();
    }
}
