//! Understanding a store URL before anything is opened or created.

use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// A parsed store URL: which backend, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH` (or `sqlite:PATH`): a database file, created if missing.
    Sqlite {
        /// The database file. Relative paths are relative to the process's working directory
        /// unless resolved with [`StoreUrl::resolve_relative_to`].
        path: PathBuf,
    },
    /// `sqlite::memory:`: a private in-memory database (tests, experiments).
    SqliteMemory,
    /// `postgres://…` or `postgresql://…`.
    Postgres {
        /// The URL as given.
        url: String,
    },
}

impl StoreUrl {
    /// Parses a URL, without touching the file system or the network.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: redact(url),
            reason,
        };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(invalid(
                "it is empty; expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            ));
        }
        if trimmed == "sqlite::memory:" || trimmed == "sqlite://:memory:" {
            return Ok(StoreUrl::SqliteMemory);
        }
        if let Some(rest) = trimmed.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.contains('?') {
                return Err(invalid(
                    "query options are not supported on sqlite URLs; Lookout sets WAL, foreign keys and the busy timeout itself".into(),
                ));
            }
            if path.is_empty() {
                return Err(invalid(
                    "it names no file; expected sqlite://PATH, e.g. sqlite://lookout.db".into(),
                ));
            }
            return Ok(StoreUrl::Sqlite {
                path: PathBuf::from(path),
            });
        }
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            use std::str::FromStr;
            sqlx::postgres::PgConnectOptions::from_str(trimmed)
                .map_err(|e| invalid(format!("not a valid PostgreSQL URL ({e})")))?;
            return Ok(StoreUrl::Postgres {
                url: trimmed.to_owned(),
            });
        }
        let scheme = trimmed.split_once(':').map(|(s, _)| s).unwrap_or(trimmed);
        Err(invalid(format!(
            "unknown scheme `{scheme}`; expected sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }

    /// Makes a relative SQLite path relative to `base` (lookoutd's state directory).
    pub fn resolve_relative_to(self, base: &Path) -> Self {
        match self {
            StoreUrl::Sqlite { path } if path.is_relative() => StoreUrl::Sqlite {
                path: base.join(path),
            },
            other => other,
        }
    }

    /// The URL in a form safe to log or print: any password is replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            StoreUrl::Sqlite { path } => format!("sqlite://{}", path.display()),
            StoreUrl::SqliteMemory => "sqlite::memory:".into(),
            StoreUrl::Postgres { url } => redact(url),
        }
    }
}

/// Replaces the password of a URL (`scheme://user:password@host`, and `password=` /
/// `sslpassword=` query parameters) by `***`.
pub fn redact(url: &str) -> String {
    let url = &redact_query(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            // Wherever else the password appears (a path or parameter repeating it), it is
            // hidden too: readability of a redacted URL never outweighs its secret.
            Some((user, password)) if !password.is_empty() => format!(
                "{scheme}://{user}:***@{}{}",
                host.replace(password, "***"),
                tail.replace(password, "***")
            ),
            Some((user, _)) => format!("{scheme}://{user}:@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _))
                if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") =>
            {
                format!("{k}=***")
            }
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Found by the text_inputs fuzz target: the password repeated later in the URL was shown.
    #[test]
    fn a_password_repeated_elsewhere_in_the_url_is_hidden_everywhere() {
        assert_eq!(
            redact("mysql://root:hun2@db/xoot:hun2@db"),
            "mysql://root:***@db/xoot:***@db"
        );
        assert_eq!(redact("postgres://u:@h/db"), "postgres://u:@h/db");
    }

    #[test]
    fn passwords_in_query_parameters_are_redacted_too() {
        assert_eq!(
            redact("postgres://u@h/db?sslmode=disable&password=s3cret"),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
        assert_eq!(
            redact("postgres://u:pw@h/db?sslpassword=x"),
            "postgres://u:***@h/db?sslpassword=***"
        );
    }

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(
            StoreUrl::parse("sqlite://lookout.db").unwrap(),
            StoreUrl::Sqlite {
                path: "lookout.db".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/lookout/db.sqlite").unwrap(),
            StoreUrl::Sqlite {
                path: "/var/lib/lookout/db.sqlite".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("sqlite::memory:").unwrap(),
            StoreUrl::SqliteMemory
        );
        assert!(matches!(
            StoreUrl::parse("postgres://u:p@127.0.0.1:5432/db").unwrap(),
            StoreUrl::Postgres { .. }
        ));
    }

    #[test]
    fn malformed_urls_say_what_is_wrong_and_hide_passwords() {
        let e = StoreUrl::parse("mysql://root:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown scheme `mysql`"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = StoreUrl::parse("sqlite://").unwrap_err().to_string();
        assert!(e.contains("names no file"), "{e}");
        let e = StoreUrl::parse("").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = StoreUrl::parse("postgres://u:secret@host:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid PostgreSQL URL"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn relative_sqlite_paths_follow_the_state_dir() {
        let u = StoreUrl::parse("sqlite://lookout.db")
            .unwrap()
            .resolve_relative_to(Path::new("/state"));
        assert_eq!(
            u,
            StoreUrl::Sqlite {
                path: "/state/lookout.db".into()
            }
        );
    }
}
