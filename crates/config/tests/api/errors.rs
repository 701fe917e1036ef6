//! Mistakes a key or a value can be, and the error line each gives: unknown and renamed keys,
//! wrong types, bad durations, ranges, enumerations, missing keys, and text that is not TOML.

use crate::error;

// --- unknown and renamed keys --------------------------------------------------------------

#[test]
fn unknown_key_names_path_line_column_and_nearest_key() {
    assert_eq!(
        error("[server]\nbnid = \"0.0.0.0:80\"\n"),
        "config.toml: unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?"
    );
    // Top level (a table header).
    assert_eq!(
        error("[thresholds]\nstale_processing = \"5m\"\n\n[notfy]\nfallback_after = \"1m\"\n"),
        "config.toml: unknown key `notfy` at line 4, column 2 — did you mean `notify`?"
    );
    // Dashes for underscores, any case.
    assert_eq!(
        error("[server]\nMax-Body-Bytes = 4096\n"),
        "config.toml: unknown key `server.Max-Body-Bytes` at line 2, column 1 — did you mean \
         `max_body_bytes`?"
    );
}

#[test]
fn unknown_key_inside_an_array_of_tables_has_its_index() {
    let text = "[[notify.sinks]]\nkind = \"log\"\n\n[[notify.sinks]]\nkind = \"webhook\"\n\
                urll = \"http://127.0.0.1:9000/hook\"\n";
    assert_eq!(
        error(text),
        "config.toml: unknown key `notify.sinks[1].urll` at line 6, column 1 — did you mean \
         `url`?"
    );
    assert_eq!(
        error("[[jobs]]\nname = \"a\"\ncorn = \"0 3 * * *\"\ncommand = \"x\"\n"),
        "config.toml: unknown key `jobs[0].corn` at line 3, column 1 — did you mean `cron`?"
    );
    // In an inline table, the key's own column.
    assert_eq!(
        error("notify = { sinks = [ { kind = \"log\", nmae = \"x\" } ] }\n"),
        "config.toml: unknown key `notify.sinks[0].nmae` at line 1, column 38 — did you mean \
         `name`?"
    );
}

#[test]
fn a_secret_key_points_to_its_env_sibling_without_echoing_the_secret() {
    let e = error(
        "[gateway]\nhealth_url = \"http://127.0.0.1:4000/health\"\nhealth_key = \"sk-123\"\n",
    );
    assert_eq!(
        e,
        "config.toml: unknown key `gateway.health_key` at line 3, column 1 — did you mean \
         `health_key_env`? Secrets come from the environment: set it to the name of the \
         variable that holds the secret"
    );
    assert!(!e.contains("sk-123"));
    // A secret-looking key with a `*_env` sibling about the same secret.
    assert!(error("[gateway]\napi_key = \"sk-123\"\n").contains(
        "unknown key `gateway.api_key` at line 2, column 1 — did you mean `health_key_env`?"
    ));
}

#[test]
fn a_key_in_the_wrong_table_names_its_home_and_otherwise_the_valid_keys() {
    assert_eq!(
        error("[server]\nstale_processing = \"5m\"\n"),
        "config.toml: unknown key `server.stale_processing` at line 2, column 1 — did you mean \
         `thresholds.stale_processing`?"
    );
    assert_eq!(
        error("[store]\nfoo = 1\n"),
        "config.toml: unknown key `store.foo` at line 2, column 1 (valid keys here: `url`)"
    );
    // A far-off short key suggests nothing rather than something wrong.
    assert!(
        error("[[jobs]]\nname = \"a\"\nurl = \"x\"\n")
            .contains("unknown key `jobs[0].url` at line 3, column 1 (valid keys here: `name`,")
    );
}

#[test]
fn other_names_and_parts_of_a_key_lead_to_it() {
    assert_eq!(
        error("[[notify.sinks]]\ntype = \"log\"\n"),
        "config.toml: unknown key `notify.sinks[0].type` at line 2, column 1 — did you mean \
         `kind`?"
    );
    assert_eq!(
        error("[server]\ntimeout = \"5s\"\n"),
        "config.toml: unknown key `server.timeout` at line 2, column 1 — did you mean \
         `request_timeout`?"
    );
    assert_eq!(
        error("[server]\npassword = \"hunter2\"\n"),
        "config.toml: unknown key `server.password` at line 2, column 1 — did you mean \
         `token_env`? Secrets come from the environment: set it to the name of the variable \
         that holds the secret"
    );
    assert_eq!(
        error("[[watch]]\nname = \"a\"\nkind = 5\n"),
        "config.toml: wrong type for `watch[0].kind` at line 3, column 8: expected a string, \
         found an integer"
    );
}

