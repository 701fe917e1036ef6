//! The HTTP probe seam: one GET of an endpoint (a health URL, a watch target), with a timeout.
//! The gateway section of `/status` and the watchdog's HTTP targets use the same trait, so a test
//! fakes both the same way.

use std::time::Duration;

/// An endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// Why one GET got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpProbeError {
    /// No connection (refused, DNS, reset): the endpoint's host may be down.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// No answer within the timeout.
    #[error("timed out after {0} ms")]
    Timeout(u128),
    /// Anything else (a broken answer, a bad URL).
    #[error("{0}")]
    Other(String),
}

/// GETs endpoints.
#[async_trait::async_trait]
pub trait HttpProbe: Send + Sync {
    /// GETs `url` (with `Authorization: Bearer <bearer>` when given), giving up after `timeout`.
    async fn get(
        &self,
        url: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<HttpAnswer, HttpProbeError>;
}

#[cfg(feature = "http")]
pub use real::ReqwestProbe;

#[cfg(feature = "http")]
mod real {
    use std::time::Duration;

    use super::{HttpAnswer, HttpProbe, HttpProbeError};

    /// The real [`HttpProbe`]: one pooled reqwest client (no TLS).
    #[derive(Debug, Clone, Default)]
    pub struct ReqwestProbe {
        client: reqwest::Client,
    }

    impl ReqwestProbe {
        /// A probe with its own connection pool.
        pub fn new() -> Self {
            Self::default()
        }
    }

    #[async_trait::async_trait]
    impl HttpProbe for ReqwestProbe {
        async fn get(
            &self,
            url: &str,
            bearer: Option<&str>,
            timeout: Duration,
        ) -> Result<HttpAnswer, HttpProbeError> {
            let mut req = self.client.get(url).timeout(timeout);
            if let Some(k) = bearer {
                req = req.bearer_auth(k);
            }
            let send = async {
                let resp = req.send().await?;
                let status = resp.status().as_u16();
                let body = resp.text().await?;
                Ok::<_, reqwest::Error>(HttpAnswer { status, body })
            };
            // The error's text may name the URL but never a header, so a bearer cannot leak.
            send.await.map_err(|e| {
                if e.is_timeout() {
                    HttpProbeError::Timeout(timeout.as_millis())
                } else if e.is_connect() {
                    HttpProbeError::Connect(e.to_string())
                } else {
                    HttpProbeError::Other(e.to_string())
                }
            })
        }
    }
}
