//! lookoutd as the target of systemd's watchdog: `READY=1` once it serves, then `WATCHDOG=1` every
//! half `WatchdogSec` — only while its store answers and its reconciler ticks, so a hung lookoutd
//! is restarted by systemd instead of pinging on from a healthy timer task.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends one state line to `$NOTIFY_SOCKET`; `false` when there is no socket (not under systemd).
fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let sent = addr.and_then(|a| {
        let s = UnixDatagram::unbound()?;
        s.send_to_addr(state.as_bytes(), &a)
    });
    if let Err(e) = &sent {
        tracing::warn!(error = %e, socket = %path, "cannot notify systemd");
    }
    sent.is_ok()
}

/// `WATCHDOG_USEC` when systemd set it for this process.
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Says READY=1 and, with `WatchdogSec`, keeps pinging while `alive` says the loops are alive.
pub(crate) fn ready_and_watch<F, Fut>(alive: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    if !notify("READY=1") {
        return;
    }
    let Some(every) = watchdog_interval() else {
        return;
    };
    tracing::info!(
        interval_ms = every.as_millis() as u64,
        "systemd watchdog on"
    );
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every / 2).await;
            match tokio::time::timeout(every / 2, alive()).await {
                Ok(Ok(())) => {
                    notify("WATCHDOG=1");
                }
                Ok(Err(why)) => {
                    tracing::error!(reason = %why, "not pinging systemd's watchdog: a loop is not alive")
                }
                Err(_) => {
                    tracing::error!("not pinging systemd's watchdog: the liveness check hung")
                }
            }
        }
    });
}
