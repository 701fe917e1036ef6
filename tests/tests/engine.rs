//! lookoutd against the real Docker engine: its own `image =` job run in a container, a
//! `kind = "container"` watch target healed by the engine, and the gateway's containers checked
//! for `gateway_down` — each with a container of our own made from `scripts/test-image.sh`. In CI
//! a missing engine fails these tests; elsewhere they say why and pass without running.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lookout_e2e::engine::{IMAGE, docker, engine};
use lookout_e2e::{Daemon, Receiver};
use serde_json::Value;

/// A container of our own, removed when dropped.
struct Container(String);

impl Container {
    fn run(tag: &str, script: &str) -> Container {
        let name = format!("lookout-e2e-{tag}-{}", std::process::id());
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        docker(&["run", "-d", "--name", &name, IMAGE, "sh", "-c", script]);
        Container(name)
    }

    fn running(&self) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", &self.0]) == "true"
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn texts(got: &[Value]) -> Vec<String> {
    got.iter()
        .filter_map(|b| b["text"].as_str().map(str::to_owned))
        .collect()
}

fn write_config(dir: &Path, hook: &str, body: &str) -> String {
    let p = dir.join("lookout.toml");
    std::fs::write(
        &p,
        format!("[[notify.sinks]]\nkind = \"webhook\"\nurl = \"{hook}\"\n\n{body}"),
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn an_image_job_runs_in_a_real_container_and_its_output_and_result_are_recorded() {
    if !engine() {
        return;
    }
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("boxed-{}", std::process::id());
    let at = (chrono::Utc::now() + chrono::Duration::seconds(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let file = write_config(
        tmp.path(),
        &r.url,
        &format!(
            "[[jobs]]\nname = \"{name}\"\nat = \"{at}\"\nimage = \"{IMAGE}\"\n\
             args = [\"sh\", \"-c\", \"echo made in a container; exit 3\"]\n"
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    // The run fails with the container's exit code: one failure message, with its output.
    let got = r.wait_for(Duration::from_secs(60), |g| {
        texts(g)
            .iter()
            .any(|t| t.contains(&name) && t.starts_with('❌'))
    });
    let failed = texts(&got)
        .into_iter()
        .find(|t| t.contains(&name) && t.starts_with('❌'))
        .unwrap();
    assert!(failed.contains('3'), "the exit code: {failed}");
    let history: Value = reqwest::blocking_get(&format!("{}/api/tasks/{name}/history", d.url));
    let run = &history["runs"][0];
    assert_eq!(run["outcome"], "failed", "{history}");
    assert!(
        run.to_string().contains("made in a container"),
        "the container's output is kept with the run: {run}"
    );
    // Removed afterwards: no container of the job is left.
    let left = docker(&["ps", "-a", "--filter", &format!("name={name}"), "-q"]);
    assert!(left.is_empty(), "left behind: {left}");
}

#[test]
fn a_container_watch_target_that_dies_is_restarted_by_the_engine() {
    if !engine() {
        return;
    }
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    // Exits once; after the watchdog's restart it stays up.
    let c = Container::run(
        "watched",
        "if [ -e /tmp/once ]; then exec sleep 1000; else touch /tmp/once; sleep 2; exit 1; fi",
    );
    let file = write_config(
        tmp.path(),
        &r.url,
        &format!(
            "[[watch]]\nname = \"agent\"\nkind = \"container\"\ncontainer = \"{}\"\n\
             probe_interval = \"250ms\"\ncooldown = \"1s\"\n",
            c.0
        ),
    );
    let _d = Daemon::start(&["--config", &file]);
    let got = r.wait_for(Duration::from_secs(60), |g| {
        texts(g)
            .iter()
            .any(|t| t.starts_with("✅ agent: healthy again"))
    });
    let t = texts(&got);
    assert!(
        t.iter().any(
            |t| t.starts_with("🩹 agent: container exited (exit code 1)")
                && t.contains("restarted container")
        ),
        "{t:#?}"
    );
    assert!(c.running(), "the engine restarted it");
}

#[test]
fn the_gateways_containers_stopped_fire_gateway_down_and_started_resolve_it() {
    if !engine() {
        return;
    }
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let c = Container::run("gateway", "exec sleep 1000");
    let file = write_config(
        tmp.path(),
        &r.url,
        &format!(
            "[gateway]\nmode = \"litellm\"\ncontainers = [\"{}\"]\nprobe_interval = \"500ms\"\n",
            c.0
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    let status: Value = reqwest::blocking_get(&format!("{}/status", d.url));
    assert_eq!(
        status["sections"]["gateway"]["containers"][&c.0]["state"], "running",
        "{}",
        status["sections"]["gateway"]
    );
    let stopped = Instant::now();
    docker(&["stop", "-t", "0", &c.0]);
    let got = r.wait_for(Duration::from_secs(30), |g| {
        texts(g)
            .iter()
            .any(|t| t.starts_with("🔌 LLM gateway down") && t.contains(&c.0))
    });
    eprintln!("gateway_down known {:?} after the stop", stopped.elapsed());
    let down = texts(&got);
    assert_eq!(down.len(), 1, "one alert: {down:#?}");
    docker(&["start", &c.0]);
    let got = r.wait_for(Duration::from_secs(30), |g| {
        texts(g).iter().any(|t| t.starts_with('✅'))
    });
    assert_eq!(
        texts(&got).len(),
        2,
        "one alert, one resolved: {:#?}",
        texts(&got)
    );
    let status: Value = reqwest::blocking_get(&format!("{}/status", d.url));
    assert_eq!(
        status["sections"]["gateway"]["containers"][&c.0]["state"],
        "running"
    );
}

mod reqwest {
    //! One blocking GET as JSON, on a runtime of its own.
    pub(super) fn blocking_get(url: &str) -> serde_json::Value {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}

fn post_events(url: &str, body: Value) {
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            ::reqwest::Client::new()
                .post(format!("{url}/api/events"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        });
    assert_eq!(status.as_u16(), 200);
}

fn run_started(run: &str, container: &str) -> Value {
    serde_json::json!([{"kind": "run_started", "run_id": run, "group": "main", "run_kind": "task",
                        "task": format!("nightly-{run}"), "container": container}])
}

#[test]
fn a_host_run_in_a_real_container_is_said_active_then_lost_with_its_exit_code_never_silent() {
    if !engine() {
        return;
    }
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let c = Container::run(
        "hostrun",
        "i=0; while true; do i=$((i+1)); echo step $i; sleep 0.2; done",
    );
    let file = write_config(
        tmp.path(),
        &r.url,
        "[thresholds]\nheartbeat_interval = \"1s\"\n",
    );
    let d = Daemon::start(&["--config", &file]);
    post_events(&d.url, run_started("r1", &c.0));
    // No heartbeat at all from the host: lookoutd's own lines, from the container.
    let got = r.wait_for(Duration::from_secs(20), |g| {
        texts(g)
            .iter()
            .filter(|t| t.starts_with("⏱ nightly-r1 still running"))
            .count()
            >= 4
    });
    let lines: Vec<String> = texts(&got)
        .into_iter()
        .filter(|t| t.starts_with("⏱ nightly-r1"))
        .collect();
    assert!(
        lines
            .iter()
            .all(|t| t.contains("elapsed, container active)") && t.contains("— last output: step ")),
        "{lines:#?}"
    );
    // Four intervals with no heartbeat: no "silent run" (I3) about a run whose container runs.
    assert!(
        !texts(&got).iter().any(|t| t.contains("no heartbeat")),
        "{:#?}",
        texts(&got)
    );
    let killed = Instant::now();
    docker(&["kill", &c.0]);
    let got = r.wait_for(Duration::from_secs(15), |g| {
        texts(g).iter().any(|t| t.starts_with("💀 nightly-r1 lost"))
    });
    let took = killed.elapsed();
    let lost = texts(&got)
        .into_iter()
        .find(|t| t.starts_with("💀 nightly-r1 lost"))
        .unwrap();
    assert!(lost.contains("exited with code 137"), "{lost}");
    assert!(lost.contains("last output:\nstep "), "{lost}");
    eprintln!("a killed container's run known lost {took:?} after the kill (interval 1 s)");
    // Within one interval (plus a loaded machine's slack).
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The run is closed in the log too: lookoutd wrote its run_finished.
    let events: Value =
        reqwest::blocking_get(&format!("{}/api/events?kind=run_finished&limit=10", d.url));
    assert_eq!(
        events["events"][0]["payload"]["outcome"], "lost",
        "{events}"
    );
}

#[test]
fn a_host_run_whose_container_is_oom_killed_is_said_lost_for_memory() {
    if !engine() {
        return;
    }
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("lookout-e2e-oom-{}", std::process::id());
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    // 16 MiB and no swap; the shell doubles a string until the kernel's OOM killer ends it.
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "echo filling memory; sleep 1; x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    let c = Container(name);
    let file = write_config(
        tmp.path(),
        &r.url,
        "[thresholds]\nheartbeat_interval = \"1s\"\n",
    );
    let d = Daemon::start(&["--config", &file]);
    post_events(&d.url, run_started("r2", &c.0));
    let got = r.wait_for(Duration::from_secs(30), |g| {
        texts(g).iter().any(|t| t.starts_with("💀 nightly-r2 lost"))
    });
    let lost = texts(&got)
        .into_iter()
        .find(|t| t.starts_with("💀 nightly-r2 lost"))
        .unwrap();
    assert!(lost.contains("(killed for memory: OOM)"), "{lost}");
    assert!(lost.contains("filling memory"), "its last output: {lost}");
}

#[test]
fn the_engines_events_make_a_death_an_alert_in_seconds_and_a_restart_loop_one_alert() {
    if !engine() {
        return;
    }
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let label = format!("lookout.e2e={}", std::process::id());
    let file = write_config(
        tmp.path(),
        &r.url,
        &format!("[docker]\nwatch = [\"label:{label}\"]\nrestart_loop_count = 3\n"),
    );
    let d = Daemon::start(&["--config", &file]);
    let start = Instant::now();
    while !d.logs().contains("following the Docker engine's events") {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", d.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let dies = format!("lookout-e2e-dies-{}", std::process::id());
    let loops = format!("lookout-e2e-loops-{}", std::process::id());
    for n in [&dies, &loops] {
        let _ = Command::new("docker").args(["rm", "-f", n]).output();
    }
    let _dies = Container(dies.clone());
    let _loops = Container(loops.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &dies,
        "--label",
        &label,
        IMAGE,
        "sh",
        "-c",
        "echo about to fail; sleep 1; exit 3",
    ]);
    docker(&[
        "run",
        "-d",
        "--name",
        &loops,
        "--restart",
        "always",
        "--label",
        &label,
        IMAGE,
        "sh",
        "-c",
        "echo boom; exit 1",
    ]);
    let exited = Instant::now();
    let got = r.wait_for(Duration::from_secs(30), |g| {
        let t = texts(g);
        t.iter()
            .any(|t| t.starts_with(&format!("🛑 container {dies} died (exit code 3)")))
            && t.iter()
                .any(|t| t.starts_with(&format!("🔁 container {loops} is restarting in a loop")))
    });
    eprintln!(
        "both known {:?} after the containers started",
        exited.elapsed()
    );
    let t = texts(&got);
    let died = t.iter().find(|t| t.contains(&dies)).unwrap();
    assert!(died.contains("last output:\nabout to fail"), "{died}");
    // The stream's state, in /status and in the doctor.
    let status: Value = reqwest::blocking_get(&format!("{}/status?sections=docker", d.url));
    let stream = &status["sections"]["docker"];
    assert_eq!(stream["stream"], "connected", "{stream}");
    assert_eq!(stream["following"][0], format!("label:{label}"), "{stream}");
    assert!(stream["events"].as_u64().unwrap() >= 2, "{stream}");
    let doctor: Value = reqwest::blocking_get(&format!("{}/api/doctor", d.url));
    let line = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "docker events")
        .cloned()
        .unwrap_or_else(|| panic!("a docker events line: {doctor}"));
    assert_eq!(line["status"], "ok", "{line}");
    // The loop goes on; its deaths are the loop's, never an alert each.
    std::thread::sleep(Duration::from_secs(6));
    let t = texts(&r.received());
    let about_loop: Vec<&String> = t.iter().filter(|t| t.contains(&loops)).collect();
    assert_eq!(
        about_loop.len(),
        1,
        "one alert for the loop: {about_loop:#?}"
    );
    // A stop asked for (`docker stop`: SIGTERM, exit 143, then the engine's stop) is no death;
    // the dead container removed (`docker rm`): its alert resolves.
    let stops = format!("lookout-e2e-stops-{}", std::process::id());
    let _ = Command::new("docker").args(["rm", "-f", &stops]).output();
    let _stops = Container(stops.clone());
    docker(&[
        "run", "-d", "--name", &stops, "--label", &label, IMAGE, "sleep", "600",
    ]);
    docker(&["stop", "-t", "1", &stops]);
    docker(&["rm", &dies]);
    let got = r.wait_for(Duration::from_secs(20), |g| {
        texts(g)
            .iter()
            .any(|t| t.starts_with("✅ resolved after") && t.contains(&dies))
    });
    // Past the restart grace (5 s) of the stopped container's death.
    std::thread::sleep(Duration::from_secs(7));
    let t = texts(&r.received());
    assert!(
        !t.iter().any(|t| t.contains(&stops)),
        "a stop asked for is no alert: {t:#?}"
    );
    assert!(
        texts(&got)
            .iter()
            .any(|t| t.contains(&dies) && t.starts_with("✅")),
        "{got:#?}"
    );
}

#[test]
fn an_engine_that_cannot_be_reached_shows_the_stream_disconnected_in_status_and_doctor() {
    // No engine needed: the socket does not exist.
    let r = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("no-docker.sock");
    let file = write_config(
        tmp.path(),
        &r.url,
        &format!(
            "[docker]\nsocket = \"unix://{}\"\nwatch = [\"agent-*\"]\n",
            socket.display()
        ),
    );
    let d = Daemon::start(&["--config", &file]);
    let start = Instant::now();
    let stream = loop {
        let status: Value = reqwest::blocking_get(&format!("{}/status?sections=docker", d.url));
        if status["sections"]["docker"]["stream"] == "disconnected" {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stream["section_status"]["docker"], "warn", "{stream}");
    assert!(
        stream["reasons"]
            .to_string()
            .contains("event stream is disconnected"),
        "{stream}"
    );
    let doctor: Value = reqwest::blocking_get(&format!("{}/api/doctor", d.url));
    let line = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "docker events")
        .cloned()
        .unwrap_or_else(|| panic!("a docker events line: {doctor}"));
    assert_eq!(line["status"], "fail", "{line}");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains("following agent-*"),
        "{line}"
    );
}
