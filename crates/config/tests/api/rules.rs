//! The rules between keys, checked after deserializing.

use crate::{ORIGIN, error};

// --- rules between keys ----------------------------------------------------------------------

#[test]
fn a_sink_missing_its_url_or_path_is_an_error() {
    let text = "[[notify.sinks]]\nkind = \"log\"\n\n[[notify.sinks]]\nname = \"ops\"\nkind = \
                \"webhook\"\n";
    assert_eq!(
        error(text),
        "config.toml: `notify.sinks[1]` at line 4, column 1: a webhook sink needs `url` (or \
         `url_env`, the variable holding it)"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"file\"\n"),
        "config.toml: `notify.sinks[0]` at line 1, column 1: a file sink needs `path`"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"slack\"\nurl = \"http://x/\"\nurl_env = \"SLACK\"\n"),
        "config.toml: `notify.sinks[0]` at line 1, column 1: set `url` or `url_env`, not both"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"log\"\npath = \"a.log\"\n"),
        "config.toml: `notify.sinks[0].path` at line 3, column 8: a log sink takes no `path` \
         (only a file sink does)"
    );
    let e = error(
        "[[notify.sinks]]\nkind = \"slack\"\nurl_env = \"https://hooks.example/T0/B0/xyz\"\n",
    );
    assert_eq!(
        e,
        "config.toml: `notify.sinks[0].url_env` at line 3, column 11: must be the name of an \
         environment variable (letters, digits and `_`), not the secret itself"
    );
    assert!(!e.contains("xyz"));
}

#[test]
fn a_fallback_must_name_another_sink() {
    let text = "[[notify.sinks]]\nname = \"ops\"\nkind = \"slack\"\nurl_env = \
                \"SLACK_WEBHOOK\"\nfallback = \"pager\"\n";
    assert_eq!(
        error(text),
        "config.toml: `notify.sinks[0].fallback` at line 5, column 12: no sink is named \
         `pager` (sinks: `ops`)"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"log\"\nfallback = \"log\"\n"),
        "config.toml: `notify.sinks[0].fallback` at line 3, column 12: a sink cannot fall back \
         to itself"
    );
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"log\"\n[[notify.sinks]]\nkind = \"log\"\n"),
        "config.toml: `notify.sinks[1]` at line 3, column 1: another sink is already named \
         `log` (the one at line 1); a sink's name defaults to its kind: give each a `name`"
    );
    assert_eq!(
        error(
            "[[notify.sinks]]\nname = \"a\"\nkind = \"log\"\n[[notify.sinks]]\nname = \"a\"\nkind = \"file\"\npath = \"x\"\n"
        ),
        "config.toml: `notify.sinks[1]` at line 4, column 1: another sink is already named \
         `a` (the one at line 1)"
    );
}

#[test]
fn a_job_has_exactly_one_schedule_and_one_action() {
    let text = "[[jobs]]\nname = \"backup\"\ncron = \"0 3 * * *\"\nevery = \"15m\"\ncommand = \
                \"backup.sh\"\n";
    assert_eq!(
        error(text),
        "config.toml: `jobs[0]` at line 1, column 1: set exactly one of `cron`, `every` or \
         `at`; found `cron` and `every`"
    );
    assert_eq!(
        error("[[jobs]]\nname = \"backup\"\ncommand = \"backup.sh\"\n"),
        "config.toml: `jobs[0]` at line 1, column 1: set exactly one of `cron`, `every` or \
         `at`; found none"
    );
    assert_eq!(
        error("[[jobs]]\nname = \"b\"\nevery = \"1h\"\ncommand = \"x\"\nargs = [\"y\"]\n"),
        "config.toml: `jobs[0].args` at line 5, column 8: `args` is the container's command of \
         an `image` job; a `command` job takes its arguments in `command`"
    );
    assert_eq!(
        error("[[jobs]]\nname = \"backup\"\nevery = \"15m\"\n"),
        "config.toml: `jobs[0]` at line 1, column 1: set exactly one of `command` or `image`; \
         found none"
    );
    assert_eq!(
        error(
            "[[jobs]]\nname = \"a\"\nevery = \"1m\"\nimage = \"i\"\n\n[[jobs]]\nname = \"a\"\nevery = \"1m\"\nimage = \"i\"\n"
        ),
        "config.toml: `jobs[1]` at line 6, column 1: another job is already named `a` (the \
         one at line 1)"
    );
}

