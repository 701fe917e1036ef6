//! Helpers for end-to-end tests of Lookout's real binaries: build them once, find free ports, start
//! a lookoutd in its own state directory and stop it with real signals.

pub mod bot_api;
pub mod engine;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The path of a workspace binary (`lookoutd`, `lookout`), built once per test process with the
/// same profile as the tests.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test-binary> -> target/<profile>
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build", "--quiet", "-p", "lookoutd", "-p", "lookout", "--bins",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
        profile_dir
    });
    dir.join(name)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when `GET /health` at `addr` (host:port) answers 200. lookoutd binds its port before it
/// opens the store, so an accepted connection alone does not mean it is ready.
pub fn health_ok(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(
        format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .is_err()
    {
        return false;
    }
    let mut head = [0u8; 16];
    matches!(s.read(&mut head), Ok(n) if n >= 12 && head[..n].starts_with(b"HTTP/1.1 200"))
}

/// Waits until lookoutd on `port` answers `/health` with 200.
pub fn wait_health(port: u16, limit: Duration) {
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while !health_ok(&addr) {
        assert!(
            start.elapsed() < limit,
            "lookoutd on {addr} not healthy within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal (`TERM`, `INT`, `KILL`, `STOP`, …) to a process.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// A running lookoutd, stopped (SIGKILL) when dropped if still running.
pub struct Daemon {
    child: Option<Child>,
    /// Its stderr (the logs), drained by a thread as it is written: a pipe nobody reads fills at
    /// 64 KiB and then blocks the daemon's next log line, and with it whatever request logs.
    logs: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    drain: Option<std::thread::JoinHandle<()>>,
    /// Its HTTP base URL.
    pub url: String,
    /// Its state directory.
    pub state_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Daemon {
    /// Starts lookoutd with a fresh state dir and a free port, plus `extra` flags, and waits until
    /// `/health` answers.
    pub fn start(extra: &[&str]) -> Daemon {
        Self::start_opts(None, extra, &[])
    }

    /// Starts lookoutd in `state_dir` (a fresh one when `None`), with `extra` flags and `env`.
    pub fn start_opts(state_dir: Option<&Path>, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = state_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| tmp.path().join("state"));
        let port = free_port();
        let mut cmd = Command::new(binary("lookoutd"));
        cmd.arg("--state-dir")
            .arg(&state_dir)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env_remove("LOOKOUT_TOKEN")
            .envs(env.iter().copied())
            .current_dir(tmp.path());
        Self::spawn(cmd, port, state_dir, tmp)
    }

    /// Starts lookoutd from `cmd` as given (flags, environment, working directory: `tmp` is kept
    /// for as long as the daemon), listening on `port`, and waits until `/health` answers. Its
    /// stderr is drained as it is written, so a chatty daemon can never block on a full pipe.
    pub fn spawn(
        mut cmd: Command,
        port: u16,
        state_dir: PathBuf,
        tmp: tempfile::TempDir,
    ) -> Daemon {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lookoutd");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let drain = {
            let mut err = child.stderr.take().expect("piped stderr");
            let logs = logs.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut l = logs.lock().unwrap();
                    l.extend_from_slice(&buf[..n]);
                    // The last 4 MiB are plenty for any assertion on the logs.
                    if l.len() > 8 << 20 {
                        let cut = l.len() - (4 << 20);
                        l.drain(..cut);
                    }
                }
            })
        };
        let mut d = Daemon {
            child: Some(child),
            logs,
            drain: Some(drain),
            url: format!("http://127.0.0.1:{port}"),
            state_dir,
            _tmp: tmp,
        };
        d.wait_healthy(Duration::from_secs(20));
        d
    }

    fn wait_healthy(&mut self, limit: Duration) {
        let start = Instant::now();
        let addr = self.url.trim_start_matches("http://").to_string();
        loop {
            if health_ok(&addr) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child.take();
                if let Some(t) = self.drain.take() {
                    let _ = t.join();
                }
                panic!(
                    "lookoutd exited at start ({status}): {}",
                    String::from_utf8_lossy(&self.logs.lock().unwrap())
                );
            }
            if start.elapsed() >= limit {
                let _ = self.child.as_mut().unwrap().kill();
                panic!(
                    "lookoutd did not answer /health within {limit:?}; its logs:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `sig` and waits for the exit, returning its output (stderr holds the logs).
    pub fn stop_with(mut self, sig: &str, limit: Duration) -> Output {
        let mut child = self.child.take().expect("running");
        signal(child.id(), sig);
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                if let Some(t) = self.drain.take() {
                    let _ = t.join();
                }
                panic!(
                    "lookoutd did not exit within {limit:?} of SIG{sig}; its logs:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait().unwrap();
        if let Some(t) = self.drain.take() {
            let _ = t.join();
        }
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::mem::take(&mut *self.logs.lock().unwrap()),
        }
    }

    /// The logs written so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a binary to completion with `args`, in `cwd`.
pub fn run(bin: &str, args: &[&str], cwd: &Path) -> Output {
    run_env(bin, args, cwd, &[])
}

/// Runs a binary to completion with `args`, in `cwd`, with `env` added.
pub fn run_env(bin: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(binary(bin))
        .args(args)
        .current_dir(cwd)
        .env_remove("LOOKOUT_URL")
        .env_remove("LOOKOUT_STATE_DIR")
        .env_remove("LOOKOUT_STORE_URL")
        .env_remove("XDG_STATE_HOME")
        .env_remove("LOOKOUT_TOKEN")
        .envs(env.iter().copied())
        .output()
        .expect("running a binary")
}

/// The non-empty lines of a process's stderr.
pub fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// A webhook receiver on loopback standing in for the chat: records every JSON body it is sent.
/// Runs on its own thread and runtime; stops when dropped.
pub struct Receiver {
    /// Its URL (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    /// Its port.
    pub port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts on a free port.
    pub fn start() -> Receiver {
        Self::start_on(0)
    }

    /// Starts on `port` (0 for any).
    pub fn start_on(port: u16) -> Receiver {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let g = got.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/hook",
                    axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                        let g = g.clone();
                        async move {
                            g.lock().unwrap().push(body);
                            "ok"
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            got,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every body received so far.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the bodies received, up to `limit`.
    pub fn wait_for(
        &self,
        limit: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            assert!(
                start.elapsed() < limit,
                "receiver: condition not met within {limit:?}; got {got:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
