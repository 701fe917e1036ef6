//! The email and Apprise sinks against real parts: Debian's aiosmtpd as the SMTP server (writing a
//! maildir that Python's own email parser reads back), and Debian's Apprise CLI posting to a JSON
//! receiver on loopback. Missing either fails in CI and skips outside it. Waits poll with a
//! deadline; no test sleeps to prove a timing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lookout_notify::apprise::AppriseSink;
use lookout_notify::email::{EmailSettings, EmailSink};
use lookout_notify::{Notifier, Outgoing, Severity};
use serde_json::{Value, json};

const PYTHON: &str = "/usr/bin/python3";
const APPRISE: &str = "/usr/bin/apprise";
const FIRST_SEEN: &str = "2026-03-04T05:06:07Z";

/// Whether `what` is there: in CI a missing part fails the test, outside it the test is skipped.
fn present(what: &str, ok: bool, install: &str) -> bool {
    if !ok {
        if lookout_common::in_ci() {
            panic!("{what} is missing and CI=true (.ci/run installs `{install}`)");
        }
        eprintln!("skipped: {what} is missing (apt-get install {install})");
    }
    ok
}

fn outgoing(id: &str, severity: Severity, text: &str, payload: Value) -> Outgoing {
    Outgoing {
        id: id.into(),
        created_at: chrono::Utc::now(),
        key: payload["alert"].as_str().map(str::to_owned),
        group: None,
        severity,
        text: text.into(),
        payload,
        fallback_for: None,
    }
}

fn alert(id: &str, state: &str, text: &str) -> Outgoing {
    outgoing(
        id,
        Severity::Critical,
        text,
        json!({"alert": "disk_full:db1/var", "state": state, "rule": "disk_full",
               "subject": "db1/var", "first_seen": FIRST_SEEN}),
    )
}

/// Polls `f` until it gives `Some`, failing after `limit`.
async fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "no {what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---- SMTP: aiosmtpd ----

/// An aiosmtpd server on loopback writing every message it takes to a maildir; killed on drop.
struct SmtpServer {
    port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpServer {
    /// Starts one (extra aiosmtpd options in `args`), or `None` when aiosmtpd is not installed
    /// outside CI.
    async fn start(args: &[&str]) -> Option<SmtpServer> {
        let installed = std::process::Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !present("aiosmtpd", installed, "python3-aiosmtpd") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = tokio::process::Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(args)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mbox"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
                panic!("aiosmtpd exited with {status}: {log}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd not listening on {port} after 30s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(SmtpServer {
            port,
            dir,
            _child: child,
        })
    }

    fn settings(&self) -> EmailSettings {
        EmailSettings {
            smtp_url: format!("smtp+plain://127.0.0.1:{}", self.port),
            credentials: None,
            from: "Lookout <lookout@example.org>".into(),
            to: vec!["ops@example.org".into(), "oncall@example.org".into()],
            timeout: Duration::from_secs(10),
        }
    }

    /// The messages in the maildir, as Python's email parser reads them (headers decoded).
    fn messages(&self) -> Vec<Value> {
        let out = std::process::Command::new(PYTHON)
            .args(["-c", READ_MAILDIR])
            .arg(self.dir.path().join("mbox"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn wait_for_messages(&self, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} messages"), Duration::from_secs(10), || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .await
    }
}

/// Reads a maildir (argv[1]) with the standard library's parser; prints a JSON array of messages.
const READ_MAILDIR: &str = r#"
import email.policy, json, mailbox, sys
out = []
for m in mailbox.Maildir(sys.argv[1], factory=None, create=False):
    msg = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
    h = lambda n: None if msg[n] is None else str(msg[n])
    out.append({"message_id": h("Message-ID"), "references": h("References"),
                "in_reply_to": h("In-Reply-To"), "subject": h("Subject"), "from": h("From"),
                "to": h("To"), "mail_from": h("X-MailFrom"), "rcpt_to": h("X-RcptTo"),
                "content_type": msg.get_content_type(), "body": msg.get_content()})
print(json.dumps(out))
"#;

fn by_id<'a>(messages: &'a [Value], message_id: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["message_id"] == message_id)
        .collect()
}

