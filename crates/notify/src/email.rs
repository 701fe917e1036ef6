//! The email sink: one message per notification over SMTP (lettre), threaded per alert.
//!
//! Each notification is one message. Its `Message-ID` is built from the notification id, so every
//! retry of it carries the same one and a receiver (or a person) can drop a duplicate. An alert's
//! firing and resolved messages both name the same thread root in `References` and `In-Reply-To`
//! (from the alert key and when it was first seen), so mail clients show a firing together with its
//! resolution.

use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::{DeliveryError, Notifier, Outgoing};

/// What an [`EmailSink`] needs to know.
#[derive(Clone)]
pub struct EmailSettings {
    /// The SMTP server: `smtp://host[:port]` (STARTTLS required, port 587 by default),
    /// `smtps://host[:port]` (implicit TLS, 465) or `smtp+plain://host[:port]` (no TLS, 25: for a
    /// relay on localhost).
    pub smtp_url: String,
    /// User name and password for SMTP AUTH, if the server wants them (the password is a secret).
    pub credentials: Option<(String, String)>,
    /// The sender: `lookout@example.org` or `Lookout <lookout@example.org>`.
    pub from: String,
    /// The recipients (at least one), in the same forms as `from`.
    pub to: Vec<String>,
    /// The limit for a whole delivery (connect, dialogue, message) and for each step of it.
    pub timeout: Duration,
}

impl fmt::Debug for EmailSettings {
    // Never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSettings")
            .field("smtp_url", &self.smtp_url)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why [`EmailSettings`] cannot make an [`EmailSink`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// The URL's scheme is not one this sink speaks.
    #[error(
        "smtp_url: scheme `{0}` is not one of smtp:// (STARTTLS), smtps:// (TLS) or smtp+plain:// (no TLS)"
    )]
    Scheme(String),
    /// The rest of the URL is wrong (the URL itself is not repeated: it may hold a secret).
    #[error("smtp_url: {0}")]
    Url(String),
    /// A sender or recipient address does not parse.
    #[error("email {field} address `{address}`: {reason}")]
    Address {
        /// `from` or `to`.
        field: &'static str,
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No recipient.
    #[error("email: no `to` address")]
    NoRecipients,
    /// A password would cross the network in clear text.
    #[error(
        "smtp_url: smtp+plain:// sends the password in clear text; use it with credentials only for a relay on localhost"
    )]
    PlainCredentials,
    /// The TLS settings for the host cannot be made.
    #[error("smtp_url: TLS for `{host}`: {reason}")]
    Tls {
        /// The server's host name.
        host: String,
        /// What is wrong.
        reason: String,
    },
}

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    StartTls,
    Implicit,
    Plain,
}

/// Sends notifications as email through an SMTP server.
pub struct EmailSink {
    name: String,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl fmt::Debug for EmailSink {
    // The transport holds the credentials: not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSink")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish()
    }
}

impl EmailSink {
    /// An email sink called `name`; an error names what in `settings` is wrong.
    pub fn new(name: impl Into<String>, settings: EmailSettings) -> Result<Self, EmailError> {
        let (security, host, port) = parse_smtp_url(&settings.smtp_url)?;
        let from = parse_mailbox("from", &settings.from)?;
        if settings.to.is_empty() {
            return Err(EmailError::NoRecipients);
        }
        let to = settings
            .to
            .iter()
            .map(|a| parse_mailbox("to", a))
            .collect::<Result<Vec<_>, _>>()?;
        if security == Security::Plain && settings.credentials.is_some() && !is_loopback(&host) {
            return Err(EmailError::PlainCredentials);
        }
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|e| EmailError::Tls {
                host: host.to_owned(),
                reason: e.to_string(),
            })
        };
        let tls = match security {
            // Required, not opportunistic: a server that does not offer STARTTLS gets nothing.
            Security::StartTls => Tls::Required(tls(&host)?),
            Security::Implicit => Tls::Wrapper(tls(&host)?),
            Security::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let Some((user, password)) = settings.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(EmailSink {
            name: name.into(),
            server: if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            },
            from,
            to,
            timeout: settings.timeout,
            transport: builder.build(),
        })
    }

    /// The message for `n`, as it goes on the wire.
    fn message(&self, n: &Outgoing) -> Result<lettre::Message, DeliveryError> {
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject(n))
            .message_id(Some(format!("<{}@lookout>", msg_id_part(&n.id))))
            .header(header::ContentType::TEXT_PLAIN);
        for to in &self.to {
            b = b.to(to.clone());
        }
        if let Some(root) = thread_root(n) {
            b = b.references(root.clone()).in_reply_to(root);
        }
        b.body(body(n))
            .map_err(|e| DeliveryError::new(format!("email not built: {e}")))
    }
}

