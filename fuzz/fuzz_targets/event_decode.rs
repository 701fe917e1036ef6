//! Fuzzes the ingest contract: `lookout_reconcile_core::vocabulary::decode` on one JSON event or on
//! each event of a batch (a JSON array, as `POST /api/events` takes it).
//!
//! Besides "never panics", checks what the decoder promises: a decoded event's kind is in the
//! vocabulary, `kind`, `at` and `idempotency_key` are not left in the payload, the subject is the
//! value of the kind's subject field, and decoding is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/event_decode.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
