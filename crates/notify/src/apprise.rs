//! The Apprise sink: hands each notification to the Apprise CLI, which reaches some hundred
//! services (chat, push, SMS, email) through its URLs.
//!
//! The URLs hold tokens and passwords, so they go to the program in its environment
//! (`APPRISE_URLS`), never on its command line (which every user of the machine can read in `ps`),
//! and are scrubbed from whatever of its output an error repeats.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::{DeliveryError, Notifier, Outgoing, Severity};

/// How many lines of the program's output an error repeats.
const ERROR_LINES: usize = 5;

/// Sends notifications by running the Apprise CLI.
#[derive(Clone)]
pub struct AppriseSink {
    name: String,
    program: PathBuf,
    urls: String,
    timeout: Duration,
}

impl fmt::Debug for AppriseSink {
    // The URLs are secrets: only how many.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppriseSink")
            .field("name", &self.name)
            .field("program", &self.program)
            .field("urls", &url_list(&self.urls).len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl AppriseSink {
    /// An Apprise sink called `name` running `program` (usually `/usr/bin/apprise`) for the
    /// space-separated Apprise `urls` (a secret); a run that takes longer than `timeout` is killed.
    pub fn new(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        urls: String,
        timeout: Duration,
    ) -> Self {
        AppriseSink {
            name: name.into(),
            program: program.into(),
            urls,
            timeout,
        }
    }

    /// Runs `program --version` and returns the first line of its answer (`lookout doctor`).
    pub async fn check(&self) -> Result<String, DeliveryError> {
        let out = self.run(&["--version"], false).await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(DeliveryError::new(format!(
                "`{} --version` exited with {}: {}",
                self.program.display(),
                out.status,
                self.last_lines(&out)
            )));
        }
        stdout
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                DeliveryError::new(format!(
                    "`{} --version` printed nothing",
                    self.program.display()
                ))
            })
    }

    /// Runs the program with `args`, the URLs in its environment when `with_urls`; killed when it
    /// outlasts the timeout.
    async fn run(
        &self,
        args: &[&str],
        with_urls: bool,
    ) -> Result<std::process::Output, DeliveryError> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The timeout drops the future: the child must not outlive it.
            .kill_on_drop(true);
        if with_urls {
            cmd.env("APPRISE_URLS", &self.urls);
        } else {
            cmd.env_remove("APPRISE_URLS");
        }
        match tokio::time::timeout(self.timeout, cmd.output()).await {
            Err(_) => Err(DeliveryError::new(format!(
                "`{}` did not finish within {:?}: killed",
                self.program.display(),
                self.timeout
            ))),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(DeliveryError::new(format!(
                    "Apprise program `{}` not found (install Debian's `apprise` package or set the sink's program)",
                    self.program.display()
                )))
            }
            Ok(Err(e)) => Err(DeliveryError::new(format!(
                "Apprise program `{}` cannot run: {e}",
                self.program.display()
            ))),
            Ok(Ok(out)) => Ok(out),
        }
    }

    /// The last lines of what the program said, URLs scrubbed. The Apprise CLI logs its warnings
    /// and errors (why a service failed) to stdout, so those lines are taken from either stream;
    /// failing that, the last lines of stderr, else of stdout.
    fn last_lines(&self, out: &std::process::Output) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let nonempty = |s: &str| -> Vec<String> {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let logged: Vec<String> = stderr
            .lines()
            .chain(stdout.lines())
            .filter_map(log_message)
            .collect();
        let lines = if !logged.is_empty() {
            logged
        } else if !nonempty(&stderr).is_empty() {
            nonempty(&stderr)
        } else {
            nonempty(&stdout)
        };
        let tail = lines[lines.len().saturating_sub(ERROR_LINES)..].join(" | ");
        let tail: String = scrub(&tail, &self.urls).chars().take(600).collect();
        if tail.is_empty() {
            "no output".into()
        } else {
            tail
        }
    }
}

#[async_trait::async_trait]
impl Notifier for AppriseSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        // With no URL at all the CLI would fall back to its own configuration files: refuse.
        if url_list(&self.urls).is_empty() {
            return Err(DeliveryError::new("no Apprise URLs configured"));
        }
        let (title, body) = title_and_body(&n.text);
        let kind = notification_type(n);
        // -v: a failing service is logged at WARNING, which the CLI hides by default.
        let out = self
            .run(&["-v", "-t", title, "-b", body, "-n", kind], true)
            .await?;
        if out.status.success() {
            tracing::debug!(sink = %self.name, id = %n.id, kind, "apprise delivered");
            Ok(())
        } else {
            Err(DeliveryError::new(format!(
                "apprise exited with {}: {}",
                out.status,
                self.last_lines(&out)
            )))
        }
    }
}

