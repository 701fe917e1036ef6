"""Scheduled agent tasks (pynchy's `task_scheduler.py`): each task runs in a one-shot container
(`docker run --rm`), and its output reaches the group only after the container exits. A 25-minute
run used to be 25 minutes of silence; inside `lk.run(...)` lookoutd now tells the group it is still
running every heartbeat interval, and how it ended. The host writes no timer for that."""

import logging
import subprocess
import time
import uuid

log = logging.getLogger("minipynchy.scheduler")


class TaskFailed(Exception):
    """The task's container failed or timed out (its message is what the group reads)."""


class Scheduler:
    def __init__(self, tasks, channel, lk, docker="docker"):  # lookout
        self.tasks = tasks
        self.channel = channel
        self.lk = lk  # lookout
        self.docker = docker
        now = time.time()
        self.next_run = {t.name: now for t in tasks}  # every task is due once at start

    def run_forever(self, once=False):
        """Runs due tasks one at a time (as pynchy's group queue does); with `once`, returns when
        every task has run once."""
        ran = set()
        while self.tasks:
            for task in self.tasks:
                if self.next_run[task.name] <= time.time():
                    self.run_task(task)
                    ran.add(task.name)
                    self.next_run[task.name] = time.time() + task.every_secs
            if once and len(ran) == len(self.tasks):
                return
            time.sleep(max(0.05, min(self.next_run.values()) - time.time()))

    def run_task(self, task):
        run_id = "%s-%s" % (task.name, uuid.uuid4().hex[:8])
        container = "minipynchy-" + run_id
        log.info("task %s started: run %s in container %s", task.name, run_id, container)
        started = time.monotonic()
        try:
            with self.lk.run(run_id, task.group, task=task.name, container=container):  # lookout
                output = self._run_container(task, container)
        except TaskFailed as e:
            log.warning("task %s failed after %.1fs: %s", task.name, time.monotonic() - started, e)
            return False
        log.info("task %s finished after %.1fs", task.name, time.monotonic() - started)
        lines = [l for l in output.splitlines() if l.strip()]
        self.channel.send(task.group, "%s: %s" % (task.name, lines[-1] if lines else "(no output)"))
        return True

    def _run_container(self, task, container):
        cmd = [self.docker, "run", "--rm", "--name", container, "--label",
               "minipynchy.task=" + task.name, task.image, "sh", "-c", task.command]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output, _ = proc.communicate(timeout=task.timeout_secs)
        except subprocess.TimeoutExpired:
            self._stop(proc, container)
            raise TaskFailed("timed out after %gs" % task.timeout_secs) from None
        except BaseException:  # SIGTERM, Ctrl-C: the container must not outlive its host
            self._stop(proc, container)
            raise
        if proc.returncode != 0:
            lines = [l for l in output.splitlines() if l.strip()]
            raise TaskFailed("container exited with %d: %s"
                             % (proc.returncode, lines[-1] if lines else "(no output)"))
        return output

    def _stop(self, proc, container):
        try:
            subprocess.run([self.docker, "rm", "-f", container], capture_output=True, timeout=30)
        finally:
            proc.kill()
            proc.wait()
