//! A slow client cannot hold lookoutd: request timeout and load shedding, with raw TCP clients.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lookout_e2e::Daemon;

/// Sends the head of a POST whose body never fully arrives.
fn stalled_post(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .unwrap();
    s
}

fn read_response(mut s: TcpStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&buf).contains("}") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn get_health(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_response(s, Duration::from_secs(5))
}

#[test]
fn slow_clients_time_out_and_excess_requests_are_shed() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lookout.toml");
    std::fs::write(
        &file,
        "[server]\nrequest_timeout = \"1s\"\nconcurrency_limit = 2\n",
    )
    .unwrap();
    let d = Daemon::start_opts(None, &["--config", file.to_str().unwrap()], &[]);
    let addr = d.url.trim_start_matches("http://").to_string();

    // Two clients hold a request each, never finishing their bodies.
    let t0 = Instant::now();
    let a = stalled_post(&addr);
    let b = stalled_post(&addr);
    std::thread::sleep(Duration::from_millis(200));
    // A third request finds the limit reached: shed at once, not queued behind the slow ones.
    let shed = get_health(&addr);
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(
        shed.contains(r#""error":"2 requests already in progress; retry shortly""#),
        "{shed}"
    );
    assert!(shed.contains(r#""limit":2"#), "{shed}");
    // The slow ones are cut off by the timeout.
    let ra = read_response(a, Duration::from_secs(5));
    let elapsed = t0.elapsed();
    assert!(ra.starts_with("HTTP/1.1 408"), "{ra}");
    assert!(
        ra.contains("request took longer than the limit of 1s"),
        "{ra}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "cut off after the 1 s limit, not later: {elapsed:?}"
    );
    let rb = read_response(b, Duration::from_secs(5));
    assert!(rb.starts_with("HTTP/1.1 408"), "{rb}");
    // And the daemon serves again.
    assert!(get_health(&addr).starts_with("HTTP/1.1 200"));
}
