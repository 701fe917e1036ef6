//! The key table: every table of the file and its keys, by path without indices (`notify.sinks`),
//! and the allowed range of each bounded integer.
//!
//! The table is derived from the structs of `schema.rs`, never written a second time. serde's
//! derive hands each struct's keys (as written in the file, renames included) to
//! `Deserializer::deserialize_struct`; [`Probe`] is a deserializer that walks one key path down
//! from [`Config`] and notes what it finds at its end: a struct (a table, with its keys), a struct
//! inside a sequence (an array of tables, written `[[path]]`), or a plain value. Probing every key
//! of every table found, breadth first from the top, finds every table. A probe never builds a
//! value: each walk ends in an error once it has seen what it came for.
//!
//! What is not a copy of the structs stays data: the ranges here, the renamed keys and the synonyms
//! in `suggest.rs`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::LazyLock;

use serde::Deserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use crate::error::KeyPath;
use crate::schema::Config;

/// A table of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// Its path without indices; `""` for the top level.
    pub(crate) path: String,
    /// Its keys, in the order of the struct's fields.
    pub(crate) keys: &'static [&'static str],
    /// Whether it is an array of tables, written `[[path]]` once per entry.
    pub(crate) array: bool,
}

/// Every table of [`Config`], the top level first.
static TABLES: LazyLock<Vec<Table>> = LazyLock::new(tables_of::<Config>);

/// Every table of the file; `home_of` uses it to say where a key placed in the wrong table belongs.
pub(crate) fn tables() -> &'static [Table] {
    &TABLES
}

/// Whether `path` (without indices) is an array of tables.
pub(crate) fn is_array_of_tables(path: &str) -> bool {
    tables().iter().any(|t| t.array && t.path == path)
}

/// The allowed range of each bounded integer, by path without indices.
pub(crate) const RANGES: &[(&str, u64, u64)] = &[
    ("server.max_body_bytes", 1024, 64 * 1024 * 1024),
    ("server.max_events_per_request", 1, 100_000),
    ("server.concurrency_limit", 1, 10_000),
    ("thresholds.stall_after", 1, 1000),
    ("alerts.flap_changes", 1, 1000),
    ("boot.crash_loop_threshold", 1, 100),
    ("docker.restart_loop_count", 2, 1000),
    ("boot.services.log_lines", 1, 50),
    ("watch.expected_status", 100, 599),
    ("watch.max_tier_failures", 1, 100),
    ("logs.count", 1, 10_000),
];

/// The allowed range of the integer at `path`, when it has one narrower than its type.
pub(crate) fn range_of(path: &KeyPath) -> Option<(u64, u64)> {
    let schema = path.schema();
    RANGES
        .iter()
        .find(|(key, _, _)| *key == schema)
        .map(|&(_, min, max)| (min, max))
}

/// The tables of `T` (whose `Deserialize` is serde's derive), breadth first from the top level.
pub(crate) fn tables_of<T: DeserializeOwned>() -> Vec<Table> {
    let mut tables = Vec::new();
    let mut paths = VecDeque::from([Vec::new()]);
    while let Some(path) = paths.pop_front() {
        // Only a struct that holds itself nests this deep; stop rather than walk forever.
        assert!(
            path.len() <= 8,
            "tables nested too deep at `{}`",
            path.join(".")
        );
        if let Some(Shape::Table { keys, array }) = shape_at::<T>(&path) {
            paths.extend(keys.iter().map(|key| {
                let mut next = path.clone();
                next.push(*key);
                next
            }));
            tables.push(Table {
                path: path.join("."),
                keys,
                array,
            });
        }
    }
    tables
}

/// What is at `path` in `T`; `None` when the path leads nowhere.
fn shape_at<T: DeserializeOwned>(path: &[&'static str]) -> Option<Shape> {
    let found = Cell::new(None);
    // Every probe ends in `Stop`: what matters is what it noted on the way.
    let _ = T::deserialize(Probe {
        path,
        in_array: false,
        found: &found,
    });
    found.get()
}

/// What a key path leads to.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A struct: a table with these keys, an array of tables when it is a sequence's element.
    Table {
        keys: &'static [&'static str],
        array: bool,
    },
    /// Anything else.
    Value,
}

