//! lookoutd stopped (SIGKILL) for more than 3 scheduled periods, started again: each missed-run
//! policy does what it says, and the run the stop killed is reported interrupted — once.

use std::time::Duration;

use lookout_e2e::{Daemon, Receiver};
use serde_json::Value;

fn texts(got: &[Value]) -> Vec<String> {
    got.iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn count(t: &[String], pred: impl Fn(&str) -> bool) -> usize {
    t.iter().filter(|x| pred(x)).count()
}

#[test]
fn missed_runs_follow_their_policy_and_the_killed_run_is_interrupted() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = tmp.path().join("lookout.toml");
    let mut cfg = format!(
        "[thresholds]\noverdue_grace = \"1s\"\n\n[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n",
        r.url
    );
    cfg.push_str(
        "\n[[jobs]]\nname = \"slow\"\nevery = \"1h\"\ncommand = \"sleep 20\"\n\
         \n[[jobs]]\nname = \"skipper\"\nevery = \"2s\"\ncommand = \"true\"\nmissed = \"skip\"\n\
         \n[[jobs]]\nname = \"once\"\nevery = \"2s\"\ncommand = \"true\"\nmissed = \"run_once\"\n\
         \n[[jobs]]\nname = \"catcher\"\nevery = \"2s\"\ncommand = \"true\"\nmissed = \"catch_up\"\n",
    );
    std::fs::write(&file, cfg).unwrap();
    let args = ["--config", file.to_str().unwrap()];
    let d = Daemon::start_opts(Some(&state), &args, &[]);
    // `slow` is due an hour from now: run it by hand, so a run is in flight when lookoutd dies.
    let out = lookout_e2e::run(
        "lookout",
        &["--url", d.url.as_str(), "tasks", "run", "slow"],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.wait_for(Duration::from_secs(20), |g| {
        let t = texts(g);
        ["slow", "skipper", "once", "catcher"]
            .iter()
            .all(|n| t.iter().any(|x| x == &format!("⏱ {n} starting")))
    });
    drop(d.stop_with("KILL", Duration::from_secs(10)));
    let before = r.received().len();
    // Down for 7 s: more than 3 periods of the 2 s jobs.
    std::thread::sleep(Duration::from_secs(7));
    let d = Daemon::start_opts(Some(&state), &args, &[]);
    // The policies' own words come first (the sink's rate limit of 20 a minute holds back, never
    // drops, what follows).
    let got = r.wait_for(Duration::from_secs(30), |g| {
        let t = texts(&g[before..]);
        t.iter().any(|x| x.starts_with("⚠️ slow was interrupted"))
            && t.iter().any(|x| x.starts_with("⏭ skipper skipped:"))
            && t.iter().any(|x| x.starts_with("⏭ once skipped:"))
    });
    let after = texts(&got[before..]);
    assert_eq!(
        count(&after, |x| x.starts_with(
            "⚠️ slow was interrupted: the scheduler stopped during its run"
        )),
        1,
        "{after:#?}"
    );
    let skip = after
        .iter()
        .find(|x| x.starts_with("⏭ skipper skipped:"))
        .unwrap();
    assert!(
        skip.contains("missed run(s)") && skip.contains("(missed = skip)"),
        "{skip}"
    );
    let once = after
        .iter()
        .find(|x| x.starts_with("⏭ once skipped:"))
        .unwrap();
    assert!(
        once.contains("folded into one run at") && once.contains("(missed = run_once)"),
        "{once}"
    );
    // catch_up runs every missed instant, one after another; none of them is "overdue": the
    // policy is handling them.
    let history = |task: &str| -> Vec<Value> {
        let out = lookout_e2e::run(
            "lookout",
            &["--url", d.url.as_str(), "tasks", "history", task, "--json"],
            tmp.path(),
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["runs"].as_array().unwrap().clone()
    };
    let mut ok = 0;
    for _ in 0..100 {
        ok = history("catcher")
            .iter()
            .filter(|r| r["outcome"] == "ok")
            .count();
        if ok >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok >= 4, "3 missed runs caught up, then on time again: {ok}");
    assert!(
        !texts(&r.received())
            .iter()
            .any(|x| x.starts_with("⏰ catcher is overdue")),
        "{:#?}",
        texts(&r.received())
    );
    drop(d);
}

/// A graceful stop (SIGTERM) during a run: the run's process is killed, the run is recorded
/// `interrupted` at the stop (not at the next start), and the next start says nothing more of it.
#[test]
fn a_graceful_stop_records_the_run_it_stops_as_interrupted() {
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = tmp.path().join("lookout.toml");
    // A marker only this test's child carries, to find it in the process table.
    let marker = tmp.path().join("slow-run.marker");
    std::fs::write(&marker, "").unwrap();
    std::fs::write(
        &file,
        format!(
            "[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{}\"\n\n\
             [[jobs]]\nname = \"slow\"\nevery = \"1h\"\ncommand = \"tail -f {}\"\n",
            r.url,
            marker.display()
        ),
    )
    .unwrap();
    let args = ["--config", file.to_str().unwrap()];
    let d = Daemon::start_opts(Some(&state), &args, &[]);
    let out = lookout_e2e::run(
        "lookout",
        &["--url", d.url.as_str(), "tasks", "run", "slow"],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.wait_for(Duration::from_secs(20), |g| {
        texts(g).iter().any(|x| x == "⏱ slow starting")
    });
    let out = d.stop_with("TERM", Duration::from_secs(15));
    let stopped_at = chrono::Utc::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(
        !table.contains(marker.to_str().unwrap()),
        "the run's process outlived lookoutd:\n{table}"
    );

    let d = Daemon::start_opts(Some(&state), &args, &[]);
    let out = lookout_e2e::run(
        "lookout",
        &[
            "--url",
            d.url.as_str(),
            "tasks",
            "history",
            "slow",
            "--json",
        ],
        tmp.path(),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &v["runs"][0];
    assert_eq!(run["outcome"], "interrupted", "{v}");
    let finished: chrono::DateTime<chrono::Utc> =
        run["finished_at"].as_str().unwrap().parse().unwrap();
    assert!(
        finished <= stopped_at,
        "recorded at the stop ({finished}), not at the next start (after {stopped_at})"
    );
    // Said at the stop, once: the next start has nothing more to say of it.
    let said = |x: &str| {
        x.starts_with("❌ slow interrupted after") && x.ends_with("the scheduler stopped")
    };
    let t = texts(&r.received());
    assert_eq!(
        count(&t, said),
        1,
        "delivered before lookoutd exited: {t:#?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let t = texts(&r.received());
    assert_eq!(count(&t, said), 1, "{t:#?}");
    assert_eq!(
        count(&t, |x| x.contains("slow was interrupted")),
        0,
        "{t:#?}"
    );
    drop(d);
}
