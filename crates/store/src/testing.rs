//! Test support: databases to run one test suite against both backends.
//!
//! - [`sqlite_test_db`]: a fresh SQLite file in a temp dir.
//! - [`postgres_test_db`]: a fresh database in a PostgreSQL cluster: the one at
//!   `LOOKOUT_TEST_PG_URL` when set, else a throwaway cluster this process starts with `initdb` in a
//!   temp dir (binaries from `LOOKOUT_TEST_PG_BIN`, `/usr/lib/postgresql/*/bin` or `pg_config`). The
//!   cluster dies with the test process. Without PostgreSQL binaries it returns `None` after printing
//!   why; with `CI=true` it panics instead, so CI can never skip PostgreSQL silently.
//! - [`store_tests!`](crate::store_tests): declares each test once per backend
//!   (`sqlite::name`, `postgres::name`), so the test output names both.
#![allow(unsafe_code)] // one pre_exec hook: ties the test cluster's life to the test process

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::Store;

/// A database made for one test. Dropping it does not drop the data (the temp dir or cluster goes
/// when the process ends).
#[derive(Debug)]
pub struct TestDb {
    /// The URL to open.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Opens the store (applying migrations).
    pub async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening test store {}: {e}", self.url))
    }
}

/// A fresh SQLite database file in its own temp dir.
pub async fn sqlite_test_db() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("lookout.db").display());
    TestDb {
        url,
        _dir: Some(dir),
    }
}

/// True when tests run in CI, where a missing PostgreSQL or Docker must fail, not skip
/// ([`lookout_common::in_ci`]: `CI` set and not `false`/`0`).
pub fn in_ci() -> bool {
    lookout_common::in_ci()
}

/// A fresh, empty PostgreSQL database, or `None` (with a printed reason) when PostgreSQL is not
/// available outside CI.
pub async fn postgres_test_db() -> Option<TestDb> {
    let admin = tokio::task::spawn_blocking(shared_cluster_admin_url)
        .await
        .expect("cluster start task")?;
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "lookout_t_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "connecting to test PostgreSQL {}: {e}",
                crate::redact(&admin)
            )
        });
    // The name is ours: a fixed prefix, a pid and a counter.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE for a test");
    let _ = conn.close().await;
    Some(TestDb {
        url: with_database(&admin, &name),
        _dir: None,
    })
}

fn with_database(admin_url: &str, db: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{root}/{db}{query}")
}

fn shared_cluster_admin_url() -> Option<String> {
    static CLUSTER: OnceLock<Result<String, String>> = OnceLock::new();
    let result = CLUSTER.get_or_init(|| {
        if let Ok(url) = std::env::var("LOOKOUT_TEST_PG_URL") {
            return Ok(url);
        }
        match PgCluster::start(PgDurability::Fast) {
            Ok(c) => {
                let url = c.admin_url();
                // The cluster lives until the process ends (it is killed with it).
                std::mem::forget(c);
                Ok(url)
            }
            Err(e) => Err(e),
        }
    });
    match result {
        Ok(url) => Some(url.clone()),
        Err(reason) if in_ci() => panic!("CI=true and PostgreSQL is not available: {reason}"),
        Err(reason) => {
            eprintln!("SKIPPED (PostgreSQL): {reason}");
            None
        }
    }
}

/// Whether a throwaway cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgDurability {
    /// `fsync=off`, `synchronous_commit=off`: for correctness tests.
    Fast,
    /// PostgreSQL's defaults (fsync on): for benchmarks that must be honest about commits.
    Durable,
}

/// A PostgreSQL cluster of this process, in a temp dir, on a free loopback port.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    child: std::sync::Arc<std::sync::Mutex<Option<std::process::Child>>>,
}

impl PgCluster {
    /// Finds the binaries, runs `initdb`, starts `postgres`, and waits until it accepts connections.
    pub fn start(durability: PgDurability) -> Result<PgCluster, String> {
        let bin = find_pg_bin().ok_or_else(|| {
            "no PostgreSQL binaries (looked at LOOKOUT_TEST_PG_BIN, /usr/lib/postgresql/*/bin, pg_config); \
             install Debian's `postgresql` or set LOOKOUT_TEST_PG_URL"
                .to_string()
        })?;
        let owner = cluster_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("lookout-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir for PostgreSQL: {e}"))?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
        if let Some((uid, gid)) = owner {
            for p in [dir.path(), data.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {} to postgres: {e}", p.display()))?;
            }
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_owner(&mut initdb, owner);
        let out = initdb
            .output()
            .map_err(|e| format!("running initdb from {}: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let port = free_port()?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if durability == PgDurability::Fast {
            cmd.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        as_owner(&mut cmd, owner);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. It asks the kernel
        // to SIGTERM postgres when the thread that spawned it ends; that thread lives as long as the
        // process (below), so the cluster dies with the test process and never outlives it.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let child = child.clone();
            std::thread::Builder::new()
                .name("lookout-test-postgres".into())
                .spawn(move || {
                    let spawned = cmd.spawn();
                    let ok = spawned.is_ok();
                    let _ = tx.send(spawned.map(|c| {
                        *child.lock().unwrap() = Some(c);
                    }));
                    if ok {
                        loop {
                            std::thread::park();
                        }
                    }
                })
                .map_err(|e| format!("thread for postgres: {e}"))?;
        }
        rx.recv()
            .map_err(|e| format!("postgres spawner: {e}"))?
            .map_err(|e| format!("starting postgres: {e}"))?;
        let cluster = PgCluster { dir, port, child };
        cluster.wait_ready(&bin, Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn wait_ready(&self, bin: &Path, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let ok = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if let Some(c) = self.child.lock().unwrap().as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!("postgres exited at start ({status})"));
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "postgres did not accept connections within {limit:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A URL for the `postgres` database as the `postgres` superuser.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            // SIGTERM would wait for clients; SIGINT is a fast shutdown.
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

fn find_pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LOOKOUT_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    bin.join("initdb").exists().then_some(bin)
}

/// PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user.
fn cluster_owner() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .map(Some)
        .ok_or_else(|| {
            "running as root and there is no `postgres` user to run the cluster as".into()
        })
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// Declares each listed async test function (`async fn name(store: Store)`) twice: in module
/// `sqlite` on a fresh SQLite file and in module `postgres` on a fresh PostgreSQL database.
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::testing::sqlite_test_db().await;
                    super::$name(db.open().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::testing::postgres_test_db().await else { return };
                    super::$name(db.open().await).await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_replace_the_admin_database() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5/postgres", "x"),
            "postgres://postgres@127.0.0.1:5/x"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:5", "x"),
            "postgres://h:5/x"
        );
    }
}