#[test]
fn renamed_keys_say_what_they_became() {
    assert_eq!(
        error("[thresholds]\nstale_threshold = \"10m\"\n"),
        "config.toml: key `thresholds.stale_threshold` at line 2, column 1 was renamed to \
         `thresholds.stale_processing`"
    );
    let e = error("[server]\ntoken = \"abc123\"\n");
    assert_eq!(
        e,
        "config.toml: key `server.token` at line 2, column 1 was renamed to `server.token_env` \
         — it names the environment variable that holds the token; secrets never go in the file"
    );
    assert!(!e.contains("abc123"));
}

// --- values ----------------------------------------------------------------------------------

#[test]
fn wrong_type_says_expected_and_found_in_toml_words() {
    let text = "[server]\nbind = \"127.0.0.1:8484\"\ntoken_env = \"LOOKOUT_TOKEN\"\n\
                max_events_per_request = 10\nmax_body_bytes = \"1MB\"\n";
    assert_eq!(
        error(text),
        "config.toml: wrong type for `server.max_body_bytes` at line 5, column 18: expected an \
         integer, found a string"
    );
    assert_eq!(
        error("[thresholds]\nstale_processing = 600\n"),
        "config.toml: wrong type for `thresholds.stale_processing` at line 2, column 20: \
         expected a duration string such as \"90s\", found an integer"
    );
    assert_eq!(
        error("server = 3\n"),
        "config.toml: wrong type for `server` at line 1, column 10: expected a table, found \
         an integer"
    );
    assert_eq!(
        error("[server]\nstatus_requires_token = \"yes\"\n"),
        "config.toml: wrong type for `server.status_requires_token` at line 2, column 25: \
         expected a boolean (true or false), found a string"
    );
    assert_eq!(
        error("[watch]\nname = \"x\"\n"),
        "config.toml: wrong type for `watch` at line 1, column 1: expected an array, found a \
         table (write `[[watch]]` for each entry)"
    );
    assert_eq!(
        error("[gateway]\ncontainers = \"litellm\"\n"),
        "config.toml: wrong type for `gateway.containers` at line 2, column 14: expected an \
         array, found a string"
    );
}

#[test]
fn a_bad_duration_is_an_error_at_its_key() {
    let text = "# lookout\n\n[server]\nbind = \"127.0.0.1:8484\"\n\n[store]\nurl = \
                \"sqlite://lookout.db\"\n\n[thresholds]\nstale_processing = \"10y\"\n";
    // Nine lines before it.
    let text = text.replacen("# lookout\n\n", "# lookout\n", 1);
    assert_eq!(
        error(&text),
        "config.toml: `thresholds.stale_processing` at line 9, column 20: unknown unit `y` \
         (ms, s, m, h or d)"
    );
    assert_eq!(
        error(
            "[[watch]]\nname = \"w\"\nkind = \"container\"\ncontainer = \"c\"\nprobe_interval = \"5\"\n"
        ),
        "config.toml: `watch[0].probe_interval` at line 5, column 18: missing unit after 5 \
         (ms, s, m, h or d)"
    );
    assert_eq!(
        error(
            "[[watch]]\nname = \"w\"\nkind = \"container\"\ncontainer = \"c\"\nprobe_interval = \"0s\"\n"
        ),
        "config.toml: `watch[0].probe_interval` at line 5, column 18: must be longer than zero"
    );
}

#[test]
fn out_of_range_names_the_value_line_and_range() {
    assert_eq!(
        error("[server]\nbind = \"127.0.0.1:8484\"\n\nmax_events_per_request = 0\n"),
        "config.toml: `server.max_events_per_request` = 0 at line 4 is out of range (1..=100000)"
    );
    assert_eq!(
        error("[server]\nmax_body_bytes = -1\n"),
        "config.toml: `server.max_body_bytes` = -1 at line 2 is out of range (1024..=67108864)"
    );
    assert_eq!(
        error("[[boot.services]]\nname = \"host\"\nlog_lines = 51\n"),
        "config.toml: `boot.services[0].log_lines` = 51 at line 3 is out of range (1..=50)"
    );
    assert_eq!(
        error(
            "[[watch]]\nname = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\nexpected_status = 70000\n"
        ),
        "config.toml: `watch[0].expected_status` = 70000 at line 5 is out of range (100..=599)"
    );
    assert_eq!(
        error("[thresholds]\nstall_after = 1001\n"),
        "config.toml: `thresholds.stall_after` = 1001 at line 2 is out of range (1..=1000)"
    );
}

