//! The event log as lookoutd's subscribers follow it: one abstraction instead of a polling loop
//! and a chained `Notify` each.
//!
//! [`EventLog::appended`] is called after every append lookoutd makes through the ingest writer;
//! each [`Subscription`] then wakes, reads the events after its own cursor (all kinds, or the
//! kinds it follows) and moves the cursor when it has handled them. A subscription with a name
//! keeps its cursor in `router_state`, so a restart resumes where it stopped and handles nothing
//! twice; an anonymous one starts at the end of the log. Events appended by another process (a
//! second daemon on the same PostgreSQL, the CLI) or by lookoutd's own loops wake nobody: every
//! subscriber also looks again after its `recheck` interval, so none waits longer than that.
//!
//! Subscribers: the projector (all kinds, `projection_cursor`), deploy windows (`deploy`,
//! `deploy_windows_cursor`) and the watchdog's heartbeat feed (`heartbeat`, from the end). The
//! reconciler keeps its cursor in its own persisted state (reconcile-core's driver) and ticks when
//! the projector has applied new events.

use std::time::Duration;

use lookout_store::{Store, StoreError, StoredEvent};

/// The log's append signal, shared by the writer and every subscriber.
#[derive(Clone)]
pub(crate) struct EventLog {
    store: Store,
    appends: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl EventLog {
    /// The log of `store`.
    pub(crate) fn new(store: Store) -> Self {
        EventLog {
            store,
            appends: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// The store the log is kept in.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Something was appended: wakes every subscription.
    pub(crate) fn appended(&self) {
        self.appends.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wake-ups only: for a subscriber whose cursor lives elsewhere (behind a lock, or in its own
    /// persisted state).
    pub(crate) fn wakeups(&self) -> Wakeups {
        Wakeups(self.appends.subscribe())
    }

    /// A subscription to `kinds` (all kinds when empty) whose cursor is kept in `router_state`
    /// under `cursor_key`.
    pub(crate) fn subscribe(
        &self,
        cursor_key: &'static str,
        kinds: &'static [&'static str],
    ) -> Subscription {
        Subscription {
            store: self.store.clone(),
            woken: self.wakeups(),
            cursor_key: Some(cursor_key),
            kinds,
            cursor: None,
        }
    }

    /// A subscription to `kinds` that starts at the end of the log and keeps its cursor in memory
    /// (for a subscriber that reads what came before another way).
    pub(crate) async fn subscribe_from_end(
        &self,
        kinds: &'static [&'static str],
    ) -> Result<Subscription, StoreError> {
        Ok(Subscription {
            store: self.store.clone(),
            woken: self.wakeups(),
            cursor_key: None,
            kinds,
            cursor: Some(self.store.latest_event_seq().await?),
        })
    }
}

/// The log's append signal as one subscriber receives it.
pub(crate) struct Wakeups(tokio::sync::watch::Receiver<u64>);

impl Wakeups {
    /// Waits for the next append, or `recheck` at most.
    pub(crate) async fn wait(&mut self, recheck: Duration) {
        tokio::select! {
            _ = self.0.changed() => {}
            _ = tokio::time::sleep(recheck) => {}
        }
    }
}

/// One subscriber's place in the log.
pub(crate) struct Subscription {
    store: Store,
    woken: Wakeups,
    cursor_key: Option<&'static str>,
    kinds: &'static [&'static str],
    /// The last seq handled (read from `router_state` on first use).
    cursor: Option<i64>,
}

impl Subscription {
    /// The last seq this subscriber handled.
    pub(crate) async fn cursor(&mut self) -> Result<i64, StoreError> {
        if let Some(c) = self.cursor {
            return Ok(c);
        }
        let c = match self.cursor_key {
            Some(key) => self
                .store
                .router_state_get(key)
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            None => 0,
        };
        self.cursor = Some(c);
        Ok(c)
    }

    /// Up to `limit` events after the cursor, in seq order (empty: none yet). The cursor does not
    /// move until [`Subscription::commit`].
    pub(crate) async fn read(&mut self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let after = self.cursor().await?;
        if self.kinds.is_empty() {
            self.store.events_after(after, limit).await
        } else {
            self.store.events_after_of(after, self.kinds, limit).await
        }
    }

    /// The events up to `seq` are handled: the cursor moves there (durably, for a named one).
    pub(crate) async fn commit(&mut self, seq: i64) -> Result<(), StoreError> {
        if let Some(key) = self.cursor_key {
            self.store.router_state_set(key, &seq.to_string()).await?;
        }
        self.cursor = Some(seq);
        Ok(())
    }

    /// Waits for the next append, or `recheck` at most.
    pub(crate) async fn wait(&mut self, recheck: Duration) {
        self.woken.wait(recheck).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lookout_store::NewEvent;
    use lookout_store::testing::{TestDb, sqlite_test_db};
    use serde_json::json;

    use super::*;

    async fn store() -> (Store, TestDb) {
        let db = sqlite_test_db().await;
        (db.open().await, db)
    }

    #[tokio::test]
    async fn a_named_subscription_resumes_after_its_last_commit() {
        let (store, _db) = store().await;
        let log = EventLog::new(store.clone());
        let ev = |kind: &str| NewEvent::new(kind, json!({}));
        let seqs = store
            .append_events(&[ev("deploy"), ev("heartbeat"), ev("deploy")])
            .await
            .unwrap();
        let mut sub = log.subscribe("test_cursor", &["deploy"]);
        let page = sub.read(1).await.unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [seqs[0]]);
        sub.commit(seqs[0]).await.unwrap();
        // A new subscription under the same name (a restart) starts after the commit.
        let mut again = log.subscribe("test_cursor", &["deploy"]);
        let page = again.read(10).await.unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [seqs[2]]);
        // All kinds when none is named.
        let mut all = log.subscribe("all_cursor", &[]);
        assert_eq!(all.read(10).await.unwrap().len(), 3);
    }

    // Real time here: the store's pool must not see a paused clock. The recheck is an hour, so
    // only the append can end the wait within the test's bound.
    #[tokio::test]
    async fn an_append_wakes_a_waiting_subscriber_at_once() {
        let (store, _db) = store().await;
        let log = EventLog::new(store.clone());
        let mut sub = log.subscribe_from_end(&["heartbeat"]).await.unwrap();
        assert!(sub.read(10).await.unwrap().is_empty(), "starts at the end");
        let started = tokio::time::Instant::now();
        let waiting = tokio::spawn(async move {
            sub.wait(Duration::from_secs(3600)).await;
            (sub, tokio::time::Instant::now())
        });
        tokio::task::yield_now().await;
        store
            .append_event(&NewEvent::new("heartbeat", json!({"target": "bridge"})))
            .await
            .unwrap();
        log.appended();
        // Not woken, the wait would last the hour: fail within a minute instead of hanging.
        let (mut sub, woke) = tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .expect("woken by the append within a minute")
            .unwrap();
        assert!(
            woke - started < Duration::from_secs(60),
            "woken by the append, not by the recheck"
        );
        assert_eq!(sub.read(10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn without_a_wake_up_the_recheck_bounds_the_wait() {
        let (store, _db) = store().await;
        let log = EventLog::new(store);
        // Paused once the store is open: the wait ends by the recheck alone.
        tokio::time::pause();
        let mut sub = log.subscribe("c", &[]);
        let started = tokio::time::Instant::now();
        sub.wait(Duration::from_secs(5)).await;
        let waited = tokio::time::Instant::now() - started;
        // Paused time advances to the timer's deadline (rounded up to its millisecond tick).
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_millis(5010),
            "{waited:?}"
        );
    }
}
