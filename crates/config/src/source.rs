//! Where a mistake is: the text, its parsed tree and its name ([`Source`]), and the translation of
//! serde's and toml's errors into [`ConfigError`]s in TOML's words.
//!
//! How position and path are found, with the least machinery: the text is parsed once into toml's
//! spanned `DeTable`, and the structs are deserialized from it through `serde_path_to_error`. toml's
//! own error carries the byte span of the offending key or value but not its path (its key list is
//! private and never filled); `serde_path_to_error` gives the exact path, array indices included,
//! but no position. Together they give both, without a second parser (`toml_edit`) and without
//! `Spanned<T>` wrappers in the structs the rest of lookoutd reads. The checks that span several
//! keys run after deserializing and find their position by walking the same `DeTable` along the
//! path they report.
//!
//! Error messages quote keys, numbers and the values of enumerations and durations, never the
//! value of a free-form string (which could be a secret pasted into the wrong key).

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{At, AtLine, ConfigError, KeyPath, Location, Segment};
use crate::keys::{is_array_of_tables, range_of, tables};
use crate::suggest::{nearest, unknown_key};

/// The range of the integer type serde named in "expected u16".
fn type_range(expected: &str) -> Option<(u64, u64)> {
    Some(match expected {
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" | "usize" => (0, u64::MAX),
        _ => return None,
    })
}

/// The text, its parsed tree and its name: what an error needs to say where.
pub(crate) struct Source<'a, 'i> {
    pub(crate) origin: &'a str,
    pub(crate) text: &'a str,
    pub(crate) tree: &'a DeTable<'i>,
}

