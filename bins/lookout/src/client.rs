//! The small HTTP client every command that asks lookoutd shares, and how its failures map to
//! exit codes.

use std::time::Duration;

use crate::Failure;

/// A small client for lookoutd's JSON API.
pub(crate) struct Client {
    pub(crate) base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    pub(crate) fn new(url: &str) -> Result<Self, Failure> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure {
                code: 2,
                message: format!("--url `{url}` must start with http:// or https://"),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Failure {
                code: 1,
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        let token = std::env::var("LOOKOUT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        Ok(Client { base, http, token })
    }

    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Failure> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| Failure {
            code: 1,
            message: format!(
                "lookoutd at {} answered {status} with a body that is not JSON: {e}",
                self.base
            ),
        })?;
        if !status.is_success() {
            return Err(refused(path, status, &body, 1));
        }
        Ok(body)
    }

    fn unreachable(&self, e: &reqwest::Error) -> Failure {
        Failure {
            code: 3,
            message: format!(
                "cannot reach lookoutd at {} ({}) — is it running? (set --url or LOOKOUT_URL)",
                self.base,
                root_cause(e)
            ),
        }
    }

    /// GET that must succeed: a non-2xx answer is lookoutd's refusal.
    pub(crate) async fn get_ok(&self, path: &str) -> Result<serde_json::Value, Failure> {
        let (status, body) = self.get_json(path).await?;
        if !status.is_success() {
            return Err(refused(path, status, &body, 1));
        }
        Ok(body)
    }

    pub(crate) async fn get_json(
        &self,
        path: &str,
    ) -> Result<(reqwest::StatusCode, serde_json::Value), Failure> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let body = resp.json().await.map_err(|e| Failure {
            code: 1,
            message: format!(
                "lookoutd at {} answered {status} with a body that is not JSON: {e}",
                self.base
            ),
        })?;
        Ok((status, body))
    }
}

/// lookoutd answered with an error status: its `error` text, with the path and status.
pub(crate) fn refused(
    path: &str,
    status: reqwest::StatusCode,
    body: &serde_json::Value,
    code: u8,
) -> Failure {
    let msg = body
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or("no detail");
    Failure {
        code,
        message: format!("lookoutd refused {path} ({status}): {msg}"),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
