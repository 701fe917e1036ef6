//! Interrupted-run queries at scale: 1,000,000 messages of which 1,000 are in flight.
//!
//! Times (median and p99 of 200 rounds) marking a batch of 50, clearing on a response, and the stale
//! scan, on SQLite and PostgreSQL; prints each query's plan; then drops the two partial in-flight
//! indexes and times the same queries again for the ratio.
//!
//! `cargo bench -p lookout-crash-detect --bench in_flight` (`LOOKOUT_BENCH_MESSAGES` to change the
//! table size).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use chrono::Utc;
use lookout_store::testing::{PgCluster, PgDurability};
use lookout_store::{Backend, Direction, NewMessage, Store};

const CHAT_SIZE: usize = 100;
const ROUNDS: usize = 200;

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[(v.len() * 99) / 100]))
}

async fn populate(store: &Store, n: usize) {
    let t0 = Utc::now() - chrono::Duration::days(30);
    let chats = n / CHAT_SIZE;
    let mut batch = Vec::with_capacity(10_000);
    let started = Instant::now();
    for i in 0..n {
        let chat = i % chats;
        batch.push(NewMessage {
            channel: "slack".into(),
            chat_jid: format!("chat-{chat}"),
            message_id: format!("m{i}"),
            sender: Some("someone".into()),
            direction: if i % 4 == 3 {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            timestamp: t0 + chrono::Duration::seconds(i as i64),
        });
        if batch.len() == 10_000 {
            store.record_messages(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.record_messages(&batch).await.unwrap();
    // 1,000 in flight: 20 chats × 50 messages, dispatched an hour ago (stale for a 10-minute threshold).
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    for c in 0..20 {
        store
            .mark_batch_processing(&format!("chat-{c}"), &batch_ids(c, chats, 50), hour_ago)
            .await
            .unwrap();
    }
    println!(
        "  populated {n} messages in {chats} chats ({:.1} s), 1,000 in flight",
        started.elapsed().as_secs_f64()
    );
}

/// The first `k` message ids of chat `c` (message i belongs to chat i % chats).
fn batch_ids(c: usize, chats: usize, k: usize) -> Vec<String> {
    (0..k).map(|j| format!("m{}", c + j * chats)).collect()
}

async fn time_queries(store: &Store, chats: usize) -> [(f64, f64); 3] {
    let (mut mark, mut clear, mut scan) = (Vec::new(), Vec::new(), Vec::new());
    let cutoff = Utc::now() - chrono::Duration::minutes(10);
    for r in 0..ROUNDS {
        // Chats from 1000 on are never in flight at the start; each round uses a fresh one.
        let c = 1000 + r;
        let ids = batch_ids(c, chats, 50);
        let t = Instant::now();
        let out = store
            .mark_batch_processing(&format!("chat-{c}"), &ids, Utc::now())
            .await
            .unwrap();
        mark.push(t.elapsed());
        assert_eq!(out.marked, 50);
        let t = Instant::now();
        let n = store
            .clear_processing_on_response(&format!("chat-{c}"), Utc::now())
            .await
            .unwrap();
        clear.push(t.elapsed());
        assert_eq!(n, 50);
        let t = Instant::now();
        let stale = store.stale_in_flight(cutoff).await.unwrap();
        scan.push(t.elapsed());
        assert_eq!(stale.len(), 20);
    }
    [stats(mark), stats(clear), stats(scan)]
}

async fn plans(store: &Store) {
    let queries = [
        (
            "mark",
            "UPDATE messages SET processing_started_at = 1 WHERE chat_jid = 'chat-5' AND message_id IN ('m5', 'm10005')",
        ),
        (
            "clear",
            "UPDATE messages SET processing_started_at = NULL WHERE chat_jid = 'chat-5' AND processing_started_at IS NOT NULL AND timestamp <= 99",
        ),
        (
            "scan",
            "SELECT chat_jid, MIN(channel), COUNT(*), MIN(processing_started_at), MAX(processing_attempts) FROM messages WHERE processing_started_at IS NOT NULL AND processing_started_at < 99 GROUP BY chat_jid ORDER BY MIN(processing_started_at), chat_jid",
        ),
    ];
    for (name, q) in queries {
        let plan: Vec<String> = match store.backend() {
            Backend::Sqlite => {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {q}")))
                        .persistent(false)
                        .fetch_all(store.sqlite_pool().unwrap())
                        .await
                        .unwrap();
                rows.into_iter().map(|r| r.3).collect()
            }
            Backend::Postgres => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {q}")))
                .persistent(false)
                .fetch_all(store.postgres_pool().unwrap())
                .await
                .unwrap(),
        };
        println!("  plan of {name}: {}", plan.join(" / "));
    }
}

async fn drop_indexes(store: &Store) {
    for idx in ["messages_in_flight_chat", "messages_in_flight_since"] {
        let q = format!("DROP INDEX {idx}");
        match store.backend() {
            Backend::Sqlite => {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(store.sqlite_pool().unwrap())
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(store.postgres_pool().unwrap())
                    .await
                    .unwrap();
            }
        }
    }
}

async fn run(name: &str, store: &Store, n: usize) {
    println!("{name}:");
    populate(store, n).await;
    if store.backend() == Backend::Postgres {
        sqlx::query("ANALYZE messages")
            .execute(store.postgres_pool().unwrap())
            .await
            .unwrap();
    }
    plans(store).await;
    let with = time_queries(store, n / CHAT_SIZE).await;
    drop_indexes(store).await;
    println!("  without the partial in-flight indexes:");
    plans(store).await;
    let without = time_queries(store, n / CHAT_SIZE).await;
    for (i, what) in ["mark a batch of 50", "clear on a response", "stale scan"]
        .iter()
        .enumerate()
    {
        println!(
            "  {what:<22} median {:>7.3} ms  p99 {:>7.3} ms | without indexes: median {:>8.3} ms | ratio {:>6.1}×",
            with[i].0,
            with[i].1,
            without[i].0,
            without[i].0 / with[i].0
        );
    }
}

fn main() {
    let n: usize = std::env::var("LOOKOUT_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
            .await
            .unwrap();
        run("sqlite (WAL, synchronous=FULL)", &store, n).await;
        store.close().await;
        match PgCluster::start(PgDurability::Durable) {
            Ok(cluster) => {
                let store = Store::open(&cluster.admin_url()).await.unwrap();
                run("postgres 15 (durable defaults)", &store, n).await;
                store.close().await;
            }
            Err(e) => println!("postgres skipped: {e}"),
        }
    });
}
