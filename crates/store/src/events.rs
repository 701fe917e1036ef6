//! The append-only event log.
//!
//! Appends are transactional: a batch is stored whole or not at all, and the returned sequence numbers
//! are durable when the call returns. Sequence numbers grow in commit order on both backends (on
//! PostgreSQL appenders take a transaction-scoped advisory lock), so a reader that follows the log by
//! seq cursor never skips an event that commits late.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::{QueryContext, Result, StoreError};
use crate::time::{Timestamp, from_micros, to_micros};
use crate::{Pool, Store, on_pool};

/// The advisory lock key that serialises appends on PostgreSQL ("LOOKOUT" in ASCII, truncated).
const PG_APPEND_LOCK: i64 = 0x4C4F_4F4B_4F55;

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// When the fact happened (as the reporter says), or when it was received.
    pub at: Timestamp,
    /// The event kind, from the product's vocabulary (`message_received`, `run_started`, …).
    pub kind: String,
    /// What the event is about (a channel, chat, run, target …), for indexed lookups.
    pub subject: Option<String>,
    /// Every field of the event, as JSON.
    pub payload: Value,
    /// A key the reporter chose so that a retry is stored once; the second append of the same key
    /// returns the first one's seq.
    pub idempotency_key: Option<String>,
}

impl NewEvent {
    /// An event of `kind` happening now.
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        NewEvent {
            at: chrono::Utc::now(),
            kind: kind.into(),
            subject: None,
            payload,
            idempotency_key: None,
        }
    }

    /// Sets the subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets when the event happened.
    pub fn at(mut self, at: Timestamp) -> Self {
        self.at = at;
        self
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredEvent {
    /// Its position in the log: unique, increasing in commit order.
    pub seq: i64,
    /// When it happened.
    pub at: Timestamp,
    /// Its kind.
    pub kind: String,
    /// What it is about.
    pub subject: Option<String>,
    /// Its fields.
    pub payload: Value,
}

type EventRow = (i64, i64, String, Option<String>, String);

pub(crate) fn decode(rows: Vec<EventRow>) -> Result<Vec<StoredEvent>> {
    rows.into_iter()
        .map(|(seq, at, kind, subject, payload)| {
            let payload = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
                context: "reading events",
                reason: format!("event {seq} has a payload that is not JSON: {e}"),
            })?;
            Ok(StoredEvent {
                seq,
                at: from_micros(at),
                kind,
                subject,
                payload,
            })
        })
        .collect()
}

/// Which events of a batch are new, and which repeat an idempotency key (of the log, or of an earlier
/// event in the same batch).
enum Slot {
    /// Inserted; index into the rows actually inserted.
    New(usize),
    /// Already stored with this seq.
    Existing(i64),
    /// Same key as an earlier event of this batch (its index in the batch).
    SameAs(usize),
}

fn plan(events: &[NewEvent], existing: &HashMap<String, i64>) -> (Vec<Slot>, Vec<usize>) {
    let mut slots = Vec::with_capacity(events.len());
    let mut to_insert = Vec::with_capacity(events.len());
    let mut first_in_batch: HashMap<&str, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match e.idempotency_key.as_deref() {
            Some(k) if existing.contains_key(k) => slots.push(Slot::Existing(existing[k])),
            Some(k) if first_in_batch.contains_key(k) => {
                slots.push(Slot::SameAs(first_in_batch[k]))
            }
            key => {
                if let Some(k) = key {
                    first_in_batch.insert(k, i);
                }
                slots.push(Slot::New(to_insert.len()));
                to_insert.push(i);
            }
        }
    }
    (slots, to_insert)
}

/// The seq an appended event got, and whether this append stored it (false: its idempotency key
/// was already in the log, or earlier in the same batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Appended {
    /// Its seq.
    pub seq: i64,
    /// Whether this call stored it.
    pub new: bool,
}

fn resolve(slots: &[Slot], mut inserted: Vec<i64>) -> Vec<Appended> {
    // Both backends assign seqs in insertion order within the transaction; RETURNING's row order is
    // not guaranteed, so sort.
    inserted.sort_unstable();
    let mut out: Vec<Appended> = Vec::with_capacity(slots.len());
    for slot in slots {
        let a = match *slot {
            Slot::New(j) => Appended {
                seq: inserted[j],
                new: true,
            },
            Slot::Existing(seq) => Appended { seq, new: false },
            Slot::SameAs(i) => Appended {
                seq: out[i].seq,
                new: false,
            },
        };
        out.push(a);
    }
    out
}