/// Title: the first line. Body: the lines after it, or the whole text when there are none (Apprise
/// wants a body).
fn title_and_body(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once('\n') {
        Some((first, rest)) if !rest.trim().is_empty() => (first.trim(), rest.trim()),
        Some((first, _)) => (first.trim(), text),
        None => (text, text),
    }
}

/// Apprise's notification type (its colour and icon): `success` for a resolved alert, else by
/// severity.
fn notification_type(n: &Outgoing) -> &'static str {
    if n.payload.get("state").and_then(|s| s.as_str()) == Some("resolved") {
        return "success";
    }
    match n.severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "failure",
    }
}

/// The URLs as Apprise reads them: separated by spaces or commas.
fn url_list(urls: &str) -> Vec<&str> {
    urls.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|u| !u.is_empty())
        .collect()
}

/// The message of an Apprise log line at WARNING or worse (`2026-01-02 03:04:05,678 - ERROR -
/// text` → `ERROR - text`), `None` for any other line.
fn log_message(line: &str) -> Option<String> {
    let (_, rest) = line.split_once(" - ")?;
    ["WARNING - ", "ERROR - ", "CRITICAL - "]
        .iter()
        .any(|level| rest.starts_with(level))
        .then(|| rest.trim().to_owned())
}

/// `text` without the URLs: each whole URL, the URL without its scheme, and each of its parts of
/// six or more characters (tokens, passwords, chat ids: what a service's log line may repeat)
/// becomes `***`.
fn scrub(text: &str, urls: &str) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    for url in url_list(urls) {
        secrets.push(url);
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        secrets.push(rest);
        secrets.extend(
            rest.split(['/', ':', '@', '?', '&', '=', '#', ';'])
                .filter(|part| part.chars().count() >= 6),
        );
    }
    // Longest first: a whole URL goes before any of its parts could break it up.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
        .into_iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn title_is_the_first_line_and_body_the_rest() {
        assert_eq!(
            title_and_body("🔥 disk full\non host\n"),
            ("🔥 disk full", "on host")
        );
        assert_eq!(title_and_body("one line"), ("one line", "one line"));
        assert_eq!(title_and_body("one line\n\n"), ("one line", "one line"));
    }

    #[test]
    fn type_follows_severity_and_resolution() {
        let mut n = Outgoing {
            id: "n-1".into(),
            created_at: chrono::Utc::now(),
            key: None,
            group: None,
            severity: Severity::Critical,
            text: "x".into(),
            payload: json!({"state": "firing"}),
            fallback_for: None,
        };
        assert_eq!(notification_type(&n), "failure");
        n.severity = Severity::Warning;
        assert_eq!(notification_type(&n), "warning");
        n.severity = Severity::Info;
        assert_eq!(notification_type(&n), "info");
        n.payload = json!({"state": "resolved"});
        assert_eq!(notification_type(&n), "success");
    }

    #[test]
    fn urls_and_their_secret_parts_are_scrubbed() {
        let urls = "tgram://123456789:ABCdefGHI/987654 json://user:s3cretpass@10.0.0.1:8080/hook";
        let text = "Unparseable URL json://user:s3cretpass@10.0.0.1:8080/hook | \
                    error sending Telegram:987654 with ABCdefGHI; password s3cretpass";
        let s = scrub(text, urls);
        for secret in ["s3cretpass", "ABCdefGHI", "987654", "123456789"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert!(s.starts_with("Unparseable URL *** |"), "{s}");
    }

    #[test]
    fn only_warnings_and_errors_are_taken_from_the_log() {
        assert_eq!(
            log_message("2026-12-02 15:10:23,733 - WARNING - A Connection error occurred."),
            Some("WARNING - A Connection error occurred.".into())
        );
        assert_eq!(log_message("2026-12-02 15:10:23,733 - INFO - sent"), None);
        assert_eq!(log_message("Usage: apprise [OPTIONS]"), None);
    }

    #[test]
    fn debug_shows_no_url() {
        let s = AppriseSink::new(
            "a",
            "/usr/bin/apprise",
            "tgram://secret-token/1".into(),
            Duration::from_secs(1),
        );
        assert!(!format!("{s:?}").contains("secret"));
    }
}
