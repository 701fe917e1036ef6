//! `lookout doctor` against a real lookoutd and its configuration.

use lookout_e2e::{Daemon, Receiver, run};

#[test]
fn doctor_names_each_problem_with_a_fix_and_exits_by_it() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    assert!(
        std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .status()
            .unwrap()
            .success()
    );
    let port = lookout_e2e::free_port();
    let config = |url: &str| {
        format!(
            "[[repos]]\npath = \"{}\"\n[[repos]]\npath = \"{}\"\nname = \"not-a-repo\"\n\n\
             [[notify.sinks]]\nname = \"chat\"\nkind = \"webhook\"\nurl = \"{url}\"\n\n\
             [[notify.sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            repo.display(),
            tmp.path().display(),
            tmp.path().join("alerts.jsonl").display()
        )
    };
    let file = tmp.path().join("lookout.toml");
    std::fs::write(&file, config(&format!("http://127.0.0.1:{port}/hook"))).unwrap();
    let d = Daemon::start_opts(None, &["--config", file.to_str().unwrap()], &[]);

    let out = run("lookout", &["--url", d.url.as_str(), "doctor"], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("✔ store — sqlite://"), "{text}");
    assert!(
        text.contains(&format!(
            "✖ sink chat (webhook) — 127.0.0.1:{port}: Connection refused"
        )),
        "{text}"
    );
    assert!(
        text.contains("    fix: start the receiver or fix the URL"),
        "{text}"
    );
    assert!(text.contains("✔ sink file (file) —"), "{text}");
    assert!(
        text.contains(&format!(
            "✔ repo {} — {} is a git repository",
            repo.display(),
            repo.display()
        )),
        "{text}"
    );
    assert!(text.contains("! repo not-a-repo —"), "{text}");

    // The receiver comes up: nothing fails any more.
    let _r = Receiver::start_on(port);
    let out = run(
        "lookout",
        &["--url", d.url.as_str(), "doctor", "--json"],
        tmp.path(),
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{body}");
    assert_eq!(body["failed"], 0);

    // No daemon: that is the failed check.
    let out = run(
        "lookout",
        &[
            "--url",
            &format!("http://127.0.0.1:{}", lookout_e2e::free_port()),
            "doctor",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("✖ daemon — cannot reach lookoutd"));
}

/// A gateway whose health endpoint does not answer: the check fails with the reason and a fix,
/// by the same rule as the `gateway_down` alert.
#[test]
fn doctor_checks_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let port = lookout_e2e::free_port();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        format!("[gateway]\nhealth_url = \"http://127.0.0.1:{port}/health\"\n"),
    )
    .unwrap();
    let d = Daemon::start_opts(None, &["--config", file.to_str().unwrap()], &[]);
    let out = run("lookout", &["--url", d.url.as_str(), "doctor"], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✖ gateway — gateway health endpoint"),
        "{text}"
    );
    assert!(
        text.contains("    fix: check the gateway's containers"),
        "{text}"
    );
}
