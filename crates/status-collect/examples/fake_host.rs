//! `/status` for a host that exists only in this example: a tiny fake `StatusDeps` (two channels,
//! one down for 20 minutes; a queue at its concurrency limit with groups waiting; a few groups),
//! the built-in `service`, `channels`, `queue` and `groups` collectors over it, and one collector
//! of the example's own that hangs, to show a slow section cut off by its timeout without holding
//! up the report. `collect_status` runs them concurrently; the verdict, every reason and every
//! section are printed. A second collection restricted to two sections passes.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-status-collect --example fake_host
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lookout_status_collect::host::{
    GroupQueue, GroupsSection, GroupsSnapshot, QueueSection, QueueSnapshot,
};
use lookout_status_collect::sections::{ChannelsSection, ServiceSection};
use lookout_status_collect::{
    ChannelState, CollectError, Collected, Collector, StatusDeps, Verdict, collect_status,
};

/// What the host knows, made up; `now` is when the host was asked to start.
struct FakeHost {
    now: chrono::DateTime<Utc>,
}

#[async_trait::async_trait]
impl StatusDeps for FakeHost {
    async fn channels(&self) -> Result<BTreeMap<String, ChannelState>, String> {
        let now = self.now;
        Ok(BTreeMap::from([
            (
                "slack".to_owned(),
                ChannelState {
                    connected: true,
                    since: Some(now - chrono::Duration::hours(5)),
                    reason: None,
                },
            ),
            (
                "telegram".to_owned(),
                ChannelState {
                    connected: false,
                    since: Some(now - chrono::Duration::seconds(20 * 60 + 30)),
                    reason: Some("401 Unauthorized".into()),
                },
            ),
        ]))
    }

    async fn queue(&self) -> Result<Option<QueueSnapshot>, String> {
        Ok(Some(QueueSnapshot {
            active_containers: 2,
            max_concurrent: Some(2),
            groups_waiting: 1,
            per_group: BTreeMap::from([(
                "ops".to_owned(),
                GroupQueue {
                    active: false,
                    is_task: false,
                    pending_messages: true,
                    pending_tasks: 0,
                },
            )]),
        }))
    }

    async fn groups(&self) -> Result<Option<GroupsSnapshot>, String> {
        Ok(Some(GroupsSnapshot {
            total: 3,
            active_sessions: 2,
        }))
    }
}

/// A section whose source never answers (a hung NFS mount, a wedged socket).
struct Hung;

#[async_trait::async_trait]
impl Collector for Hung {
    fn name(&self) -> &'static str {
        "backups"
    }

    async fn collect(&self) -> Result<Collected, CollectError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Collected::new(serde_json::json!({})))
    }
}

#[tokio::main]
async fn main() {
    let deps: Arc<dyn StatusDeps> = Arc::new(FakeHost { now: Utc::now() });
    let collectors: Vec<Arc<dyn Collector>> = vec![
        Arc::new(ServiceSection {
            version: "1.4.2".into(),
            started_at: Utc::now() - chrono::Duration::minutes(90),
            deps: deps.clone(),
        }),
        Arc::new(ChannelsSection {
            deps: deps.clone(),
            channel_down: Duration::from_secs(10 * 60),
        }),
        Arc::new(QueueSection { deps: deps.clone() }),
        Arc::new(GroupsSection { deps }),
        Arc::new(Hung),
    ];

    let started = Instant::now();
    let report = collect_status(&collectors, Duration::from_millis(500), None).await;
    println!(
        "verdict: {:?} ({} sections in {} ms, wall {} ms)",
        report.status,
        report.sections.len(),
        report.elapsed_ms,
        started.elapsed().as_millis()
    );
    for reason in &report.reasons {
        println!("  reason: {reason}");
    }
    for (name, data) in &report.sections {
        println!("  [{:?}] {name}: {data}", report.section_status[name]);
    }
    assert_eq!(report.status, Verdict::Fail);
    assert_eq!(
        report.reasons,
        [
            "channel telegram disconnected for 20m",
            "queue at its concurrency limit (2 of 2) with 1 group(s) waiting",
            "section backups unavailable: timed out after 500 ms",
        ]
    );
    assert_eq!(report.section_status["channels"], Verdict::Fail);
    assert_eq!(report.section_status["backups"], Verdict::Warn);
    assert_eq!(report.section_status["service"], Verdict::Pass);
    assert_eq!(report.sections["groups"]["total"], 3);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the hung section held up the report"
    );

    // Only some sections: the ones that are fine pass.
    let only = ["service".to_owned(), "groups".to_owned()];
    let partial = collect_status(&collectors, Duration::from_millis(500), Some(&only)).await;
    println!(
        "only service and groups: verdict {:?}, sections {:?}",
        partial.status,
        partial.sections.keys().collect::<Vec<_>>()
    );
    assert_eq!(partial.status, Verdict::Pass);
    assert_eq!(partial.sections.len(), 2);
}