/// The rows to insert as one JSON array of `[at, kind, subject, payload, key]`, serialised by
/// reference (no copy of the payload trees). Each payload travels as a JSON *string* holding its
/// rendered text, so SQLite only unescapes it (`->>`) instead of parsing and re-rendering it (`->`).
fn sqlite_batch_json(events: &[NewEvent], to_insert: &[usize]) -> String {
    type Row<'a> = (i64, &'a str, Option<&'a str>, String, Option<&'a str>);
    let rows: Vec<Row<'_>> = to_insert
        .iter()
        .map(|&i| {
            let e = &events[i];
            (
                to_micros(&e.at),
                e.kind.as_str(),
                e.subject.as_deref(),
                e.payload.to_string(),
                e.idempotency_key.as_deref(),
            )
        })
        .collect();
    serde_json::to_string(&rows).expect("JSON rows serialise")
}

/// Inserts `events[to_insert]` with one statement; returns the last seq and the count.
///
/// No RETURNING: sqlx would stream each row back from its SQLite thread. The statement holds the
/// write lock while it runs, and AUTOINCREMENT gives its rows consecutive seqs ending at
/// `last_insert_rowid`.
async fn sqlite_insert<'e, E>(
    executor: E,
    events: &[NewEvent],
    to_insert: &[usize],
) -> Result<(i64, i64)>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let batch = sqlite_batch_json(events, to_insert);
    let done = sqlx::query(
        "INSERT INTO events (at, kind, subject, payload, idempotency_key) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 \
         FROM json_each($1) ORDER BY key",
    )
    .bind(batch)
    .execute(executor)
    .await
    .context("appending events")?;
    let n = to_insert.len() as i64;
    if done.rows_affected() != n as u64 {
        return Err(StoreError::Corrupt {
            context: "appending events",
            reason: format!("inserted {} rows of {n}", done.rows_affected()),
        });
    }
    Ok((done.last_insert_rowid(), n))
}

impl Store {
    /// Appends one event; returns its seq once it is committed.
    pub async fn append_event(&self, event: &NewEvent) -> Result<i64> {
        Ok(self.append_events(std::slice::from_ref(event)).await?[0])
    }

    /// Appends a batch in one transaction (all or none); returns the seq of each event, in order,
    /// once the transaction is committed. An event whose idempotency key is already in the log (or
    /// earlier in the batch) is not stored again: its slot holds the seq stored first.
    pub async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>> {
        Ok(self
            .append_events_reporting(events)
            .await?
            .into_iter()
            .map(|a| a.seq)
            .collect())
    }

