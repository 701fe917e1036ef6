//! `[[notify.sinks]]` entries and `[selfcheck]`: the keys each kind of sink needs and takes.

use super::Checked;
use crate::error::KeyPath;
use crate::schema::{SelfCheckConfig, Sink, SinkKind};
use crate::source::Source;

/// The keys beyond the common ones (`name`, `kind`, `groups`, `min_severity`, `fallback`) that
/// each kind takes.
fn takes(kind: SinkKind) -> &'static [&'static str] {
    match kind {
        SinkKind::Log => &[],
        SinkKind::Webhook | SinkKind::Slack | SinkKind::Callback | SinkKind::Discord => {
            &["url", "url_env"]
        }
        SinkKind::File => &["path"],
        SinkKind::Telegram => &["token_env", "chat_id", "allowed_chats", "api_url"],
        SinkKind::Ntfy => &["url", "url_env", "token_env"],
        SinkKind::Email => &["smtp_url", "username_env", "password_env", "from", "to"],
        SinkKind::Apprise => &["urls_env", "command"],
    }
}

/// The kinds that take `key`, for the message about a kind that does not.
fn kinds_taking(key: &str) -> String {
    const ALL: [SinkKind; 10] = [
        SinkKind::Log,
        SinkKind::Webhook,
        SinkKind::Slack,
        SinkKind::File,
        SinkKind::Callback,
        SinkKind::Telegram,
        SinkKind::Ntfy,
        SinkKind::Email,
        SinkKind::Discord,
        SinkKind::Apprise,
    ];
    let kinds: Vec<&str> = ALL
        .iter()
        .filter(|k| takes(**k).contains(&key))
        .map(|k| k.as_str())
        .collect();
    match kinds.as_slice() {
        [one] => format!("only a {one} sink does"),
        many => format!("only {} sinks do", many.join(", ")),
    }
}

