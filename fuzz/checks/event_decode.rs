//! What the `event_decode` fuzz target checks of one input, shared with the corpus replay test
//! (`crates/reconcile-core/tests/fuzz_corpus.rs`), so both check the same contract.

use lookout_reconcile_core::vocabulary::{decode, spec};
use serde_json::Value;

fn one(v: Value) {
    let again = v.clone();
    let got = decode(v);
    assert_eq!(got, decode(again), "decode is not deterministic");
    match got {
        Ok(d) => {
            let s = spec(d.kind).expect("decoded kind is in the vocabulary");
            for k in ["kind", "at", "idempotency_key"] {
                assert!(!d.payload.contains_key(k), "`{k}` left in the payload");
            }
            let subject = s
                .subject
                .and_then(|f| d.payload.get(f))
                .and_then(Value::as_str);
            assert_eq!(d.subject.as_deref(), subject);
            if let Some(k) = &d.idempotency_key {
                assert!(!k.is_empty() && k.len() <= 200);
            }
        }
        Err(e) => {
            // The message is shown to the reporter; it must at least be non-empty.
            assert!(!e.message.is_empty());
        }
    }
}

/// Checks one fuzz input: one JSON event, or each event of a batch.
pub(crate) fn check(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match v {
        Value::Array(events) => events.into_iter().for_each(one),
        other => one(other),
    }
}
