//! The cost of supervision at rest: a release lookoutd watching 50 healthy process targets (pid,
//! heartbeat and version files, probed every 5 s, the defaults), measured over a minute from
//! `/proc/<pid>`: CPU time used (user + system) as a share of one core, and resident memory.
//!
//! `cargo bench -p lookout-e2e --bench watchdog_idle` (`LOOKOUT_IDLE_SECS` changes the minute,
//! `LOOKOUT_IDLE_TARGETS` the 50).
#![allow(missing_docs)]

use std::time::Duration;

use lookout_e2e::Daemon;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn main() {
    let secs = env("LOOKOUT_IDLE_SECS", 60);
    let targets = env("LOOKOUT_IDLE_TARGETS", 50);
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    // One worker stands in for the 50 supervised processes: it refreshes every heartbeat file each
    // second; every target's pid file names it.
    let worker = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {dir} && while true; do for i in $(seq 0 {last}); do date +%s > hb-$i; done; sleep 1; done",
            dir = run.display(),
            last = targets - 1
        ))
        .spawn()
        .unwrap();
    let mut cfg = String::new();
    for i in 0..targets {
        std::fs::write(run.join(format!("pid-{i}")), worker.id().to_string()).unwrap();
        std::fs::write(run.join(format!("v-{i}")), "v1").unwrap();
        cfg.push_str(&format!(
            "[[watch]]\nname = \"t{i}\"\nkind = \"process\"\npid_file = \"{d}/pid-{i}\"\n\
             heartbeat_file = \"{d}/hb-{i}\"\nversion_file = \"{d}/v-{i}\"\n\
             expected_version = \"file:{d}/v-{i}\"\nstart = \"true\"\n\n",
            d = run.display()
        ));
    }
    let file = tmp.path().join("lookout.toml");
    std::fs::write(&file, cfg).unwrap();
    let d = Daemon::start(&["--config", file.to_str().unwrap()]);
    let pid = d.pid();
    // Warm-up: every target probed a few times, the first heal states written.
    std::thread::sleep(Duration::from_secs(10));
    let (t0, r0) = (cpu_ticks(pid), rss_kib(pid));
    std::thread::sleep(Duration::from_secs(secs));
    let (t1, r1) = (cpu_ticks(pid), rss_kib(pid));
    let hz = 100.0; // USER_HZ on Linux
    let cpu = (t1 - t0) as f64 / hz / secs as f64 * 100.0;
    println!(
        "lookoutd supervising {targets} healthy process targets (probe every 5 s), over {secs} s:"
    );
    println!("  CPU: {cpu:.2}% of one core ({} ticks)", t1 - t0);
    println!(
        "  RSS: {:.1} MiB at the start of the window, {:.1} MiB at its end",
        r0 as f64 / 1024.0,
        r1 as f64 / 1024.0
    );
    let explain: serde_json::Value = reqwest::blocking_get(&format!("{}/api/watchdog", d.url));
    let unhealthy = explain["targets"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter(|x| !x["seen"].as_array().is_none_or(|s| s.is_empty()))
                .count()
        })
        .unwrap_or(0);
    println!("  targets with findings at the end: {unhealthy} (expected 0)");
    let mut worker = worker;
    let _ = worker.kill();
    let _ = worker.wait();
}

mod reqwest {
    /// A GET on a small runtime (the bench is otherwise synchronous).
    pub(crate) fn blocking_get(url: &str) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}