/// One `[[notify.sinks]]` entry, at `at`: the keys its kind needs and takes.
pub(super) fn sink(src: &Source<'_, '_>, at: KeyPath, sink: &Sink) -> Checked {
    let kind = sink.kind.as_str();
    if let Some(name) = &sink.name {
        src.non_empty(at.key("name"), name)?;
    }
    let set: [(&str, bool); 14] = [
        ("url", sink.url.is_some()),
        ("url_env", sink.url_env.is_some()),
        ("path", sink.path.is_some()),
        ("token_env", sink.token_env.is_some()),
        ("chat_id", sink.chat_id.is_some()),
        ("allowed_chats", sink.allowed_chats.is_some()),
        ("api_url", sink.api_url.is_some()),
        ("smtp_url", sink.smtp_url.is_some()),
        ("username_env", sink.username_env.is_some()),
        ("password_env", sink.password_env.is_some()),
        ("from", sink.from.is_some()),
        ("to", sink.to.is_some()),
        ("urls_env", sink.urls_env.is_some()),
        ("command", sink.command.is_some()),
    ];
    for (key, is_set) in set {
        if is_set && !takes(sink.kind).contains(&key) {
            return Err(src.invalid(
                at.key(key),
                format!("a {kind} sink takes no `{key}` ({})", kinds_taking(key)),
            ));
        }
    }
    if sink.kind.needs_url() {
        match (&sink.url, &sink.url_env) {
            (None, None) => {
                return Err(src.invalid(
                    at,
                    format!("a {kind} sink needs `url` (or `url_env`, the variable holding it)"),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(src.invalid(at, "set `url` or `url_env`, not both"));
            }
            (Some(url), None) => src.http_url(at.key("url"), url)?,
            (None, Some(var)) => src.env_name(at.key("url_env"), var)?,
        }
    }
    for (key, var) in [
        ("token_env", &sink.token_env),
        ("username_env", &sink.username_env),
        ("password_env", &sink.password_env),
        ("urls_env", &sink.urls_env),
    ] {
        if let Some(var) = var {
            src.env_name(at.key(key), var)?;
        }
    }
    match sink.kind {
        SinkKind::File if sink.path.is_none() => Err(src.invalid(at, "a file sink needs `path`")),
        SinkKind::Telegram => telegram(src, &at, sink),
        SinkKind::Email => email(src, &at, sink),
        SinkKind::Apprise => apprise(src, &at, sink),
        _ => Ok(()),
    }
}

fn telegram(src: &Source<'_, '_>, at: &KeyPath, sink: &Sink) -> Checked {
    if sink.token_env.is_none() {
        return Err(src.invalid(
            at.clone(),
            "a telegram sink needs `token_env` (the variable holding the bot's token)",
        ));
    }
    match &sink.chat_id {
        None => return Err(src.invalid(at.clone(), "a telegram sink needs `chat_id`")),
        Some(id) => chat_id(src, at.key("chat_id"), id)?,
    }
    for (i, id) in sink.allowed_chats.iter().flatten().enumerate() {
        chat_id(src, at.key("allowed_chats").index(i), id)?;
    }
    if let Some(url) = &sink.api_url {
        src.http_url(at.key("api_url"), url)?;
    }
    Ok(())
}

/// A Telegram chat id: a number (negative for groups), or `@channelusername`.
fn chat_id(src: &Source<'_, '_>, at: KeyPath, id: &str) -> Checked {
    let numeric = id.strip_prefix('-').unwrap_or(id);
    let ok = (!numeric.is_empty() && numeric.chars().all(|c| c.is_ascii_digit()))
        || (id.len() > 1 && id.starts_with('@'));
    if ok {
        Ok(())
    } else {
        Err(src.invalid(
            at,
            format!("`{id}` is not a Telegram chat id (a number such as 123456789 or -1001234567890, or @channel)"),
        ))
    }
}

fn email(src: &Source<'_, '_>, at: &KeyPath, sink: &Sink) -> Checked {
    match &sink.smtp_url {
        None => {
            return Err(src.invalid(
                at.clone(),
                "an email sink needs `smtp_url` (smtp://host:587, smtps://host:465 or smtp+plain://host:25)",
            ));
        }
        Some(url) => {
            let known = ["smtp://", "smtps://", "smtp+plain://"];
            if !known.iter().any(|p| url.starts_with(p)) {
                return Err(src.invalid(
                    at.key("smtp_url"),
                    "expected smtp:// (STARTTLS), smtps:// (TLS) or smtp+plain:// (neither)",
                ));
            }
        }
    }
    if sink.username_env.is_some() != sink.password_env.is_some() {
        let missing = if sink.username_env.is_none() {
            "username_env"
        } else {
            "password_env"
        };
        return Err(src.invalid(
            at.clone(),
            format!(
                "set both `username_env` and `password_env`, or neither (`{missing}` is missing)"
            ),
        ));
    }
    match &sink.from {
        None => return Err(src.invalid(at.clone(), "an email sink needs `from`")),
        Some(from) => address(src, at.key("from"), from)?,
    }
    match &sink.to {
        None => Err(src.invalid(at.clone(), "an email sink needs `to`")),
        Some(to) if to.is_empty() => Err(src.invalid(at.key("to"), "must name a recipient")),
        Some(to) => {
            for (i, a) in to.iter().enumerate() {
                address(src, at.key("to").index(i), a)?;
            }
            Ok(())
        }
    }
}

/// An email address, or `Name <address>`: enough shape to catch a key given the wrong value.
fn address(src: &Source<'_, '_>, at: KeyPath, value: &str) -> Checked {
    let bare = match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value,
    };
    match bare.split_once('@') {
        Some((user, host)) if !user.is_empty() && !host.is_empty() && !bare.contains(' ') => Ok(()),
        _ => Err(src.invalid(at, format!("`{value}` is not an email address"))),
    }
}

fn apprise(src: &Source<'_, '_>, at: &KeyPath, sink: &Sink) -> Checked {
    if sink.urls_env.is_none() {
        return Err(src.invalid(
            at.clone(),
            "an apprise sink needs `urls_env` (the variable holding its Apprise URLs)",
        ));
    }
    if let Some(command) = &sink.command {
        src.non_empty(at.key("command"), command)?;
    }
    // Whether the program is there is a fact of the machine, not of the file: lookoutd's start and
    // `lookout config check` look it up (lookout-daemon's `check_values`).
    Ok(())
}

/// `[selfcheck]`
pub(super) fn selfcheck(src: &Source<'_, '_>, at: KeyPath, s: &SelfCheckConfig) -> Checked {
    src.positive(at.key("ping_interval"), s.ping_interval)?;
    src.positive(at.key("loop_stall"), s.loop_stall)?;
    match (&s.ping_url, &s.ping_url_env) {
        (Some(_), Some(_)) => Err(src.invalid(at, "set `ping_url` or `ping_url_env`, not both")),
        (Some(url), None) => src.http_url(at.key("ping_url"), url),
        (None, Some(var)) => src.env_name(at.key("ping_url_env"), var),
        (None, None) => Ok(()),
    }
}