impl<'i> Source<'_, 'i> {
    /// The key's span (when the path ends in a key) and the value at `path`.
    fn lookup(&self, path: &KeyPath) -> Option<(Option<Range<usize>>, &Spanned<DeValue<'i>>)> {
        let mut segments = path.0.iter();
        let Some(Segment::Key(first)) = segments.next() else {
            return None;
        };
        let (key, mut value) = self.tree.get_key_value(first.as_str())?;
        let mut key_span = Some(key.span());
        for segment in segments {
            match segment {
                Segment::Key(k) => {
                    let (key, v) = value.get_ref().as_table()?.get_key_value(k.as_str())?;
                    key_span = Some(key.span());
                    value = v;
                }
                Segment::Index(i) => {
                    value = value.get_ref().as_array()?.get(*i)?;
                    key_span = None;
                }
            }
        }
        Some((key_span, value))
    }

    /// Every key of the file that its table does not have, in the file's order (serde stops at
    /// the first; a person fixes them all at once).
    pub(crate) fn unknown_keys(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        self.unknown_in(self.tree, &KeyPath::default(), &mut out);
        out
    }

    fn unknown_in(&self, table: &DeTable<'i>, path: &KeyPath, out: &mut Vec<ConfigError>) {
        let schema = path.schema();
        let Some(known) = tables().iter().find(|t| t.path == schema) else {
            return; // a map the structs take as a whole (an `env` table): serde checks it
        };
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (key, value) in entries {
            let name: &str = key.get_ref();
            let here = path.key(name);
            if !known.keys.contains(&name) {
                let valid: Vec<String> = known.keys.iter().map(|k| (*k).to_owned()).collect();
                out.push(unknown_key(
                    self.origin,
                    here,
                    self.at(Some(key.span())),
                    &valid,
                ));
                continue;
            }
            match value.get_ref() {
                DeValue::Table(t) => self.unknown_in(t, &here, out),
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let DeValue::Table(t) = item.get_ref() {
                            self.unknown_in(t, &here.index(i), out);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn at(&self, span: Option<Range<usize>>) -> At {
        At(span.map(|s| Location::of(self.text, s.start)))
    }

    /// Where the value at `path` is (for a table of an array, its `[[header]]`).
    pub(crate) fn at_value(&self, path: &KeyPath) -> At {
        self.at(self.lookup(path).map(|(_, v)| v.span()))
    }

    pub(crate) fn invalid(&self, path: KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            at: self.at_value(&path),
            path,
            message: message.into(),
        }
    }

    /// A deserializing error, with its path and position, in TOML's words.
    pub(crate) fn de_error(
        &self,
        error: serde_path_to_error::Error<toml::de::Error>,
    ) -> ConfigError {
        let mut path = KeyPath::from_serde(error.path());
        let inner = error.into_inner();
        let message = inner.message();
        let at = self.at(inner.span());
        let origin = self.origin.to_owned();

        // serde's messages are stable text: "unknown field `x`, expected one of `a`, `b`".
        if let Some((field, rest)) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
        {
            if path.last_key() != Some(field) {
                path = path.key(field);
            }
            return unknown_key(self.origin, path, at, &backticked(rest));
        }
        if let Some((found, expected)) = message
            .strip_prefix("invalid type: ")
            .and_then(|r| r.split_once(", expected "))
        {
            let found = match self.lookup(&path) {
                Some((_, value)) => toml_type(value.get_ref()).to_owned(),
                None => serde_found(found),
            };
            let expected = serde_expected(expected);
            // `[watch]` written for `[[watch]]`.
            let advice = if expected == "an array"
                && found == "a table"
                && is_array_of_tables(&path.schema())
            {
                format!(" (write `[[{}]]` for each entry)", path.schema())
            } else {
                String::new()
            };
            return ConfigError::WrongType {
                origin,
                path,
                at,
                expected,
                found,
                advice,
            };
        }
        if let Some((value, expected)) = message
            .strip_prefix("invalid value: integer `")
            .and_then(|r| r.split_once("`, expected "))
        {
            if let Some((min, max)) = range_of(&path).or_else(|| type_range(expected)) {
                return ConfigError::OutOfRange {
                    origin,
                    value: value.to_owned(),
                    at: AtLine(at.0.map(|l| l.line)),
                    path,
                    min,
                    max,
                };
            }
        }
        if let Some((variant, rest)) = message
            .strip_prefix("unknown variant `")
            .and_then(|r| r.split_once("`, "))
        {
            let allowed = backticked(rest);
            let advice = nearest(variant, &allowed)
                .map(|near| format!(" — did you mean `{near}`?"))
                .unwrap_or_default();
            return ConfigError::Invalid {
                origin,
                path,
                at,
                message: format!("unknown value `{variant}`, {rest}{advice}"),
            };
        }
        // toml's word for a number or an array where an enumeration's name belongs.
        if message == "wanted string or table" {
            let found = self
                .lookup(&path)
                .map_or("another type", |(_, value)| toml_type(value.get_ref()));
            return ConfigError::WrongType {
                origin,
                path,
                at,
                expected: "a string".into(),
                found: found.into(),
                advice: String::new(),
            };
        }
        let message = match message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            Some(field) => format!("missing required key `{field}`"),
            None => message.replace('\n', "; "),
        };
        ConfigError::Invalid {
            origin,
            path,
            at,
            message,
        }
    }
}

/// The words between backticks: "expected one of `a`, `b`" gives `a` and `b`.
pub(crate) fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A TOML value's type, as the error says it.
fn toml_type(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// serde's "expected u64" in TOML's words.
fn serde_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "an integer".into()
        }
        "a string" | "a borrowed string" | "path string" => "a string".into(),
        "a boolean" => "a boolean (true or false)".into(),
        "a sequence" => "an array".into(),
        "f32" | "f64" => "a number".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => "a table".into(),
        e if e.starts_with("enum ") || e.starts_with("variant ") => "a string".into(),
        other => other.into(),
    }
}

/// serde's "string \"x\"" in TOML's words, without the value.
fn serde_found(found: &str) -> String {
    let kind = found.split(' ').next().unwrap_or(found);
    match kind {
        "string" => "a string",
        "integer" => "an integer",
        "floating" => "a float",
        "boolean" => "a boolean",
        "sequence" => "an array",
        "map" => "a table",
        _ => "another type",
    }
    .into()
}