#[tokio::test]
async fn a_firing_and_its_resolution_arrive_threaded_with_stable_ids() {
    let Some(server) = SmtpServer::start(&[]).await else {
        return;
    };
    let sink = EmailSink::new("mail", server.settings()).unwrap();
    let firing = alert(
        "n-100-1-0",
        "firing",
        "🔥 disk full: db1/var\n/var is 99% full (2 GiB left)",
    );
    let resolved = alert(
        "n-200-1-1",
        "resolved",
        "✅ resolved: disk full: db1/var\nafter 12m",
    );
    sink.deliver(&firing).await.unwrap();
    sink.deliver(&resolved).await.unwrap();
    // A retry of the same notification: the same Message-ID, so a receiver can drop it.
    sink.deliver(&firing).await.unwrap();
    // A message that is not an alert: not threaded.
    let plain = outgoing("n-300-1-2", Severity::Info, "lookoutd started", json!({}));
    sink.deliver(&plain).await.unwrap();

    let messages = server.wait_for_messages(4).await;
    assert_eq!(messages.len(), 4, "{messages:#?}");
    let root = format!(
        "<alert.disk_full-db1-var.{}@lookout>",
        chrono::DateTime::parse_from_rfc3339(FIRST_SEEN)
            .unwrap()
            .timestamp()
    );

    let fired = by_id(&messages, "<n-100-1-0@lookout>");
    assert_eq!(fired.len(), 2, "the firing and its retry: {messages:#?}");
    assert_eq!(fired[0], fired[1], "a retry is the same message");
    let fired = fired[0];
    assert_eq!(fired["subject"], "[Lookout] 🔥 disk full: db1/var");
    assert_eq!(
        fired["body"],
        "🔥 disk full: db1/var\n/var is 99% full (2 GiB left)\n\n-- \n\
         Lookout · severity critical · alert disk_full:db1/var · notification n-100-1-0\n"
    );
    assert_eq!(fired["content_type"], "text/plain");
    assert_eq!(fired["from"], "Lookout <lookout@example.org>");
    assert_eq!(fired["to"], "ops@example.org, oncall@example.org");
    assert_eq!(fired["mail_from"], "lookout@example.org");
    assert_eq!(fired["rcpt_to"], "ops@example.org, oncall@example.org");

    let done = by_id(&messages, "<n-200-1-1@lookout>");
    assert_eq!(done.len(), 1, "{messages:#?}");
    let done = done[0];
    assert_eq!(done["subject"], "[Lookout] ✅ resolved: disk full: db1/var");
    assert!(
        done["body"]
            .as_str()
            .unwrap()
            .starts_with("✅ resolved: disk full: db1/var\nafter 12m\n\n-- \n")
    );

    // Both name the same thread root, so a mail client shows them together.
    for m in [fired, done] {
        assert_eq!(m["references"], root.as_str(), "{m:#?}");
        assert_eq!(m["in_reply_to"], root.as_str(), "{m:#?}");
    }
    let plain = by_id(&messages, "<n-300-1-2@lookout>");
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0]["subject"], "[Lookout] lookoutd started");
    assert_eq!(plain[0]["references"], Value::Null);
    assert_eq!(plain[0]["in_reply_to"], Value::Null);
}

#[tokio::test]
async fn refusals_are_delivery_errors_saying_which_without_the_password() {
    // A server that takes at most 600 bytes (a 552 for more) and, without TLS, offers no AUTH.
    let Some(server) = SmtpServer::start(&["-s", "600"]).await else {
        return;
    };
    let sink = EmailSink::new("mail", server.settings()).unwrap();
    let big = outgoing("n-1-1-1", Severity::Warning, &"x".repeat(2000), json!({}));
    let e = sink.deliver(&big).await.unwrap_err();
    assert!(
        e.message.contains("permanent refusal, retried anyway") && e.message.contains("552"),
        "{e}"
    );
    assert!(
        e.message
            .starts_with(&format!("SMTP 127.0.0.1:{}: ", server.port)),
        "{e}"
    );

    let with_password = EmailSink::new(
        "mail",
        EmailSettings {
            credentials: Some(("lookout".into(), "hunter2-secret".into())),
            ..server.settings()
        },
    )
    .unwrap();
    let small = outgoing("n-1-1-2", Severity::Warning, "small", json!({}));
    let e = with_password.deliver(&small).await.unwrap_err();
    assert!(!e.message.contains("hunter2"), "{e}");
    assert!(e.message.contains("authentication"), "{e}");
    assert!(server.messages().is_empty(), "nothing was taken");
}

#[tokio::test]
async fn no_server_is_a_delivery_error() {
    let port = free_port();
    let sink = EmailSink::new(
        "mail",
        EmailSettings {
            smtp_url: format!("smtp+plain://127.0.0.1:{port}"),
            credentials: None,
            from: "lookout@example.org".into(),
            to: vec!["ops@example.org".into()],
            timeout: Duration::from_secs(5),
        },
    )
    .unwrap();
    let e = sink
        .deliver(&outgoing("n-1", Severity::Info, "hello", json!({})))
        .await
        .unwrap_err();
    assert!(
        e.message
            .starts_with(&format!("SMTP 127.0.0.1:{port}: connection failed")),
        "{e}"
    );
}

// ---- Apprise ----

/// A JSON receiver for Apprise's `json://`: records the bodies; answers `status`.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    status: Arc<Mutex<StatusCode>>,
}

async fn record(State(r): State<Receiver>, Json(body): Json<Value>) -> StatusCode {
    r.got.lock().unwrap().push(body);
    *r.status.lock().unwrap()
}

