//! The public API as lookoutd and `lookout config check` use it: `parse` and `load`, the values
//! they read and the one-line errors they give. The tests of the private parts (the key table,
//! suggestions, locations) are next to them in `src/`.

mod errors;
mod parse;
mod reach;
mod rules;

pub(crate) const ORIGIN: &str = "config.toml";

/// The error `text` gives, as the user reads it.
pub(crate) fn error(text: &str) -> String {
    match lookout_config::parse(text, ORIGIN) {
        Ok(config) => panic!("expected an error, parsed {config:#?}"),
        Err(e) => e.to_string(),
    }
}