#[async_trait::async_trait]
impl Notifier for EmailSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, n: &Outgoing) -> Result<(), DeliveryError> {
        let message = self.message(n)?;
        // lettre's timeout bounds each step; this bounds a server that answers every step slowly.
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message))
            .await
            .map_err(|_| {
                DeliveryError::new(format!(
                    "SMTP {}: no answer within {:?}",
                    self.server, self.timeout
                ))
            })?;
        match sent {
            Ok(_) => {
                tracing::debug!(sink = %self.name, id = %n.id, server = %self.server, "email sent");
                Ok(())
            }
            Err(e) => Err(DeliveryError::new(smtp_error(&self.server, &e))),
        }
    }
}

/// The error text for a failed send: whether the server's refusal was transient (4xx) or
/// permanent (5xx) — both are retried, since a "permanent" refusal is often a full mailbox or a
/// relay misconfiguration that gets fixed. lettre's errors carry the server's answer, never the
/// password.
fn smtp_error(server: &str, e: &lettre::transport::smtp::Error) -> String {
    let kind = if e.is_permanent() {
        "permanent refusal, retried anyway"
    } else if e.is_transient() {
        "transient refusal"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_tls() {
        "TLS failed"
    } else if e.is_client() {
        // lettre itself stopped, e.g. the server offers no AUTH mechanism it can use.
        "not sent"
    } else if e.is_response() {
        "unreadable answer"
    } else {
        "connection failed"
    };
    let mut text = e.to_string();
    let mut cur: &dyn std::error::Error = e;
    // lettre's Display already includes its direct source; add the deeper causes (e.g. the OS's
    // "connection refused") once each.
    while let Some(next) = cur.source() {
        let s = next.to_string();
        if !text.contains(&s) {
            text = format!("{text}: {s}");
        }
        cur = next;
    }
    format!("SMTP {server}: {kind}: {text}")
}

/// `[Lookout] ` and the first line of the text; on a fallback delivery the first line of the
/// original text, since the added first line would give every fallback email the same subject.
fn subject(n: &Outgoing) -> String {
    let mut lines = n.text.lines();
    if n.fallback_for.is_some() {
        lines.next();
    }
    let first = lines
        .find(|l| !l.trim().is_empty())
        .unwrap_or("notification");
    // Long subjects are cut by mail clients anyway; keep the header readable.
    let first: String = first.trim().chars().take(160).collect();
    format!("[Lookout] {first}")
}

/// The whole text and a footer (after the `-- ` signature line, so mail clients dim it) with the
/// severity, alert key and notification id.
fn body(n: &Outgoing) -> String {
    format!(
        "{}\n\n-- \nLookout · severity {} · alert {} · notification {}",
        n.text.trim_end(),
        n.severity.as_str(),
        n.key.as_deref().unwrap_or("-"),
        n.id
    )
}

/// For an alert (payload has `alert` and `first_seen`), the id of the thread its messages belong
/// to: `<alert.{key}.{first seen, unix seconds}@lookout>`. The same alert firing again later has
/// another `first_seen`, so another thread.
fn thread_root(n: &Outgoing) -> Option<String> {
    let key = n.payload.get("alert")?.as_str()?;
    let first_seen = n.payload.get("first_seen")?.as_str()?;
    let first_seen = match chrono::DateTime::parse_from_rfc3339(first_seen) {
        Ok(t) => t.timestamp(),
        Err(e) => {
            tracing::debug!(id = %n.id, first_seen, error = %e, "alert's first_seen unreadable: email not threaded");
            return None;
        }
    };
    Some(format!("<alert.{}.{first_seen}@lookout>", msg_id_part(key)))
}

/// `s` as the left part of a msg-id (RFC 5322 dot-atom): letters, digits, `.`, `-` and `_`, any
/// other character as `-`; a dot first, last or after another dot (not allowed there) also as `-`.
fn msg_id_part(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        let keep = match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' => true,
            '.' => i > 0 && i + 1 < chars.len() && !out.ends_with('.'),
            _ => false,
        };
        out.push(if keep { c } else { '-' });
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// Splits an `smtp_url` into its security, host and port.
fn parse_smtp_url(url: &str) -> Result<(Security, String, u16), EmailError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| EmailError::Url("expected scheme://host[:port]".into()))?;
    let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "smtp" => (Security::StartTls, 587),
        "smtps" => (Security::Implicit, 465),
        "smtp+plain" => (Security::Plain, 25),
        other => return Err(EmailError::Scheme(other.to_owned())),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(EmailError::Url(
            "credentials go in the settings' user and password, not in the URL".into(),
        ));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(EmailError::Url(
            "only scheme://host[:port], no path or query".into(),
        ));
    }
    // `[::1]:25`: the brackets keep the port apart from the address.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| EmailError::Url("`[` without `]`".into()))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| EmailError::Url("expected `:port` after `]`".into()))?,
                ),
            ),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(EmailError::Url("no host".into()));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| EmailError::Url(format!("port `{p}` is not a number 1-65535")))?,
    };
    Ok((security, host.to_owned(), port))
}

