//! What a bad configuration is: [`ConfigError`], one line naming the file, the key path, the line
//! and column; and the pieces it is made of ([`Location`], [`At`], [`AtLine`], [`KeyPath`]).

use std::fmt;

// ---------------------------------------------------------------------------------------------

/// A configuration that cannot be used. Its `Display` is one line naming the file, the key path,
/// the line and column, and what to change — one line per error when the file has several
/// ([`ConfigError::Several`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// More than one thing is wrong: every unknown key of the file, or the first broken rule of
    /// each table, in the file's order. Each is one line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
    /// The file could not be read.
    #[error("{origin}: cannot read the configuration file: {source}")]
    Read {
        /// The file.
        origin: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("{origin}: invalid TOML{at}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// Where.
        at: At,
        /// What the TOML parser said.
        message: String,
    },
    /// A key the configuration does not have.
    #[error("{origin}: unknown key `{path}`{at}{advice}")]
    UnknownKey {
        /// The file.
        origin: String,
        /// The key.
        path: KeyPath,
        /// Where.
        at: At,
        /// " — did you mean `…`?", or the valid keys; may be empty.
        advice: String,
    },
    /// A key that was renamed.
    #[error("{origin}: key `{path}`{at} was renamed to `{renamed_to}`{advice}")]
    Renamed {
        /// The file.
        origin: String,
        /// The old key.
        path: KeyPath,
        /// Where.
        at: At,
        /// The key to write instead.
        renamed_to: KeyPath,
        /// Why, when there is more to say; may be empty.
        advice: String,
    },
    /// A value of the wrong TOML type.
    #[error("{origin}: wrong type for `{path}`{at}: expected {expected}, found {found}{advice}")]
    WrongType {
        /// The file.
        origin: String,
        /// The key.
        path: KeyPath,
        /// Where.
        at: At,
        /// The type wanted.
        expected: String,
        /// The type written.
        found: String,
        /// How to write it, when there is more to say; may be empty.
        advice: String,
    },
    /// A number outside its range.
    #[error("{origin}: `{path}` = {value}{at} is out of range ({min}..={max})")]
    OutOfRange {
        /// The file.
        origin: String,
        /// The key.
        path: KeyPath,
        /// The number written.
        value: String,
        /// The line.
        at: AtLine,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// Any other bad value, a missing key or a rule between keys.
    #[error("{origin}: `{path}`{at}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// The key or table.
        path: KeyPath,
        /// Where.
        at: At,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Location {
    pub(crate) fn of(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// Renders " at line L, column C", or nothing when the position is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At(pub(crate) Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(Location { line, column }) => write!(f, " at line {line}, column {column}"),
            None => Ok(()),
        }
    }
}

/// Renders " at line L", or nothing when the position is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtLine(pub(crate) Option<usize>);

impl fmt::Display for AtLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " at line {line}"),
            None => Ok(()),
        }
    }
}

/// A dotted key path with array indices: `notify.sinks[1].url`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub(crate) Vec<Segment>);

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

impl ConfigError {
    /// The errors it holds: itself, or each of [`ConfigError::Several`].
    pub fn all(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Several(all) => all.iter().collect(),
            one => vec![one],
        }
    }

    /// One error for `errors`: the error itself when there is one, [`ConfigError::Several`] when
    /// there are more; `None` for none.
    pub(crate) fn from_all(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Several(errors)),
        }
    }
}

impl KeyPath {
    /// The path of the whole file; build on it with [`KeyPath::key`] and [`KeyPath::index`].
    pub fn root() -> KeyPath {
        KeyPath::default()
    }

    /// This path, then `key` (`store` → `store.url`).
    pub fn key(&self, key: &str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// This path, then an array index (`jobs` → `jobs[1]`).
    pub fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// The table holding the last key.
    pub(crate) fn parent(&self) -> KeyPath {
        let mut path = self.clone();
        path.0.pop();
        path
    }

    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// The path without indices (`notify.sinks.url`): how the schema and the rename table name keys.
    pub(crate) fn schema(&self) -> String {
        let keys: Vec<&str> = self
            .0
            .iter()
            .filter_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }

    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        let mut out = KeyPath::default();
        for segment in path {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    out.0.push(Segment::Index(*index));
                }
                serde_path_to_error::Segment::Map { key } => out.0.push(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        out
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The error for text that is not TOML, at the position toml gives.
pub(crate) fn syntax_error(origin: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span();
    let mut message = error.message().trim().replace('\n', "; ");
    if let Some(span) = &span {
        // Name the key of a duplicate; the rest of toml's messages describe the token already.
        if message == "duplicate key" {
            if let Some(key) = text.get(span.clone()).filter(|k| !k.contains('\n')) {
                message = format!("duplicate key `{}`", key.trim());
            }
        }
    }
    ConfigError::Syntax {
        origin: origin.to_owned(),
        at: At(span.map(|s| Location::of(text, s.start))),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_and_count_characters() {
        let text = "é = 1\nab = 2\n";
        assert_eq!(Location::of(text, 0), Location { line: 1, column: 1 });
        assert_eq!(Location::of(text, 2), Location { line: 1, column: 2 });
        assert_eq!(Location::of(text, 7), Location { line: 2, column: 1 });
        assert_eq!(Location::of(text, 8), Location { line: 2, column: 2 });
        assert_eq!(
            Location::of(text, text.len()),
            Location { line: 3, column: 1 }
        );
    }
}
