//! The sinks that reach people on their own roads (telegram, ntfy, email, discord, apprise),
//! `[selfcheck]` and `[incidents]`: what each takes and needs, and the errors that name the key.

use std::time::Duration;

use lookout_config::SinkKind;

use crate::{ORIGIN, error};

#[test]
fn the_products_sketch_of_every_new_sink_parses() {
    let text = r#"
[[notify.sinks]]
name = "phone"
kind = "telegram"
token_env = "LOOKOUT_TELEGRAM_TOKEN"
chat_id = "123456789"
allowed_chats = ["123456789", "-1001234567890"]
api_url = "https://api.telegram.org"

[[notify.sinks]]
kind = "ntfy"
url = "https://ntfy.sh/my-agent-host"
token_env = "NTFY_TOKEN"

[[notify.sinks]]
kind = "email"
smtp_url = "smtp://mail.example.org:587"
username_env = "LOOKOUT_SMTP_USER"
password_env = "LOOKOUT_SMTP_PASSWORD"
from = "Lookout <lookout@example.org>"
to = ["ops@example.org"]

[[notify.sinks]]
kind = "discord"
url_env = "DISCORD_WEBHOOK"

[[notify.sinks]]
kind = "apprise"
urls_env = "LOOKOUT_APPRISE_URLS"
command = "/usr/local/bin/apprise"

[selfcheck]
ping_url = "https://hc-ping.com/0b1c"
ping_interval = "30s"

[incidents]
keep = "30d"
"#;
    let c = lookout_config::parse(text, ORIGIN).unwrap();
    let kinds: Vec<SinkKind> = c.notify.sinks.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SinkKind::Telegram,
            SinkKind::Ntfy,
            SinkKind::Email,
            SinkKind::Discord,
            SinkKind::Apprise
        ]
    );
    assert!(c.notify.sinks[0].reads_commands());
    assert!(!c.notify.sinks[1].reads_commands());
    assert_eq!(c.notify.sinks[2].name(), "email");
    assert_eq!(c.selfcheck.ping_interval, Duration::from_secs(30));
    assert_eq!(
        c.selfcheck.loop_stall,
        Duration::from_secs(300),
        "its default"
    );
    assert_eq!(c.incidents.keep, Duration::from_secs(30 * 86400));
    let defaults = lookout_config::parse("", ORIGIN).unwrap();
    assert_eq!(defaults.incidents.keep, Duration::from_secs(90 * 86400));
    assert_eq!(defaults.selfcheck.ping_url, None);
}

#[test]
fn each_kind_names_what_it_needs() {
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"telegram\"\nchat_id = \"1\"\n"),
        "config.toml: `notify.sinks[0]` at line 1, column 1: a telegram sink needs `token_env` \
         (the variable holding the bot's token)"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"telegram\"\ntoken_env = \"T\"\n"),
        "config.toml: `notify.sinks[0]` at line 1, column 1: a telegram sink needs `chat_id`"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"ntfy\"\n"),
        "config.toml: `notify.sinks[0]` at line 1, column 1: a ntfy sink needs `url` (or \
         `url_env`, the variable holding it)"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"email\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n"),
        "config.toml: `notify.sinks[0]` at line 1, column 1: an email sink needs `smtp_url` \
         (smtp://host:587, smtps://host:465 or smtp+plain://host:25)"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"apprise\"\n"),
        "config.toml: `notify.sinks[0]` at line 1, column 1: an apprise sink needs `urls_env` \
         (the variable holding its Apprise URLs)"
    );
}

#[test]
fn a_key_another_kind_takes_is_named_with_the_kinds_that_take_it() {
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"webhook\"\nurl = \"http://x/\"\nchat_id = \"1\"\n"),
        "config.toml: `notify.sinks[0].chat_id` at line 4, column 11: a webhook sink takes no \
         `chat_id` (only a telegram sink does)"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"discord\"\nurl = \"http://x/\"\ntoken_env = \"T\"\n"),
        "config.toml: `notify.sinks[0].token_env` at line 4, column 13: a discord sink takes no \
         `token_env` (only telegram, ntfy sinks do)"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"log\"\npath = \"a.log\"\n"),
        "config.toml: `notify.sinks[0].path` at line 3, column 8: a log sink takes no `path` \
         (only a file sink does)"
    );
}

#[test]
fn bad_values_are_named_without_echoing_a_secret() {
    let e = error(
        "[[notify.sinks]]\nkind = \"telegram\"\ntoken_env = \"123456:AAE-secret\"\nchat_id = \"1\"\n",
    );
    assert!(
        e.contains("`notify.sinks[0].token_env`") && e.contains("not the secret itself"),
        "{e}"
    );
    assert!(!e.contains("AAE-secret"), "{e}");
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"telegram\"\ntoken_env = \"T\"\nchat_id = \"me\"\n"),
        "config.toml: `notify.sinks[0].chat_id` at line 4, column 11: `me` is not a Telegram chat \
         id (a number such as 123456789 or -1001234567890, or @channel)"
    );
    assert_eq!(
        error(
            "[[notify.sinks]]\nkind = \"email\"\nsmtp_url = \"mail.example.org\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n"
        ),
        "config.toml: `notify.sinks[0].smtp_url` at line 3, column 12: expected smtp:// (STARTTLS), \
         smtps:// (TLS) or smtp+plain:// (neither)"
    );
    assert_eq!(
        error(
            "[[notify.sinks]]\nkind = \"email\"\nsmtp_url = \"smtp://m\"\nfrom = \"a@b.c\"\nto = [\"ops\"]\n"
        ),
        "config.toml: `notify.sinks[0].to[0]` at line 5, column 7: `ops` is not an email address"
    );
    assert_eq!(
        error(
            "[[notify.sinks]]\nkind = \"email\"\nsmtp_url = \"smtp://m\"\nusername_env = \"U\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n"
        ),
        "config.toml: `notify.sinks[0]` at line 1, column 1: set both `username_env` and \
         `password_env`, or neither (`password_env` is missing)"
    );
}

#[test]
fn selfcheck_and_incidents_are_checked() {
    assert_eq!(
        error("[selfcheck]\nping_url = \"hc-ping.com/x\"\n"),
        "config.toml: `selfcheck.ping_url` at line 2, column 12: expected an http:// or https:// URL"
    );
    assert_eq!(
        error("[selfcheck]\nping_url = \"http://x/\"\nping_url_env = \"HC\"\n"),
        "config.toml: `selfcheck` at line 1, column 1: set `ping_url` or `ping_url_env`, not both"
    );
    assert_eq!(
        error("[selfcheck]\nping_interval = \"0s\"\n"),
        "config.toml: `selfcheck.ping_interval` at line 2, column 17: must be longer than zero"
    );
    assert_eq!(
        error("[incidents]\nkeeep = \"30d\"\n"),
        "config.toml: unknown key `incidents.keeep` at line 2, column 1 — did you mean `keep`?"
    );
}