fn parse_mailbox(field: &'static str, address: &str) -> Result<Mailbox, EmailError> {
    address.trim().parse().map_err(|e| EmailError::Address {
        field,
        address: address.to_owned(),
        reason: format!("{e}"),
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;
    use serde_json::json;

    fn outgoing(text: &str, payload: serde_json::Value) -> Outgoing {
        Outgoing {
            id: "n-1-2-3".into(),
            created_at: chrono::Utc::now(),
            key: Some("disk_full:host/sda".into()),
            group: None,
            severity: Severity::Critical,
            text: text.into(),
            payload,
            fallback_for: None,
        }
    }

    #[test]
    fn urls_give_security_host_and_default_ports() {
        let p = |u| parse_smtp_url(u);
        assert_eq!(
            p("smtp://mail.example.org"),
            Ok((Security::StartTls, "mail.example.org".into(), 587))
        );
        assert_eq!(
            p("smtps://mail.example.org:2465/"),
            Ok((Security::Implicit, "mail.example.org".into(), 2465))
        );
        assert_eq!(
            p("smtp+plain://[::1]"),
            Ok((Security::Plain, "::1".into(), 25))
        );
        assert_eq!(p("http://x"), Err(EmailError::Scheme("http".into())));
        assert!(matches!(p("smtp://:25"), Err(EmailError::Url(_))));
        assert!(matches!(p("smtp://h:99999"), Err(EmailError::Url(_))));
        assert!(matches!(p("smtp://h/path"), Err(EmailError::Url(_))));
        // The error never repeats a URL that holds a password.
        let e = p("smtp://me:hunter2@h").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn bad_settings_name_what_is_wrong() {
        let settings = |url: &str, from: &str, to: &[&str]| EmailSettings {
            smtp_url: url.into(),
            credentials: Some(("me".into(), "hunter2".into())),
            from: from.into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(5),
        };
        let err = |s| EmailSink::new("mail", s).unwrap_err();
        assert!(matches!(
            err(settings("smtp://h", "not an address", &["a@b.c"])),
            EmailError::Address { field: "from", .. }
        ));
        assert!(matches!(
            err(settings("smtp://h", "l@b.c", &["a@b.c", "nope"])),
            EmailError::Address { field: "to", .. }
        ));
        assert_eq!(
            err(settings("smtp://h", "l@b.c", &[])),
            EmailError::NoRecipients
        );
        assert_eq!(
            err(settings(
                "smtp+plain://mail.example.org",
                "l@b.c",
                &["a@b.c"]
            )),
            EmailError::PlainCredentials
        );
        let ok = EmailSink::new(
            "mail",
            settings("smtp+plain://localhost", "l@b.c", &["a@b.c"]),
        )
        .unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
        assert!(!format!("{:?}", settings("smtp://h", "", &[])).contains("hunter2"));
    }

    #[test]
    fn msg_ids_keep_only_legal_characters() {
        assert_eq!(msg_id_part("disk_full:host/sda"), "disk_full-host-sda");
        assert_eq!(msg_id_part(".a..b."), "-a.-b-");
        assert_eq!(msg_id_part("crash <loop> é"), "crash--loop---");
        assert_eq!(msg_id_part(""), "-");
    }

    #[test]
    fn an_alert_threads_by_key_and_first_seen() {
        let firing = outgoing(
            "🔥 disk full on host",
            json!({"alert": "disk_full:host/sda", "state": "firing", "first_seen": "2026-01-02T03:04:05Z"}),
        );
        assert_eq!(
            thread_root(&firing).as_deref(),
            Some("<alert.disk_full-host-sda.1767323045@lookout>")
        );
        assert_eq!(thread_root(&outgoing("x", json!({}))), None);
        assert_eq!(
            thread_root(&outgoing(
                "x",
                json!({"alert": "a", "first_seen": "yesterday"})
            )),
            None
        );
    }

    #[test]
    fn subject_and_body() {
        let mut n = outgoing("✅ resolved: disk full\nafter 5m\n", json!({}));
        assert_eq!(subject(&n), "[Lookout] ✅ resolved: disk full");
        assert_eq!(
            body(&n),
            "✅ resolved: disk full\nafter 5m\n\n-- \nLookout · severity critical · alert disk_full:host/sda · notification n-1-2-3"
        );
        n.text = "⚠️ primary sink `chat` failing for 2m — via fallback:\n🔥 disk full".into();
        n.fallback_for = Some("chat".into());
        assert_eq!(subject(&n), "[Lookout] 🔥 disk full");
    }
}
