//! A full disk under the state directory: lookoutd on a 4 MiB tmpfs takes events until the disk
//! is full, then refuses them with an error that says so — and every event it acknowledged is in
//! the log afterwards, once.
//!
//! Needs permission to mount a tmpfs (root with CAP_SYS_ADMIN, as on this project's machines); where
//! that is refused the test says so and skips — except in CI, where it fails.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lookout_e2e::Daemon;
use serde_json::{Value, json};

struct Mounted(std::path::PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mounted> {
    let out = match Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            assert!(!lookout_common::in_ci(), "in CI `mount` must run: {e}");
            eprintln!("SKIPPED: cannot run `mount` ({e}); the disk-full test needs it");
            return None;
        }
    };
    if out.status.success() {
        Some(Mounted(dir.to_path_buf()))
    } else {
        assert!(
            !lookout_common::in_ci(),
            "in CI the disk-full test must run, but a tmpfs cannot be mounted: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here ({}); the disk-full test needs it",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        None
    }
}

#[test]
fn a_full_disk_refuses_new_events_and_loses_no_acknowledged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let Some(mounted) = mount_tmpfs(&state, "4m") else {
        return;
    };
    let d = Daemon::start_opts(Some(&state), &[], &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (acked, refusal) = rt.block_on(async {
        let http = reqwest::Client::new();
        let mut acked: Vec<i64> = Vec::new();
        let filler = "x".repeat(900);
        for round in 0..2000 {
            let batch: Vec<Value> = (0..50)
                .map(|i| {
                    json!({"kind": "run_heartbeat", "run_id": format!("r{round}-{i}"),
                           "group": "g", "run_kind": "task", "note": filler})
                })
                .collect();
            let resp = http
                .post(format!("{}/api/events", d.url))
                .json(&batch)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if status == 200 {
                for s in body["seqs"].as_array().unwrap() {
                    acked.push(s.as_i64().unwrap());
                }
            } else {
                return (acked, (status, body));
            }
        }
        panic!("4 MiB never filled up");
    });
    let (status, body) = refusal;
    assert_eq!(status, 507, "{body}");
    assert_eq!(
        body["error"],
        "the disk of lookoutd's store is full: nothing of this request was stored (earlier \
         acknowledged events are safe); free space, then retry"
    );
    assert!(!acked.is_empty());
    // lookoutd is still up and says what is wrong.
    assert!(lookout_e2e::health_ok(d.url.trim_start_matches("http://")));
    drop(d.stop_with("TERM", Duration::from_secs(20)));
    // Every acknowledged event is in the log, once: copy the database off the full disk and read it.
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(&state).unwrap() {
        let f = f.unwrap();
        if f.file_name().to_string_lossy().starts_with("lookout.db") {
            std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
        }
    }
    drop(mounted);
    rt.block_on(async {
        let store =
            lookout_store::Store::open(&format!("sqlite://{}", copy.join("lookout.db").display()))
                .await
                .unwrap();
        let mut stored = Vec::new();
        let mut per_run: std::collections::HashMap<String, usize> = Default::default();
        let mut cursor = 0;
        loop {
            let page = store.events_after(cursor, 10_000).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = last.seq;
            for e in page.iter().filter(|e| e.kind == "run_heartbeat") {
                stored.push(e.seq);
                // Each posted heartbeat names its own run: a run id twice is an event stored twice.
                *per_run
                    .entry(e.payload["run_id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        let twice: Vec<_> = per_run.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(twice.is_empty(), "stored twice: {twice:?}");
        let stored_set: std::collections::HashSet<i64> = stored.iter().copied().collect();
        let missing: Vec<&i64> = acked.iter().filter(|s| !stored_set.contains(s)).collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged event(s) lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        println!(
            "disk full after {} acknowledged events; refusal: {status} {body}",
            acked.len()
        );
    });
}