#[test]
fn a_wrong_enum_value_lists_the_allowed_ones() {
    assert_eq!(
        error("[[notify.sinks]]\nkind = \"webhok\"\nurl = \"http://127.0.0.1/\"\n"),
        "config.toml: `notify.sinks[0].kind` at line 2, column 8: unknown value `webhok`, \
         expected one of `log`, `webhook`, `slack`, `file`, `callback`, `telegram`, `ntfy`, \
         `email`, `discord`, `apprise` — did you mean `webhook`?"
    );
    assert_eq!(
        error("[[jobs]]\nname = \"a\"\nevery = \"1m\"\ncommand = \"x\"\nmissed = \"never\"\n"),
        "config.toml: `jobs[0].missed` at line 5, column 10: unknown value `never`, expected \
         one of `skip`, `run_once`, `catch_up`"
    );
}

#[test]
fn a_missing_required_key_points_at_its_table() {
    assert_eq!(
        error("[[watch]]\nkind = \"process\"\npid_file = \"run/x.pid\"\n"),
        "config.toml: `watch[0]` at line 1, column 1: missing required key `name`"
    );
    assert_eq!(
        error("[[repos]]\npath = \".\"\n\n[[repos]]\nname = \"x\"\n"),
        "config.toml: `repos[1]` at line 4, column 1: missing required key `path`"
    );
}

#[test]
fn at_must_be_an_instant_with_an_offset() {
    let e = error("[[jobs]]\nname = \"a\"\nat = 2026-12-01T09:00:00\ncommand = \"x\"\n");
    assert!(
        e.starts_with("config.toml: `jobs[0].at` at line 3, column 6: not an RFC 3339 instant ("),
        "{e}"
    );
}

// --- syntax ----------------------------------------------------------------------------------

#[test]
fn bad_toml_names_its_line_and_column() {
    assert_eq!(
        error("[server]\nbind = \n"),
        "config.toml: invalid TOML at line 2, column 8: string values must be quoted, expected \
         literal string"
    );
    assert_eq!(
        error("[server]\nbind = 'a'\nbind = 'b'\n"),
        "config.toml: invalid TOML at line 3, column 1: duplicate key `bind`"
    );
    let e = error("[server\nbind = 'a'\n");
    assert!(
        e.starts_with("config.toml: invalid TOML at line 1, column "),
        "{e}"
    );
    for message in [e, error("x = \"unterminated\n")] {
        assert!(!message.contains('\n'), "{message}");
    }
}

// A person fixes a file once, not once per run: every unknown key is named, each on its line with
// its own line, column and advice, in the file's order.
#[test]
fn every_unknown_key_is_named_at_once() {
    let text = "[server]\nbnid = \"127.0.0.1:9000\"\n\n[thresholds]\nchanel_down = \"5m\"\n\n\
                [[jobs]]\nname = \"backup\"\nevery = \"1h\"\ncomand = \"backup.sh\"\n";
    let e = lookout_config::parse(text, "config.toml").unwrap_err();
    assert_eq!(e.all().len(), 3, "{e}");
    assert_eq!(
        e.to_string(),
        "config.toml: unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?\n\
         config.toml: unknown key `thresholds.chanel_down` at line 5, column 1 — did you mean \
         `channel_down`?\n\
         config.toml: unknown key `jobs[0].comand` at line 10, column 1 — did you mean `command`?"
    );
    // One unknown key is one line, as before.
    assert_eq!(
        error("[server]\nbnid = \"x\"\n"),
        "config.toml: unknown key `server.bnid` at line 2, column 1 — did you mean `bind`?"
    );
}

// The rules too: the first broken rule of every table.
#[test]
fn a_broken_rule_in_each_of_two_tables_names_both() {
    let e = error("[server]\nbind = \"localhost\"\n\n[ingest]\nmax_skew = \"0s\"\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(
        lines[0].starts_with("config.toml: `server.bind` at line 2"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("config.toml: `ingest.max_skew` at line 5"),
        "{e}"
    );
}