/// A deserializer that walks down `path` and notes in `found` what the type asks for at its end.
struct Probe<'p> {
    /// The keys still to walk down.
    path: &'p [&'static str],
    /// Whether this value is an element of a sequence.
    in_array: bool,
    found: &'p Cell<Option<Shape>>,
}

/// The error that ends every probe.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        match self.path.split_first() {
            None => {
                self.found.set(Some(Shape::Table {
                    keys: fields,
                    array: self.in_array,
                }));
                Err(Stop)
            }
            Some((key, rest)) => visitor.visit_map(Entry {
                key: Some(key),
                value: Some(Probe {
                    path: rest,
                    in_array: false,
                    found: self.found,
                }),
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(Element(Some(Probe {
            in_array: true,
            ..self
        })))
    }

    /// Any other value (durations and instants go through `deserialize_str` and `_any`).
    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        if self.path.is_empty() {
            self.found.set(Some(Shape::Value));
        }
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct tuple tuple_struct map enum identifier ignored_any
    }
}

/// A struct's map with the one key the probe walks down.
struct Entry<'p> {
    key: Option<&'static str>,
    value: Option<Probe<'p>>,
}

impl<'de> MapAccess<'de> for Entry<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        self.key
            .take()
            .map(|key| seed.deserialize(key.into_deserializer()))
            .transpose()
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Stop> {
        seed.deserialize(self.value.take().ok_or(Stop)?)
    }
}

/// A sequence with one element, the probe.
struct Element<'p>(Option<Probe<'p>>);