/// A receiver on loopback and its Apprise URL.
async fn receiver(status: StatusCode) -> (Receiver, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("json://{}/", l.local_addr().unwrap());
    let r = Receiver {
        got: Arc::default(),
        status: Arc::new(Mutex::new(status)),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::post(record))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

fn apprise_present() -> bool {
    present("the Apprise CLI", Path::new(APPRISE).exists(), "apprise")
}

#[tokio::test]
async fn apprise_delivers_title_body_and_type() {
    if !apprise_present() {
        return;
    }
    let (r, url) = receiver(StatusCode::OK).await;
    let sink = AppriseSink::new("apprise", APPRISE, url, Duration::from_secs(60));
    assert!(sink.check().await.unwrap().starts_with("Apprise v"));

    sink.deliver(&alert(
        "n-1",
        "firing",
        "🔥 disk full: db1/var\n/var is 99% full",
    ))
    .await
    .unwrap();
    sink.deliver(&alert("n-2", "resolved", "✅ resolved: disk full: db1/var"))
        .await
        .unwrap();
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0]["title"], "🔥 disk full: db1/var");
    assert_eq!(got[0]["message"], "/var is 99% full");
    assert_eq!(got[0]["type"], "failure");
    // One line: it is the title and the body.
    assert_eq!(got[1]["title"], "✅ resolved: disk full: db1/var");
    assert_eq!(got[1]["message"], "✅ resolved: disk full: db1/var");
    assert_eq!(got[1]["type"], "success");
}

#[tokio::test]
async fn a_failing_target_is_a_delivery_error_without_the_url() {
    if !apprise_present() {
        return;
    }
    let (r, url) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let url = url.replace("json://", "json://lookout:s3cret-pass@");
    let sink = AppriseSink::new("apprise", APPRISE, url, Duration::from_secs(60));
    let e = sink
        .deliver(&outgoing("n-1", Severity::Warning, "⚠️ slow", json!({})))
        .await
        .unwrap_err();
    assert!(
        e.message
            .starts_with("apprise exited with exit status: 1: "),
        "{e}"
    );
    assert!(e.message.contains("WARNING"), "Apprise's own reason: {e}");
    assert!(!e.message.contains("s3cret-pass"), "{e}");
    assert_eq!(r.got.lock().unwrap().len(), 1, "it was tried");
    assert_eq!(r.got.lock().unwrap()[0]["type"], "warning");
}

#[tokio::test]
async fn a_missing_program_is_a_delivery_error_naming_it() {
    let sink = AppriseSink::new(
        "apprise",
        "/nonexistent/apprise",
        "json://127.0.0.1:9/".into(),
        Duration::from_secs(5),
    );
    let n = outgoing("n-1", Severity::Info, "hello", json!({}));
    let e = sink.deliver(&n).await.unwrap_err();
    assert!(
        e.message.contains("`/nonexistent/apprise` not found"),
        "{e}"
    );
    let e = sink.check().await.unwrap_err();
    assert!(
        e.message.contains("`/nonexistent/apprise` not found"),
        "{e}"
    );
    // No URL: refused rather than letting Apprise fall back to its own configuration files.
    let none = AppriseSink::new("apprise", APPRISE, " ".into(), Duration::from_secs(5));
    assert_eq!(
        none.deliver(&n).await.unwrap_err().message,
        "no Apprise URLs configured"
    );
}

/// A stand-in program (a shell script in `dir`) for what the real CLI cannot show.
fn script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-apprise");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn the_urls_go_through_the_environment_never_the_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let program = script(
        dir.path(),
        &format!(
            "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {d}/argv\n\
             printf '%s' \"$APPRISE_URLS\" > {d}/env\n\
             read -r line; printf '%s' \"$?\" > {d}/stdin"
        ),
    );
    let urls = "tgram://123456789:secret-token/42 json://127.0.0.1:9/";
    let sink = AppriseSink::new("apprise", program, urls.into(), Duration::from_secs(10));
    sink.deliver(&outgoing(
        "n-1",
        Severity::Critical,
        "-t looks like an option\nbody",
        json!({}),
    ))
    .await
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(
        read("argv"),
        "-v\n-t\n-t looks like an option\n-b\nbody\n-n\nfailure\n"
    );
    assert_eq!(read("env"), urls);
    assert_eq!(read("stdin"), "1", "stdin is empty (null)");
}

#[tokio::test]
async fn a_program_that_hangs_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let program = script(
        dir.path(),
        &format!("echo $$ > {}\nexec sleep 600", pid_file.display()),
    );
    let sink = AppriseSink::new(
        "apprise",
        program,
        "json://127.0.0.1:9/".into(),
        Duration::from_millis(500),
    );
    let started = Instant::now();
    let e = sink
        .deliver(&outgoing("n-1", Severity::Info, "hello", json!({})))
        .await
        .unwrap_err();
    assert!(
        e.message.contains("did not finish within 500ms: killed"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let pid = wait_for("the child's pid", Duration::from_secs(5), || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    })
    .await;
    // Gone, or a zombie waiting to be reaped: either way no longer running.
    wait_for("the child killed", Duration::from_secs(10), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, s)| s.chars().next());
        matches!(state, None | Some('Z') | Some('X')).then_some(())
    })
    .await;
}
