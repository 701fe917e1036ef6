//! The store's one error type.

/// Everything that can go wrong in the store, each variant saying what a person should look at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be understood. `url` has any password replaced by `***`.
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given, password redacted.
        url: String,
        /// What is wrong with it, and what was expected.
        reason: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open store `{url}`: {source}")]
    Open {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("cannot migrate store `{url}`: {source}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store query failed while {context}: {source}")]
    Query {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value could not be decoded (a corrupt or hand-edited row).
    #[error("corrupt row while {context}: {reason}")]
    Corrupt {
        /// What the store was doing.
        context: &'static str,
        /// What could not be decoded.
        reason: String,
    },
    /// The caller passed something the store cannot accept.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) trait QueryContext<T> {
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T> QueryContext<T> for std::result::Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Query { context, source })
    }
}
