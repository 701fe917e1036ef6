//! What systemd knows about a unit: its restart counter and the last exit of its main process.

use std::process::Command;

/// A unit's state as `systemctl show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    /// `NRestarts`: how often systemd restarted the unit.
    pub n_restarts: Option<u64>,
    /// `ExecMainStatus`: the exit status (or signal number) of the main process's last run.
    pub exec_main_status: Option<i64>,
    /// `ExecMainCode`: 1 exited, 2 killed, 3 dumped core.
    pub exec_main_code: Option<i64>,
    /// `Result`: `success`, `exit-code`, `signal`, `core-dump`, `timeout`, …
    pub result: Option<String>,
}

impl UnitState {
    /// The last exit as a cause a person reads ("exited with status 1 (systemd result: exit-code)"),
    /// when systemd saw a failure.
    pub fn failure_cause(&self) -> Option<String> {
        let result = self.result.as_deref().unwrap_or("");
        if result.is_empty() || result == "success" {
            return None;
        }
        let what = match (self.exec_main_code, self.exec_main_status) {
            (Some(1), Some(s)) => format!("exited with status {s}"),
            (Some(2), Some(s)) => format!("killed by signal {s}"),
            (Some(3), Some(s)) => format!("dumped core on signal {s}"),
            _ => "failed".to_string(),
        };
        Some(format!("{what} (systemd result: {result})"))
    }
}

/// Reads unit state; implemented for real by [`Systemctl`], by fakes in tests.
pub trait SystemdProbe: Send + Sync {
    /// The unit's state, or why it cannot be had.
    fn unit_state(&self, unit: &str) -> Result<UnitState, String>;
}

/// The real probe: `systemctl show`, only when systemd runs this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Systemctl;

impl SystemdProbe for Systemctl {
    fn unit_state(&self, unit: &str) -> Result<UnitState, String> {
        if !std::path::Path::new("/run/systemd/system").exists() {
            return Err("not running under systemd".into());
        }
        let out = Command::new("systemctl")
            .args([
                "show",
                unit,
                "--property=NRestarts,ExecMainStatus,ExecMainCode,Result",
            ])
            .output()
            .map_err(|e| format!("cannot run systemctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "systemctl show {unit} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(parse_show(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// Parses `systemctl show` output (`Key=value` lines).
pub fn parse_show(text: &str) -> UnitState {
    let mut s = UnitState::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "NRestarts" => s.n_restarts = v.parse().ok(),
            "ExecMainStatus" => s.exec_main_status = v.parse().ok(),
            "ExecMainCode" => s.exec_main_code = v.parse().ok(),
            "Result" => s.result = Some(v.to_string()),
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_systemctl_show() {
        let s = parse_show("NRestarts=3\nExecMainStatus=1\nExecMainCode=1\nResult=exit-code\n");
        assert_eq!(s.n_restarts, Some(3));
        assert_eq!(
            s.failure_cause().unwrap(),
            "exited with status 1 (systemd result: exit-code)"
        );
        let s = parse_show("NRestarts=0\nExecMainStatus=9\nExecMainCode=2\nResult=signal\n");
        assert_eq!(
            s.failure_cause().unwrap(),
            "killed by signal 9 (systemd result: signal)"
        );
        assert_eq!(parse_show("Result=success\n").failure_cause(), None);
    }
}
