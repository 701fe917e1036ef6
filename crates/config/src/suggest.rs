//! What to suggest for an unknown key: its new name when it was renamed, the `*_env` key beside a
//! secret, the nearest valid key (by edit distance), a synonym, a longer key it is part of, or the
//! other table it belongs in.

use crate::error::{At, ConfigError, KeyPath};
use crate::keys::{Table, tables};

/// Keys that were renamed: the old key (without indices), its new name in the same table, and
/// what else to say.
pub(crate) const RENAMED: &[(&str, &str, &str)] = &[
    ("thresholds.stale_threshold", "stale_processing", ""),
    (
        "server.token",
        "token_env",
        "it names the environment variable that holds the token; secrets never go in the file",
    ),
];

/// The error for the unknown key at `path`, `valid` being the keys of its table.
pub(crate) fn unknown_key(origin: &str, path: KeyPath, at: At, valid: &[String]) -> ConfigError {
    let origin = origin.to_owned();
    let table = path.parent();
    let key = path.last_key().unwrap_or_default().to_owned();
    if let Some((_, new, why)) = RENAMED.iter().find(|(old, _, _)| *old == path.schema()) {
        return ConfigError::Renamed {
            origin,
            at,
            renamed_to: table.key(new),
            path,
            advice: if why.is_empty() {
                String::new()
            } else {
                format!(" — {why}")
            },
        };
    }
    let advice = if let Some(env) = secret_sibling(&key, valid) {
        format!(
            " — did you mean `{env}`? Secrets come from the environment: set it to the name of \
             the variable that holds the secret"
        )
    } else if let Some(near) = nearest(&key, valid)
        .or_else(|| synonym(&key, valid))
        .or_else(|| part_of(&key, valid))
    {
        format!(" — did you mean `{near}`?")
    } else if let Some(home) = home_of(&key, &table.schema(), tables()) {
        format!(" — did you mean `{home}`?")
    } else if valid.is_empty() {
        " (this table takes no keys)".to_owned()
    } else {
        let list: Vec<String> = valid.iter().map(|k| format!("`{k}`")).collect();
        format!(" (valid keys here: {})", list.join(", "))
    };
    ConfigError::UnknownKey {
        origin,
        path,
        at,
        advice,
    }
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), on characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn normalise(key: &str) -> String {
    key.to_ascii_lowercase().replace('-', "_")
}

/// The valid key closest to `key`, when it is close: at most max(2, len/3) edits, and never more
/// than half the key (so `url` does not suggest `at`).
pub(crate) fn nearest(key: &str, valid: &[String]) -> Option<String> {
    let wanted = normalise(key);
    let len = wanted.chars().count();
    let limit = (len / 3).max(2).min(len / 2);
    valid
        .iter()
        .map(|v| (edit_distance(&wanted, &normalise(v)), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.clone())
}

const SECRET_WORDS: &[&str] = &["password", "passwd", "token", "secret", "key", "credential"];

/// For a key that holds a secret (`password`, `health_key`), the `*_env` key beside it.
fn secret_sibling(key: &str, valid: &[String]) -> Option<String> {
    let wanted = format!("{key}_env");
    if valid.contains(&wanted) {
        return Some(wanted);
    }
    let lower = key.to_ascii_lowercase();
    let word = SECRET_WORDS.iter().find(|w| lower.contains(**w))?;
    let envs: Vec<&String> = valid.iter().filter(|v| v.ends_with("_env")).collect();
    // The `_env` key about the same secret, else the table's only `_env` key.
    envs.iter()
        .filter(|v| v.contains(word))
        .min_by_key(|v| edit_distance(&lower, v))
        .or(if envs.len() == 1 { envs.first() } else { None })
        .map(|v| (*v).clone())
}

/// Words people write for a key under another name.
const SYNONYMS: &[(&str, &str)] = &[
    ("type", "kind"),
    ("listen", "bind"),
    ("address", "bind"),
    ("addr", "bind"),
    ("database_url", "url"),
    ("schedule", "cron"),
    ("interval", "every"),
    ("timezone", "tz"),
    ("time_zone", "tz"),
    ("cmd", "command"),
    ("run", "command"),
    ("tags", "groups"),
    ("severity", "min_severity"),
];

fn synonym(key: &str, valid: &[String]) -> Option<String> {
    let key = normalise(key);
    SYNONYMS
        .iter()
        .find(|(word, target)| *word == key && valid.iter().any(|v| v == target))
        .map(|(_, target)| (*target).to_owned())
}

/// The one valid key that has `key` as a whole word at its start or end (`timeout` in
/// `request_timeout`).
fn part_of(key: &str, valid: &[String]) -> Option<String> {
    let key = normalise(key);
    let mut found = valid
        .iter()
        .filter(|v| v.starts_with(&format!("{key}_")) || v.ends_with(&format!("_{key}")));
    let first = found.next()?;
    found.next().is_none().then(|| first.clone())
}

/// The full path of the one other table of `tables` that has `key` (`[server] stale_processing`
/// belongs in `thresholds`).
pub(crate) fn home_of(key: &str, table: &str, tables: &[Table]) -> Option<String> {
    let mut homes = tables
        .iter()
        .filter(|t| t.path != table && t.keys.contains(&key))
        .map(|t| {
            if t.path.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", t.path)
            }
        });
    let home = homes.next()?;
    homes.next().is_none().then_some(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("bnid", "bind"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ünï", "ün"), 1);
        let valid: Vec<String> = ["at", "name", "cron"].map(String::from).to_vec();
        assert_eq!(nearest("corn", &valid).as_deref(), Some("cron"));
        assert_eq!(nearest("url", &valid), None);
        assert_eq!(nearest("x", &valid), None);
    }
}
