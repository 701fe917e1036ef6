//! `sh -c COMMAND` in its own process group, output captured.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::{LivenessProbe, OutputBuffer, Progress, RunRequest, RunResult, TaskRunner};
use crate::spec::RunnerSpec;

/// Runs shell commands: `sh -c`, with the task's environment and working directory, in a process
/// group of its own so that stopping a run (timeout, replace) kills its children too. Standard
/// output and error are captured together (head and tail kept, see [`OutputBuffer`]); the last line
/// feeds heartbeats.
#[derive(Debug, Clone, Default)]
pub struct ShellRunner {
    _private: (),
}

impl ShellRunner {
    /// A shell runner.
    pub fn new() -> ShellRunner {
        ShellRunner::default()
    }
}

/// Kills the whole process group when dropped (the run ended, or its future was dropped).
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (already gone) is the normal case after a clean exit.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

struct GroupProbe(Pid);

#[async_trait::async_trait]
impl LivenessProbe for GroupProbe {
    async fn liveness(&self) -> String {
        match killpg(self.0, None) {
            Ok(()) => "process alive".into(),
            Err(_) => "process gone".into(),
        }
    }
}

async fn pump<R: AsyncRead + Unpin>(r: R, out: Arc<Mutex<OutputBuffer>>, progress: Progress) {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                out.lock().unwrap_or_else(|e| e.into_inner()).push(&line);
                progress.set_last_line(&String::from_utf8_lossy(&line));
            }
        }
    }
}

#[async_trait::async_trait]
impl TaskRunner for ShellRunner {
    async fn run(&self, request: RunRequest, progress: Progress) -> RunResult {
        let RunnerSpec::Shell {
            command,
            env,
            workdir,
        } = &request.runner
        else {
            return RunResult::failed("not a shell task");
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .envs(env)
            .env("LOOKOUT_TASK", &request.task)
            .env("LOOKOUT_RUN_ID", request.run_id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = workdir {
            cmd.current_dir(dir);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return RunResult::failed(format!("cannot start `sh -c {command}`: {e}")),
        };
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw);
        let mut guard = GroupGuard(pid);
        if let Some(pid) = pid {
            progress.set_probe(Arc::new(GroupProbe(pid)));
        }
        tracing::debug!(task = %request.task, run_id = request.run_id, pid = ?pid, "shell run started");
        let out = Arc::new(Mutex::new(OutputBuffer::default()));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let pump_out = async {
            if let Some(s) = stdout {
                pump(s, out.clone(), progress.clone()).await;
            }
        };
        let pump_err = async {
            if let Some(s) = stderr {
                pump(s, out.clone(), progress.clone()).await;
            }
        };
        let wait = async {
            let status = child.wait().await;
            // The shell is done: whatever it left behind in its group goes too (and with it the
            // last holders of the pipes, so the pumps end).
            guard.kill();
            status
        };
        let (status, (), ()) = tokio::join!(wait, pump_out, pump_err);
        let output = out.lock().unwrap_or_else(|e| e.into_inner()).summary();
        let last = progress.last_line();
        match status {
            Ok(s) if s.success() => RunResult {
                success: true,
                message: last.unwrap_or_else(|| "exit 0".into()),
                output,
            },
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                let why = match (s.code(), s.signal()) {
                    (Some(c), _) => format!("exit status {c}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    _ => "failed".into(),
                };
                RunResult {
                    success: false,
                    message: match last {
                        Some(l) => format!("{why}: {l}"),
                        None => why,
                    },
                    output,
                }
            }
            Err(e) => RunResult::failed(format!("waiting for the command: {e}")),
        }
    }
}
