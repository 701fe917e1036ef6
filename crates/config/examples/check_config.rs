//! lookoutd's configuration file, checked the way `lookoutd` and `lookout config check` check it:
//! an inline TOML is parsed (every key it leaves out takes its documented default) and a few
//! values are printed; then a file with a typo, one with a wrong value and one breaking a rule of
//! the embedding program (a `ValueCheck` run through `parse_with`, here: listen on loopback only)
//! each fail with their one-line error — key path, line, column and, for a typo, the nearest valid
//! key. Finally the same text is loaded
//! from a file in a temporary directory.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p lookout-config --example check_config
//! ```

use std::time::Duration;

use lookout_config::{Config, KeyPath, SinkKind, parse, parse_with};

const GOOD: &str = r#"
[server]
bind = "127.0.0.1:9000"

[thresholds]
channel_down = "5m"

[[notify.sinks]]
kind = "file"
path = "alerts.jsonl"
min_severity = "warning"

[[jobs]]
name = "backup"
every = "1h"
command = "restic backup /srv"
"#;

/// A rule of the program embedding the config (as lookoutd checks the store URL with
/// lookout-store's parser): the API listens on loopback only.
fn loopback_only(config: &Config) -> Result<(), (KeyPath, String)> {
    let bind = &config.server.bind;
    if bind.starts_with("127.") || bind.starts_with("[::1]") || bind.starts_with("localhost:") {
        Ok(())
    } else {
        Err((
            KeyPath::root().key("server").key("bind"),
            format!("`{bind}` is not a loopback address; this host serves the API locally only"),
        ))
    }
}

fn main() {
    let config = parse(GOOD, "lookout.toml").unwrap_or_else(|e| panic!("{e}"));
    let sink = &config.notify.sinks[0];
    let job = &config.jobs[0];
    let shown = [
        ("server.bind", config.server.bind.clone()),
        (
            "thresholds.channel_down",
            format!("{:?}", config.thresholds.channel_down),
        ),
        (
            "thresholds.stale_processing",
            format!("{:?} (default)", config.thresholds.stale_processing),
        ),
        ("store.url", format!("{} (default)", config.store.url)),
        (
            "notify.sinks[0]",
            format!("`{}`, min severity {}", sink.name(), sink.min_severity),
        ),
        ("jobs[0]", format!("`{}` every {:?}", job.name, job.every)),
    ];
    for (key, value) in shown {
        println!("{key:<28} = {value}");
    }
    assert_eq!(config.server.bind, "127.0.0.1:9000");
    assert_eq!(config.thresholds.channel_down, Duration::from_secs(300));
    assert_eq!(config.thresholds.stale_processing, Duration::from_secs(600));
    assert_eq!(sink.kind, SinkKind::File);
    assert_eq!(config.jobs[0].every, Some(Duration::from_secs(3600)));

    // A typo: the error names the key path, where it is, and what was probably meant.
    let typo = GOOD.replace("channel_down", "chanel_down");
    let err = parse(&typo, "lookout.toml").unwrap_err().to_string();
    println!("typo:      {err}");
    assert!(err.starts_with("lookout.toml: unknown key `thresholds.chanel_down` at line 6"));
    assert!(err.contains("did you mean `channel_down`?"), "{err}");
    assert!(!err.contains('\n'), "errors are one line");

    // A value that is not a duration.
    let bad_value = GOOD.replace("\"5m\"", "\"5 minutes\"");
    let err = parse(&bad_value, "lookout.toml").unwrap_err().to_string();
    println!("bad value: {err}");
    assert!(err.contains("thresholds.channel_down"), "{err}");
    assert!(err.contains("line 6"), "{err}");

    // A rule of the embedding program, checked through `parse_with` after the crate's own rules.
    parse_with(GOOD, "lookout.toml", &loopback_only).unwrap();
    let public = GOOD.replace("127.0.0.1:9000", "0.0.0.0:9000");
    let err = parse_with(&public, "lookout.toml", &loopback_only)
        .unwrap_err()
        .to_string();
    println!("rule:      {err}");
    assert!(err.contains("server.bind"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");

    // The same text from a file: `load` reads it and names the file in its errors.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.toml");
    std::fs::write(&path, GOOD).unwrap();
    let loaded = lookout_config::load_with(&path, &loopback_only).unwrap();
    assert_eq!(loaded, config);
    std::fs::write(&path, &typo).unwrap();
    let err = lookout_config::load(&path).unwrap_err().to_string();
    println!("from file: {err}");
    assert!(err.starts_with(&path.display().to_string()), "{err}");
}
