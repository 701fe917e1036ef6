//! Prometheus metrics of the notification path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

/// Buckets of time-to-resolve: from a blip to a day.
fn resolve_histogram() -> Histogram {
    Histogram::new([
        30.0,
        60.0,
        120.0,
        300.0,
        600.0,
        1800.0,
        3600.0,
        3.0 * 3600.0,
        6.0 * 3600.0,
        86400.0,
    ])
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    sink: String,
    result: String,
}

/// What a delivery attempt came to, as the `result` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryResult {
    Delivered,
    Retried,
    Dead,
    Postponed,
}

impl DeliveryResult {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Retried => "retried",
            DeliveryResult::Dead => "dead",
            DeliveryResult::Postponed => "postponed",
        }
    }
}

/// The outbox's metrics: deliveries by sink and result, and the dead letters in the store.
///
/// Cheap to clone (the clones share their values); [`crate::Outbox::metrics`] gives the outbox's.
#[derive(Debug, Clone)]
pub struct NotifyMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    dead_letters: Gauge,
    resolve_seconds: Family<RuleLabels, Histogram, fn() -> Histogram>,
}

impl Default for NotifyMetrics {
    fn default() -> Self {
        NotifyMetrics {
            deliveries: Family::default(),
            dead_letters: Gauge::default(),
            resolve_seconds: Family::new_with_constructor(resolve_histogram),
        }
    }
}

impl NotifyMetrics {
    /// Registers `lookout_notify_deliveries_total{sink,result}` (result: `delivered`, `retried`,
    /// `dead`, `postponed`), `lookout_notify_dead_letters` and
    /// `lookout_incident_resolve_seconds{rule}` (each incident's time from firing to resolved).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lookout_notify_deliveries",
            "Delivery attempts by sink and result (delivered, retried, dead, postponed by the rate limit)",
            self.deliveries.clone(),
        );
        registry.register(
            "lookout_notify_dead_letters",
            "Notifications given up on (dead letters) in the store",
            self.dead_letters.clone(),
        );
        registry.register(
            "lookout_incident_resolve_seconds",
            "Time from an alert firing to its resolution (an incident's duration), by rule",
            self.resolve_seconds.clone(),
        );
    }

    /// Records an incident of `rule` that lasted `seconds`.
    pub fn incident_resolved(&self, rule: &str, seconds: f64) {
        self.resolve_seconds
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
            })
            .observe(seconds);
    }

    /// Deliveries to `sink` that came to `result` (`delivered`, `retried`, `dead`, `postponed`)
    /// since start.
    pub fn deliveries(&self, sink: &str, result: &str) -> u64 {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                sink: sink.to_owned(),
                result: result.to_owned(),
            })
            .get()
    }

    /// Dead letters in the store, as last counted.
    pub fn dead_letters(&self) -> i64 {
        self.dead_letters.get()
    }

    pub(crate) fn count(&self, sink: &str, result: DeliveryResult) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                sink: sink.to_owned(),
                result: result.as_str().to_owned(),
            })
            .inc();
    }

    pub(crate) fn set_dead_letters(&self, n: i64) {
        self.dead_letters.set(n);
    }
}