#[test]
fn watch_targets_need_what_their_kind_observes() {
    assert_eq!(
        error("[[watch]]\nname = \"bridge\"\nkind = \"process\"\n"),
        "config.toml: `watch[0]` at line 1, column 1: a process target needs at least one of \
         `pid_file`, `heartbeat_file` or `version_file`"
    );
    assert_eq!(
        error(
            "[[watch]]\nname = \"b\"\nkind = \"process\"\nversion_file = \"v\"\nexpected_version = \"HEAD\"\n"
        ),
        "config.toml: `watch[0].expected_version` at line 5, column 20: expected `git:REPO`, \
         `file:PATH` or `cmd:COMMAND`"
    );
    assert_eq!(
        error(
            "[[watch]]\nname = \"b\"\nkind = \"process\"\npid_file = \"p\"\nexpected_version = \"git:.\"\n"
        ),
        "config.toml: `watch[0].expected_version` at line 5, column 20: needs `version_file`, \
         where the process writes the version it runs"
    );
    assert_eq!(
        error("[[watch]]\nname = \"api\"\nkind = \"http\"\nurl = \"127.0.0.1:80\"\n"),
        "config.toml: `watch[0].url` at line 4, column 7: expected an http:// or https:// URL"
    );
}

#[test]
fn server_values_are_checked() {
    assert_eq!(
        error("[server]\nbind = \"localhost\"\n"),
        "config.toml: `server.bind` at line 2, column 8: expected ADDRESS:PORT, e.g. \
         127.0.0.1:8484"
    );
}

// The store URL's syntax is lookout-store's: lookout-daemon passes its check to `parse_with` (its
// tests assert the texts); here, that such a check's error is located like this crate's own.
#[test]
fn a_value_check_of_another_crate_is_reported_at_its_key() {
    let check = |c: &lookout_config::Config| {
        if c.store.url.starts_with("mysql:") {
            Err((
                lookout_config::KeyPath::root().key("store").key("url"),
                "unknown scheme `mysql`".to_owned(),
            ))
        } else {
            Ok(())
        }
    };
    let e = lookout_config::parse_with("[store]\nurl = \"mysql://x\"\n", ORIGIN, &check)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config.toml: `store.url` at line 2, column 7: unknown scheme `mysql`"
    );
    // The crate's own rules come first: a bad bind is the error, not the URL.
    let e = lookout_config::parse_with(
        "[server]\nbind = \"localhost\"\n[store]\nurl = \"mysql://x\"\n",
        ORIGIN,
        &check,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`server.bind`"), "{e}");
    assert!(
        lookout_config::parse_with("[store]\nurl = \"sqlite://a.db\"\n", ORIGIN, &check).is_ok()
    );
}

#[test]
fn docker_watch_entries_are_names_patterns_or_labels() {
    assert_eq!(
        error("[docker]\nwatch = [\"agent-*\", \"label:\"]\n"),
        "config.toml: `docker.watch[1]` at line 2, column 21: `label:` needs a label key, e.g. \
         label:com.example.agent or label:role=agent"
    );
    let e = error("[docker]\nwatch = [\"agent 7\"]\n");
    assert!(
        e.starts_with(
            "config.toml: `docker.watch[0]` at line 2, column 10: a container name has only"
        ),
        "{e}"
    );
    assert_eq!(
        error("[docker]\nwatch = [\"\"]\n"),
        "config.toml: `docker.watch[0]` at line 2, column 10: must not be empty"
    );
    let e = error("[docker]\nrestart_loop_count = 1\n");
    assert!(e.contains("`docker.restart_loop_count`"), "{e}");
    assert!(error("[docker]\nrestart_loop_window = \"0s\"\n").contains("must be longer than zero"));
    // Every spelling the product names is accepted.
    let ok = "[docker]\nwatch = [\"pynchy-agent-*\", \"/bridge\", \"label:lookout\", \
              \"label:role=agent\", \"a_b.c-1\"]\n";
    lookout_config::parse(ok, ORIGIN).unwrap();
}
