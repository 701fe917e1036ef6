//! What the `replay_request` fuzz target checks of one input, shared with the corpus replay test
//! (`crates/reconcile-core/tests/fuzz_corpus.rs`): the range of `POST /debug/replay-events`
//! (`ReplayRequest::parse`), the input's first line as `from`, the rest as `to`.
//!
//! Never a panic; an accepted range is ordered and no longer than the maximum; a refused one names
//! `from`, `to` or `range` and says why in words.

use std::time::Duration;

/// Checks one fuzz input as a replay range.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (from, to) = text.split_once('\n').unwrap_or((text, ""));
    let max = Duration::from_secs(24 * 3600);
    match lookout_reconcile_core::replay::ReplayRequest::parse(from, to, max) {
        Ok(r) => {
            assert!(r.from <= r.to, "{from:?}..{to:?} accepted reversed");
            assert!(
                (r.to - r.from).to_std().unwrap_or(Duration::MAX) <= max,
                "{from:?}..{to:?} accepted longer than {max:?}"
            );
        }
        Err(lookout_reconcile_core::ReconcileError::InvalidRange { field, reason, .. }) => {
            assert!(
                ["from", "to", "range"].contains(&field),
                "{from:?}..{to:?}: refused naming {field:?}"
            );
            assert!(
                !reason.is_empty(),
                "{from:?}..{to:?}: refused with no reason"
            );
        }
        Err(other) => panic!("{from:?}..{to:?}: not a range error: {other}"),
    }
}
