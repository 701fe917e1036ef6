//! Following a container's output (stdout and stderr) through the engine's log stream. The stream
//! ends when the container stops and fails while the engine is away: it is asked for again, with
//! a backoff, from the time of the last line seen — each line carries the engine's timestamp, so a
//! line is handed on once across reconnects, a restart of the container, or its re-creation under
//! the same name.

use std::pin::Pin;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use chrono::{DateTime, Utc};
use futures_core::Stream;
use tokio::sync::{mpsc, watch};

use super::Statuses;

/// The first wait before asking again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait before asking again (a restarted container's lines are read from where they
/// stopped, so none are lost meanwhile).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The lines of a container's output as they come, in frames: each line starts with the engine's
/// timestamp, which is taken off; lines not newer than the last one handed on are dropped.
#[derive(Debug)]
pub(crate) struct Frames {
    /// The newest line handed on (at first: when following began).
    last: DateTime<Utc>,
    /// stdout's and stderr's unfinished lines, with their first piece's time.
    partial: [(Vec<u8>, Option<DateTime<Utc>>); 2],
}

impl Frames {
    /// Lines newer than `since`.
    pub(crate) fn new(since: DateTime<Utc>) -> Frames {
        Frames {
            last: since,
            partial: [(Vec::new(), None), (Vec::new(), None)],
        }
    }

    /// Where to ask the engine from: the second of the last line (the engine's `since` is in
    /// seconds; what is older within it is dropped here).
    pub(crate) fn since(&self) -> i32 {
        i32::try_from(self.last.timestamp()).unwrap_or(i32::MAX)
    }

    /// The complete new lines of one frame of `stderr` (or stdout).
    pub(crate) fn frame(&mut self, stderr: bool, bytes: &[u8]) -> Vec<String> {
        let (partial, first_at) = &mut self.partial[usize::from(stderr)];
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (piece, ended, next) = match rest.iter().position(|b| *b == b'\n') {
                Some(e) => (&rest[..e], true, &rest[e + 1..]),
                None => (rest, false, &rest[rest.len()..]),
            };
            rest = next;
            // Every piece the engine writes carries a timestamp, a long line's later pieces too;
            // a line is as new as its first piece.
            let (at, text) = timestamped(piece);
            if partial.is_empty() && first_at.is_none() {
                *first_at = at;
            }
            partial.extend_from_slice(text);
            let fresh = first_at.is_none_or(|at| at > self.last);
            if ended {
                let line = super::file::text(partial);
                partial.clear();
                if let Some(at) = first_at.take().filter(|_| fresh) {
                    self.last = at;
                }
                if fresh {
                    out.push(line);
                }
            } else if partial.len() > super::file::MAX_LINE {
                // Too long to keep whole: it goes on in pieces.
                let piece = super::file::text(partial);
                partial.clear();
                if fresh {
                    out.push(piece);
                }
            }
        }
        out
    }
}

/// A piece's leading RFC 3339 timestamp and the text after it.
fn timestamped(piece: &[u8]) -> (Option<DateTime<Utc>>, &[u8]) {
    let Some(space) = piece.iter().position(|b| *b == b' ') else {
        return (None, piece);
    };
    match std::str::from_utf8(&piece[..space])
        .ok()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(at) => (Some(at.with_timezone(&Utc)), &piece[space + 1..]),
        None => (None, piece),
    }
}

async fn next<S: Stream + ?Sized>(s: &mut Pin<Box<S>>) -> Option<S::Item> {
    std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await
}

/// Follows `container`'s output on the engine at `socket` into `lines` until `stop` (or until
/// nobody reads them); rule `index` of `statuses` says whether it is followed.
pub(crate) async fn follow(
    socket: String,
    container: String,
    lines: mpsc::Sender<String>,
    statuses: Statuses,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut frames = Frames::new(Utc::now());
    let mut backoff = FIRST_BACKOFF;
    loop {
        let problem = tokio::select! {
            p = read(&socket, &container, &mut frames, &lines, &statuses, index, &mut backoff) => p,
            _ = stop.wait_for(|v| *v) => return,
        };
        let Some(problem) = problem else { return };
        super::set_following(&statuses, index, Err(problem));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One request for the container's log stream, read until it ends: why it ended, or `None` when
/// nobody reads the lines any more.
async fn read(
    socket: &str,
    container: &str,
    frames: &mut Frames,
    lines: &mpsc::Sender<String>,
    statuses: &Statuses,
    index: usize,
    backoff: &mut Duration,
) -> Option<String> {
    let docker = match Docker::connect_with_unix(socket, 30, bollard::API_DEFAULT_VERSION) {
        Ok(d) => d,
        Err(e) => return Some(format!("the engine at {socket}: {e}")),
    };
    // Asked first, so `/status` says whether it runs (a quiet stream says nothing).
    match docker.inspect_container(container, None).await {
        Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
            super::set_following(statuses, index, Ok(()));
        }
        // Stopped: its last lines are read all the same, then the stream ends.
        Ok(_) => {}
        Err(e) => return Some(engine_problem(container, socket, &e)),
    }
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        since: frames.since(),
        ..Default::default()
    };
    let mut stream = Box::pin(docker.logs(container, Some(opts)));
    loop {
        let (stderr, bytes) = match next(&mut stream).await {
            None => return Some(format!("container {container} is not running")),
            Some(Err(e)) => return Some(engine_problem(container, socket, &e)),
            Some(Ok(LogOutput::StdErr { message })) => (true, message),
            Some(Ok(
                LogOutput::StdOut { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message },
            )) => (false, message),
        };
        *backoff = FIRST_BACKOFF;
        for line in frames.frame(stderr, &bytes) {
            if lines.send(line).await.is_err() {
                return None;
            }
        }
    }
}

/// What an engine error means for the rule.
fn engine_problem(container: &str, socket: &str, e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => format!("no container {container}"),
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            format!("container {container}: {message}")
        }
        other => format!("the engine at {socket} is unreachable: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn timestamps_are_taken_off_and_lines_are_handed_on_once() {
        let mut f = Frames::new(t0());
        // Older than the start: what was there before counts not.
        assert!(
            f.frame(false, b"2026-05-01T11:59:59.5Z before\n")
                .is_empty()
        );
        assert_eq!(
            f.frame(false, b"2026-05-01T12:00:01.000000001Z first\n"),
            ["first"]
        );
        assert_eq!(
            f.frame(true, b"2026-05-01T12:00:02Z on stderr\r\n"),
            ["on stderr"]
        );
        assert_eq!(i64::from(f.since()), t0().timestamp() + 2);
        // Asked again from that second after a reconnect: the engine repeats the last line.
        assert!(
            f.frame(true, b"2026-05-01T12:00:02Z on stderr\n")
                .is_empty()
        );
        assert_eq!(
            f.frame(false, b"2026-05-01T12:00:03Z after the restart\n"),
            ["after the restart"]
        );
    }

    #[test]
    fn a_line_in_pieces_is_one_line_and_a_frame_of_several_lines_is_several() {
        let mut f = Frames::new(t0());
        assert!(
            f.frame(false, b"2026-05-01T12:00:01Z part one, ")
                .is_empty()
        );
        assert_eq!(
            f.frame(false, b"2026-05-01T12:00:01.5Z part two\n"),
            ["part one, part two"]
        );
        assert_eq!(
            f.frame(false, b"2026-05-01T12:00:02Z a\n2026-05-01T12:00:03Z b\n\n"),
            ["a", "b", ""]
        );
        // A line with no timestamp (an engine that sends none) still goes on.
        assert_eq!(f.frame(false, b"plain\n"), ["plain"]);
    }
}
