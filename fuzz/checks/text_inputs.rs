//! What the `text_inputs` fuzz target checks of one input, shared with the corpus replay test
//! (`crates/store/tests/fuzz_corpus.rs`): the small parsers of what people type — durations (every
//! config key and flag that takes one, the scheduler's `every`) and store URLs (`--store-url`,
//! `store.url`).
//!
//! Never a panic; a duration that parses prints back as something; a store URL's
//! error never shows the credential (`user:password@`) the URL held.

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
            // (Only where the text is such a URL: a scheme of letters, digits, `+`, `-`, `.`.)
            if let Some((user, password)) = text
                .split_once("://")
                .filter(|(scheme, _)| {
                    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                })
                // The authority as `redact` reads it: up to the first `/` or `?` (a `#` is taken as
                // part of a password, where people do write it unencoded); userinfo before the
                // last `@`.
                .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
                .and_then(|authority| authority.rsplit_once('@'))
                .and_then(|(userinfo, _host)| userinfo.split_once(':'))
                .filter(|(_, password)| password.len() >= 4)
            {
                // The credential as written never reaches an error (redact hides the password
                // wherever it appears in the URL).
                let credential = format!("{user}:{password}@");
                assert!(
                    !message.contains(&credential),
                    "credential {credential:?} of {text:?} in the error: {message}"
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
