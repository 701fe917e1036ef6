//! Prometheus metrics of the watchdog.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProbeLabels {
    pub target: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ActionLabels {
    pub target: String,
    pub tier: String,
}

/// The watchdog's metrics: probes by result, heal actions by tier, open circuits.
#[derive(Debug, Clone, Default)]
pub struct WatchdogMetrics {
    pub(crate) probes: Family<ProbeLabels, Counter>,
    pub(crate) actions: Family<ActionLabels, Counter>,
    pub(crate) circuits_open: Gauge,
}

impl WatchdogMetrics {
    /// Registers `lookout_watchdog_probes_total{target,result}`,
    /// `lookout_watchdog_heal_actions_total{target,tier}` and `lookout_watchdog_circuits_open`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lookout_watchdog_probes",
            "Probes by target and result (healthy, failing, unknown)",
            self.probes.clone(),
        );
        registry.register(
            "lookout_watchdog_heal_actions",
            "Heal actions by target and tier",
            self.actions.clone(),
        );
        registry.register(
            "lookout_watchdog_circuits_open",
            "Open circuits (per target and shared)",
            self.circuits_open.clone(),
        );
    }

    /// Circuits open now (per target and shared).
    pub fn circuits_open(&self) -> i64 {
        self.circuits_open.get()
    }
}
