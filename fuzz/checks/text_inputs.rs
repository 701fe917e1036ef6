//! What the `text_inputs` fuzz target checks of one input, shared with the corpus replay test
//! (`crates/store/tests/fuzz_corpus.rs`): the small parsers of what people type — durations (every
//! config key and flag that takes one, the scheduler's `every`) and store URLs (`--store-url`,
//! `store.url`).
//!
//! Never a panic; a duration that parses is what its text says when printed back; a store URL's
//! error never repeats a password the URL held.

/// Checks one fuzz input: its text as a duration and as a store URL.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = lookout_common::duration::parse_duration(text) {
        let printed = lookout_common::human_duration(d);
        assert!(!printed.is_empty(), "{text:?} printed as nothing");
    }
    match lookout_store::StoreUrl::parse(text) {
        Ok(_) => {}
        Err(e) => {
            let message = e.to_string();
            // `scheme://user:PASSWORD@host`: the password never reaches an error.
            if let Some(password) = text
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('@'))
                .and_then(|(userinfo, _)| userinfo.split_once(':'))
                .map(|(_, password)| password)
                .filter(|p| p.len() >= 4 && !p.contains('@'))
            {
                assert!(
                    !message.contains(password),
                    "password {password:?} of {text:?} in the error: {message}"
                );
            }
        }
    }
    let redacted = lookout_store::redact(text);
    assert!(
        !redacted.is_empty() || text.is_empty(),
        "{text:?} redacted to nothing"
    );
}