    /// Like [`Store::append_events`], and says of each event whether this call stored it.
    pub async fn append_events_reporting(&self, events: &[NewEvent]) -> Result<Vec<Appended>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = events
            .iter()
            .filter_map(|e| e.idempotency_key.as_deref())
            .collect();
        match &self.pool {
            Pool::Sqlite(pool) if keys.is_empty() => {
                // Fast path: one INSERT in autocommit is itself one atomic, durable transaction, and
                // costs one round trip to sqlx's SQLite thread instead of three (BEGIN, INSERT,
                // COMMIT) — those hand-offs, not the rows, dominate the cost of a batch.
                let all: Vec<usize> = (0..events.len()).collect();
                let (last, n) = sqlite_insert(pool, events, &all).await?;
                Ok((last - n + 1..=last)
                    .map(|seq| Appended { seq, new: true })
                    .collect())
            }
            Pool::Sqlite(pool) => {
                // BEGIN IMMEDIATE takes the write lock up front, so the read of existing keys and the
                // insert cannot be split by another writer (and never fail with SQLITE_BUSY mid-way).
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .context("starting an append")?;
                let existing: HashMap<String, i64> = sqlx::query_as(
                    "SELECT idempotency_key, seq FROM events \
                     WHERE idempotency_key IN (SELECT value FROM json_each($1))",
                )
                .bind(serde_json::to_string(&keys).expect("strings serialise"))
                .fetch_all(&mut *tx)
                .await
                .context("looking up idempotency keys")?
                .into_iter()
                .collect();
                let (slots, to_insert) = plan(events, &existing);
                let mut inserted = Vec::with_capacity(to_insert.len());
                if !to_insert.is_empty() {
                    let (last, n) = sqlite_insert(&mut *tx, events, &to_insert).await?;
                    inserted = (last - n + 1..=last).collect();
                }
                tx.commit().await.context("committing an append")?;
                Ok(resolve(&slots, inserted))
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.context("starting an append")?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_APPEND_LOCK)
                    .execute(&mut *tx)
                    .await
                    .context("taking the append lock")?;
                let existing: HashMap<String, i64> = if keys.is_empty() {
                    HashMap::new()
                } else {
                    sqlx::query_as(
                        "SELECT idempotency_key, seq FROM events WHERE idempotency_key = ANY($1)",
                    )
                    .bind(&keys)
                    .fetch_all(&mut *tx)
                    .await
                    .context("looking up idempotency keys")?
                    .into_iter()
                    .collect()
                };
                let (slots, to_insert) = plan(events, &existing);
                let mut inserted = Vec::with_capacity(to_insert.len());
                if !to_insert.is_empty() {
                    let n = to_insert.len();
                    let (mut at, mut kind, mut subject, mut payload, mut key) = (
                        Vec::with_capacity(n),
                        Vec::with_capacity(n),
                        Vec::with_capacity(n),
                        Vec::with_capacity(n),
                        Vec::with_capacity(n),
                    );
                    for &i in &to_insert {
                        let e = &events[i];
                        at.push(to_micros(&e.at));
                        kind.push(e.kind.as_str());
                        subject.push(e.subject.as_deref());
                        payload.push(e.payload.to_string());
                        key.push(e.idempotency_key.as_deref());
                    }
                    inserted = sqlx::query_scalar(
                        "INSERT INTO events (at, kind, subject, payload, idempotency_key) \
                         SELECT at, kind, subject, payload::jsonb, key \
                         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                              WITH ORDINALITY AS t(at, kind, subject, payload, key, ord) \
                         ORDER BY ord \
                         RETURNING seq",
                    )
                    .bind(at)
                    .bind(kind)
                    .bind(subject)
                    .bind(payload)
                    .bind(key)
                    .fetch_all(&mut *tx)
                    .await
                    .context("appending events")?;
                }
                tx.commit().await.context("committing an append")?;
                Ok(resolve(&slots, inserted))
            }
        }
    }

    /// Up to `limit` events with seq greater than `after`, in seq order: how a reader follows the log.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload FROM events \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload::text FROM events \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
            }
        }
        .context("reading events by seq")?;
        decode(rows)
    }

    /// Up to `limit` events of `kinds` with seq greater than `after`, in seq order: how a reader
    /// that follows only some kinds (deploys, heartbeats) follows the log.
    pub async fn events_after_of(
        &self,
        after: i64,
        kinds: &[&str],
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let rows: Vec<EventRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload FROM events \
                     WHERE seq > $1 AND kind IN (SELECT value FROM json_each($2)) \
                     ORDER BY seq LIMIT $3",
                )
                .bind(after)
                .bind(serde_json::to_string(&kinds).expect("strings serialise"))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload::text FROM events \
                     WHERE seq > $1 AND kind = ANY($2) ORDER BY seq LIMIT $3",
                )
                .bind(after)
                .bind(&kinds)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
            }
        }
        .context("reading events of some kinds by seq")?;
        decode(rows)
    }

    /// Up to `limit` events with `from <= at < to`, in seq order, starting after seq `after` (pass 0
    /// first, then the last seq seen, to page through a long range).
    pub async fn events_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        if to < from {
            return Err(StoreError::InvalidInput(format!(
                "time range is reversed: from {from} is after to {to}"
            )));
        }
        let (from, to) = (to_micros(&from), to_micros(&to));
        let rows: Vec<EventRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload FROM events \
                     WHERE at >= $1 AND at < $2 AND seq > $3 ORDER BY seq LIMIT $4",
                )
                .bind(from)
                .bind(to)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload::text FROM events \
                     WHERE at >= $1 AND at < $2 AND seq > $3 ORDER BY seq LIMIT $4",
                )
                .bind(from)
                .bind(to)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
            }
        }
        .context("reading events by time")?;
        decode(rows)
    }

    /// The latest event of `kind` about `subject`, if any (e.g. the last `container_status` of one
    /// container).
    pub async fn last_event_of(&self, kind: &str, subject: &str) -> Result<Option<StoredEvent>> {
        let rows: Vec<EventRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload FROM events \
                     WHERE kind = $1 AND subject = $2 ORDER BY seq DESC LIMIT 1",
                )
                .bind(kind)
                .bind(subject)
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT seq, at, kind, subject, payload::text FROM events \
                     WHERE kind = $1 AND subject = $2 ORDER BY seq DESC LIMIT 1",
                )
                .bind(kind)
                .bind(subject)
                .fetch_all(p)
                .await
            }
        }
        .context("reading the last event of a subject")?;
        Ok(decode(rows)?.pop())
    }

    /// The highest seq in the log (0 when it is empty).
    pub async fn latest_event_seq(&self) -> Result<i64> {
        let seq: Option<i64> =
            on_pool!(self, p => sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(p)
            .await)
            .context("reading the latest seq")?;
        Ok(seq.unwrap_or(0))
    }
}