impl<'de> SeqAccess<'de> for Element<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        self.0
            .take()
            .map(|probe| seed.deserialize(probe))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use toml::de::{DeTable, DeValue};

    use super::*;
    use crate::parse;
    use crate::source::backticked;
    use crate::suggest::{RENAMED, home_of};

    /// Deserializes `text` into a `Config` and returns toml's raw message (no position).
    fn raw_error(text: &str) -> Option<String> {
        let tree = DeTable::parse(text).unwrap();
        serde_path_to_error::deserialize::<_, Config>(toml::de::Deserializer::from(tree))
            .err()
            .map(|e| e.inner().message().to_owned())
    }

    /// The raw serde message for an unknown key placed in `table`.
    fn expected_keys_of(table: &str) -> Vec<String> {
        let text = if table.is_empty() {
            "zz_not_a_key = 1\n".to_owned()
        } else if is_array_of_tables(table) {
            format!("[[{table}]]\nzz_not_a_key = 1\n")
        } else {
            format!("[{table}]\nzz_not_a_key = 1\n")
        };
        let message = raw_error(&text).unwrap_or_else(|| panic!("{table}: no error"));
        let rest = message
            .strip_prefix("unknown field `zz_not_a_key`, ")
            .unwrap_or_else(|| panic!("{table}: {message}"));
        backticked(rest)
    }

    fn table(path: &str) -> Option<&'static Table> {
        tables().iter().find(|t| t.path == path)
    }

    #[test]
    fn the_schema_table_matches_the_structs() {
        for Table { path, keys, .. } in tables() {
            let mut from_structs = expected_keys_of(path);
            let mut listed: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            from_structs.sort();
            listed.sort();
            assert_eq!(from_structs, listed, "keys of `{path}`");
        }
        for (key, _, _) in RANGES {
            let (path, name) = key.rsplit_once('.').unwrap();
            let keys = table(path).unwrap().keys;
            assert!(keys.contains(&name), "{key}");
        }
        for (old, new, _) in RENAMED {
            let (path, name) = old.rsplit_once('.').unwrap();
            let keys = table(path).unwrap().keys;
            assert!(!keys.contains(&name) && keys.contains(new), "{old}");
        }
    }

    /// `value` written at `path` (keys without indices), with inline tables, one entry for each
    /// array of tables on the way: `notify = { sinks = [ { groups = VALUE } ] }`.
    fn inline_at(path: &[&str], value: &str) -> String {
        let mut text = value.to_owned();
        for i in (1..path.len()).rev() {
            let inner = format!("{{ {} = {text} }}", path[i]);
            text = if is_array_of_tables(&path[..i].join(".")) {
                format!("[ {inner} ]")
            } else {
                inner
            };
        }
        format!("{} = {text}\n", path[0])
    }

    #[test]
    fn every_field_of_every_config_struct_is_in_the_derived_table() {
        // Every table serde knows: each derived table takes exactly the struct's keys (the test
        // above), and every other key, given a table or an array of tables, rejects it as a value
        // rather than as a struct missing `zz_not_a_key`: there is no struct the table missed.
        let mut probed = 0;
        for Table { path, keys, .. } in tables() {
            for key in *keys {
                let full: Vec<&str> = path
                    .split('.')
                    .filter(|p| !p.is_empty())
                    .chain([*key])
                    .collect();
                if table(&full.join(".")).is_some() {
                    continue;
                }
                for value in ["{ zz_not_a_key = 1 }", "[ { zz_not_a_key = 1 } ]"] {
                    let text = inline_at(&full, value);
                    let message = raw_error(&text).unwrap_or_default();
                    assert!(
                        !message.starts_with("unknown field `zz_not_a_key`"),
                        "`{}` is a table missing from the key table: {text}",
                        full.join(".")
                    );
                }
                probed += 1;
            }
        }
        assert!(probed > 50, "only {probed} keys probed");
        // The tables found include the nested arrays of tables and the top level.
        assert!(table("").is_some_and(|t| !t.array && t.keys.contains(&"notify")));
        assert!(table("notify.sinks").is_some_and(|t| t.array && t.keys.contains(&"url_env")));
        assert!(table("boot.services").is_some_and(|t| t.array));
        // Renamed fields are listed by the name written in the file.
        assert!(table("quiet").is_some_and(|t| t.keys.contains(&"match")));
    }

    // Two versions of a small configuration: `timeout` moved from `[server]` to `[[jobs]]`.
    #[allow(dead_code)]
    mod before {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct Root {
            pub(super) server: Server,
            #[serde(default)]
            pub(super) jobs: Vec<Job>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct Server {
            pub(super) bind: String,
            pub(super) timeout: Option<u32>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct Job {
            pub(super) name: String,
        }
    }

    #[allow(dead_code)]
    mod after {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct Root {
            pub(super) server: Server,
            #[serde(default)]
            pub(super) jobs: Vec<Job>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct Server {
            pub(super) bind: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct Job {
            pub(super) name: String,
            pub(super) timeout: Option<u32>,
        }
    }

    #[test]
    fn a_key_removed_from_a_struct_is_no_longer_in_the_table() {
        let before = tables_of::<before::Root>();
        let after = tables_of::<after::Root>();
        let keys = |tables: &[Table], path: &str| {
            tables
                .iter()
                .find(|t| t.path == path)
                .map(|t| (t.keys.to_vec(), t.array))
        };
        assert_eq!(keys(&before, ""), Some((vec!["server", "jobs"], false)));
        assert_eq!(
            keys(&before, "server"),
            Some((vec!["bind", "timeout"], false))
        );
        assert_eq!(keys(&before, "jobs"), Some((vec!["name"], true)));
        assert_eq!(keys(&after, "server"), Some((vec!["bind"], false)));
        assert_eq!(keys(&after, "jobs"), Some((vec!["name", "timeout"], true)));
        assert_eq!(before.len(), 3);
        assert_eq!(after.len(), 3);

        // What the table drives follows the struct: a `timeout` in the wrong table is sent home.
        assert_eq!(
            home_of("timeout", "jobs", &before).as_deref(),
            Some("server.timeout")
        );
        assert_eq!(home_of("timeout", "server", &before), None);
        assert_eq!(
            home_of("timeout", "server", &after).as_deref(),
            Some("jobs.timeout")
        );
        assert_eq!(home_of("timeout", "jobs", &after), None);

        // And serde, which the table agrees with, accepts it where the struct has it only.
        let text = "[server]\nbind = \"x\"\ntimeout = 1\n";
        assert!(toml::from_str::<before::Root>(text).is_ok());
        assert!(
            toml::from_str::<after::Root>(text)
                .is_err_and(|e| e.message().starts_with("unknown field `timeout`"))
        );
    }

    // --- the docs and the examples --------------------------------------------------------------

    fn toml_blocks(markdown: &str) -> Vec<String> {
        let mut blocks = Vec::new();
        let mut current: Option<String> = None;
        for line in markdown.lines() {
            match &mut current {
                None if line.trim_start() == "```toml" => current = Some(String::new()),
                Some(block) if line.trim_start() == "```" => {
                    blocks.push(std::mem::take(block));
                    current = None;
                }
                Some(block) => {
                    block.push_str(line);
                    block.push('\n');
                }
                None => {}
            }
        }
        assert!(current.is_none(), "an unclosed ```toml block");
        blocks
    }

    /// Every key path (without indices) written in a TOML text.
    fn key_paths(text: &str) -> BTreeSet<String> {
        fn walk(table: &DeTable<'_>, prefix: &str, out: &mut BTreeSet<String>) {
            for (key, value) in table.iter() {
                let path = if prefix.is_empty() {
                    key.get_ref().to_string()
                } else {
                    format!("{prefix}.{}", key.get_ref())
                };
                match value.get_ref() {
                    DeValue::Table(t) => walk(t, &path, out),
                    DeValue::Array(a) => {
                        for item in a.iter() {
                            if let DeValue::Table(t) = item.get_ref() {
                                walk(t, &path, out);
                            }
                        }
                    }
                    _ => {}
                }
                out.insert(path);
            }
        }
        let mut out = BTreeSet::new();
        walk(DeTable::parse(text).unwrap().get_ref(), "", &mut out);
        out
    }

    const DOC: &str = include_str!("../../../docs/configuration.md");

    #[test]
    fn every_toml_block_of_the_docs_parses_and_together_they_set_every_key() {
        let blocks = toml_blocks(DOC);
        assert!(blocks.len() >= 2, "the docs have TOML examples");
        let mut written = BTreeSet::new();
        for (i, block) in blocks.iter().enumerate() {
            if let Err(e) = parse(block, &format!("docs/configuration.md block {i}")) {
                panic!("{e}\n{block}");
            }
            written.extend(key_paths(block));
        }
        for Table {
            path: table, keys, ..
        } in tables()
        {
            for key in *keys {
                let path = if table.is_empty() {
                    (*key).to_owned()
                } else {
                    format!("{table}.{key}")
                };
                assert!(
                    written.contains(&path),
                    "`{path}` appears in no TOML example of the docs"
                );
            }
        }
    }

    #[test]
    fn every_key_has_a_row_in_its_section_of_the_docs() {
        let sections: Vec<&str> = DOC.split("\n## ").collect();
        for Table {
            path: table, keys, ..
        } in tables().iter().filter(|t| !t.path.is_empty())
        {
            let headings = [format!("`[{table}]`"), format!("`[[{table}]]`")];
            let section = sections
                .iter()
                .find(|s| {
                    let heading = s.lines().next().unwrap_or_default();
                    headings.iter().any(|h| heading.contains(h.as_str()))
                })
                .unwrap_or_else(|| panic!("no section `{table}` in docs/configuration.md"));
            for key in *keys {
                assert!(
                    section.contains(&format!("| `{key}` |")),
                    "`{table}.{key}` has no row in its section of docs/configuration.md"
                );
            }
        }
    }
}
