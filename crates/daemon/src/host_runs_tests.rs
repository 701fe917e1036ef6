use super::*;
use serde_json::json;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn ev(seq: i64, kind: &str, at: i64, payload: serde_json::Value) -> StoredEvent {
    StoredEvent {
        seq,
        kind: kind.into(),
        subject: payload["run_id"].as_str().map(str::to_owned),
        at: t(at),
        payload,
    }
}

fn started(seq: i64, at: i64, run: &str, task: Option<&str>) -> StoredEvent {
    // A one-shot container's run: no heartbeats promised, lines from the elapsed time alone.
    let mut p = json!({"run_id": run, "group": "main", "run_kind": "task", "heartbeats": false});
    if let Some(task) = task {
        p["task"] = json!(task);
    }
    ev(seq, "run_started", at, p)
}

fn texts(m: &[RunMessage]) -> Vec<&str> {
    m.iter().map(|m| m.text.as_str()).collect()
}

#[test]
fn an_open_run_gets_a_line_every_interval_with_its_progress_then_its_finish() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    assert_eq!(runs.apply(&started(1, 0, "r1", Some("nightly"))), None);
    assert_eq!(runs.next_due(), Some(t(60)));
    assert!(runs.due(t(59)).is_empty());
    let m = runs.due(t(60));
    assert_eq!(texts(&m), ["⏱ nightly still running (1m elapsed)"]);
    assert_eq!(m[0].group.as_deref(), Some("main"));
    assert!(runs.due(t(61)).is_empty(), "once per interval");
    runs.apply(&ev(
        2,
        "run_heartbeat",
        90,
        json!({"run_id": "r1", "group": "main", "run_kind": "task", "progress": "step 3 of 7"}),
    ));
    assert_eq!(
        texts(&runs.due(t(120))),
        ["⏱ nightly still running (2m elapsed) — last: step 3 of 7"]
    );
    let done = runs
        .apply(&ev(
            3,
            "run_finished",
            25 * 60,
            json!({"run_id": "r1", "group": "main", "run_kind": "task", "outcome": "success"}),
        ))
        .unwrap();
    assert_eq!(done.text, "✅ nightly finished after 25m");
    assert_eq!(done.severity, Severity::Info);
    assert_eq!(runs.next_due(), None);
    assert!(runs.due(t(3600)).is_empty());
}

#[test]
fn failures_and_interruptions_say_so_and_a_late_tick_sends_one_line() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&started(1, 0, "r1", None));
    runs.apply(&started(2, 0, "r2", Some("report")));
    // Ticked late (lookoutd busy): one line each, with the true elapsed time.
    let m = runs.due(t(185));
    assert_eq!(
        texts(&m),
        [
            "⏱ r1 still running (3m 5s elapsed)",
            "⏱ report still running (3m 5s elapsed)"
        ]
    );
    assert_eq!(runs.next_due(), Some(t(240)));
    let failed = runs
        .apply(&ev(
            3,
            "run_finished",
            200,
            json!({"run_id": "r1", "group": "main", "run_kind": "task",
            "outcome": "failed", "error": "exit 3"}),
        ))
        .unwrap();
    assert_eq!(failed.text, "❌ r1 failed after 3m 20s: exit 3");
    assert_eq!(failed.severity, Severity::Warning);
    let cut = runs
        .apply(&ev(
            4,
            "run_finished",
            200,
            json!({"run_id": "r2", "group": "main", "run_kind": "task",
            "outcome": "interrupted"}),
        ))
        .unwrap();
    assert_eq!(cut.text, "⚠️ report interrupted after 3m 20s");
    // A finish for a run never seen says nothing.
    assert_eq!(
        runs.apply(&ev(
            5,
            "run_finished",
            200,
            json!({"run_id": "r9", "group": "main", "run_kind": "task"})
        )),
        None
    );
}

#[test]
fn lookoutds_own_runs_are_left_to_its_scheduler_and_a_restart_resumes_the_open_ones() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    let mut own = started(1, 0, "7", Some("backup"));
    own.payload["source"] = json!(OWN_SOURCE);
    runs.apply(&own);
    assert_eq!(runs.next_due(), None);

    let mut fresh = HostRuns::new(Duration::from_secs(60));
    fresh.restore(&[started(1, 0, "r1", Some("nightly"))], t(150));
    // The beats owed before the restart are not repeated; the next comes at the next interval.
    assert!(fresh.due(t(150)).is_empty());
    assert_eq!(
        texts(&fresh.due(t(180))),
        ["⏱ nightly still running (3m elapsed)"]
    );
}

#[test]
fn a_short_run_gets_no_finish_line_but_a_failure_does() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&started(1, 0, "m1", None));
    let ok = json!({"run_id": "m1", "group": "main", "run_kind": "task", "outcome": "success"});
    assert_eq!(
        runs.apply(&ev(2, "run_finished", 5, ok)),
        None,
        "answered in 5s: nothing to say"
    );
    runs.apply(&started(3, 0, "m2", None));
    let failed = json!({"run_id": "m2", "group": "main", "run_kind": "task", "outcome": "failed"});
    assert_eq!(
        runs.apply(&ev(4, "run_finished", 5, failed)).unwrap().text,
        "❌ m2 failed after 5s"
    );
}

#[test]
fn a_run_that_promised_heartbeats_and_went_silent_gets_no_more_lines_until_it_beats_again() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    let p = |extra: serde_json::Value| {
        let mut v = json!({"run_id": "r1", "group": "main", "run_kind": "task", "task": "sync"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    runs.apply(&ev(1, "run_started", 0, p(json!({}))));
    assert_eq!(runs.due(t(60)).len(), 1);
    assert_eq!(runs.due(t(120)).len(), 1);
    assert_eq!(runs.due(t(180)).len(), 1);
    // Silent for more than 3 intervals (the host died?): I3's business, not "still running".
    assert!(runs.due(t(240)).is_empty());
    assert!(runs.due(t(300)).is_empty());
    assert!(runs.next_due().unwrap() > t(300), "skipped, not spinning");
    // A heartbeat: alive after all, the lines resume.
    runs.apply(&ev(2, "run_heartbeat", 310, p(json!({"progress": 4}))));
    assert_eq!(
        texts(&runs.due(t(360))),
        ["⏱ sync still running (6m elapsed) — last: 4"]
    );
}

fn in_container(seq: i64, at: i64, run: &str) -> StoredEvent {
    // The seed's headline: a scheduled task's run in a container, heartbeats not ruled out by
    // the host, and none sent.
    ev(
        seq,
        "run_started",
        at,
        json!({"run_id": run, "group": "main", "run_kind": "task", "task": "nightly", "container": "agent-7"}),
    )
}

#[test]
fn a_run_in_a_container_is_looked_at_each_interval_and_said_active_with_its_last_output() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&in_container(1, 0, "r1"));
    assert!(
        runs.to_look(t(59)).is_empty(),
        "looked at when its line is due"
    );
    assert_eq!(
        runs.to_look(t(60)),
        [("r1".to_owned(), Watched::Container("agent-7".to_owned()))]
    );
    let running = Look::Running {
        last_line: Some("step 3: fetched 40 mails".into()),
        instance: None,
    };
    assert_eq!(runs.saw("r1", running.clone(), t(60)), None);
    assert_eq!(
        texts(&runs.due(t(60))),
        [
            "⏱ nightly still running (1m elapsed, container active) — last output: step 3: fetched 40 mails"
        ]
    );
    // No heartbeat came for five intervals: not silent (the container says it runs).
    runs.saw("r1", running, t(300));
    assert_eq!(
        runs.due(t(300)).len(),
        1,
        "still said while the container runs"
    );
    // The engine not answering concludes nothing.
    runs.saw("r1", Look::Unknown("engine down".into()), t(360));
    assert_eq!(
        texts(&runs.due(t(360))),
        ["⏱ nightly still running (6m elapsed, container not checked: the engine did not answer)"]
    );
}

/// A look at `at` finds the run gone, nothing is concluded within the grace (5 s at a 60 s
/// interval), the second look is due at its end, and finds it still gone: lost.
fn lost_after_grace(runs: &mut HostRuns, run: &str, first: Look, second: Look, at: i64) -> Lost {
    assert_eq!(
        runs.saw(run, first, t(at)),
        None,
        "the first look concludes nothing"
    );
    assert!(
        runs.due(t(at)).is_empty(),
        "no 'still running' line for a run found gone"
    );
    assert_eq!(
        runs.next_due(),
        Some(t(at + 5)),
        "the second look, a grace later"
    );
    assert_eq!(runs.saw(run, second.clone(), t(at + 4)), None);
    assert!(
        runs.to_look(t(at + 5)).iter().any(|(id, _)| id == run),
        "looked at again at the grace's end"
    );
    runs.saw(run, second, t(at + 5)).expect("lost")
}

#[test]
fn a_container_gone_with_no_run_finished_ends_the_run_as_lost_with_its_exit_code_and_output() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&in_container(1, 0, "r1"));
    // The second look finds it removed (`--rm`): the first look's code and output are kept.
    let lost = lost_after_grace(
        &mut runs,
        "r1",
        Look::Ended {
            exit_code: Some(137),
            oom: true,
            last_lines: vec!["allocating…".into(), "still allocating".into()],
        },
        Look::Missing,
        150,
    );
    assert_eq!(
        lost.message.text,
        "💀 nightly lost after 2m 30s: its container agent-7 exited with code 137 (killed for memory: OOM), \
         and no run_finished came — last output:\nallocating…\nstill allocating"
    );
    assert_eq!(lost.message.severity, Severity::Warning);
    assert_eq!(lost.message.group.as_deref(), Some("main"));
    assert_eq!(lost.event["kind"], "run_finished");
    assert_eq!(lost.event["outcome"], "lost");
    assert_eq!(lost.event["exit_code"], 137);
    assert_eq!(lost.event["oom_killed"], true);
    assert_eq!(lost.event["source"], OWN_SOURCE);
    // The reconciler reads it as the run's end.
    let typed = Event::from_payload("run_finished", &lost.event);
    assert_eq!(typed.run().map(|r| r.run_id.as_str()), Some("r1"));
    assert_eq!(runs.next_due(), None, "the run is closed");
    // A container this engine never showed running: nothing concluded (the reconciler's I1
    // judges it from the host's events).
    runs.apply(&in_container(2, 200, "r2"));
    assert_eq!(runs.saw("r2", Look::Missing, t(260)), None);
    assert_eq!(
        texts(&runs.due(t(260))),
        ["⏱ nightly still running (1m elapsed)"],
        "still open, said without a container state"
    );
    assert_eq!(
        runs.snapshot(t(260))[0].state,
        "not found: the engine has no such container"
    );
    // Seen running, then removed: lost, with no code.
    runs.saw(
        "r2",
        Look::Running {
            last_line: None,
            instance: None,
        },
        t(320),
    );
    let gone = lost_after_grace(&mut runs, "r2", Look::Missing, Look::Missing, 380);
    assert!(
        gone.message
            .text
            .contains("its container agent-7 is gone (removed)"),
        "{}",
        gone.message.text
    );
}

fn in_process(seq: i64, at: i64, run: &str, pid: u32) -> StoredEvent {
    ev(
        seq,
        "run_started",
        at,
        json!({"run_id": run, "group": "main", "run_kind": "task", "task": "sync", "pid": pid}),
    )
}

fn process(instance: u64) -> Look {
    Look::Running {
        last_line: None,
        instance: Some(instance),
    }
}

#[test]
fn a_run_in_a_process_is_said_active_and_lost_when_its_pid_is_gone_or_reused() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&in_process(1, 0, "r1", 4242));
    assert_eq!(
        runs.to_look(t(60)),
        [("r1".to_owned(), Watched::Process(4242))]
    );
    assert_eq!(runs.saw("r1", process(900), t(60)), None);
    assert_eq!(
        texts(&runs.due(t(60))),
        ["⏱ sync still running (1m elapsed, process active)"]
    );
    // No heartbeat for five intervals: not silent, the process says it runs.
    assert_eq!(runs.saw("r1", process(900), t(300)), None);
    assert_eq!(runs.due(t(300)).len(), 1);
    let lost = lost_after_grace(&mut runs, "r1", Look::Missing, Look::Missing, 360);
    assert_eq!(
        lost.message.text,
        "💀 sync lost after 6m: its process 4242 is gone, and no run_finished came"
    );
    assert_eq!(lost.event["pid"], 4242);
    assert_eq!(lost.event["container"], serde_json::Value::Null);
    assert_eq!(lost.event["outcome"], "lost");
    // The same pid, another process (its start time differs): the run's own is gone.
    runs.apply(&in_process(2, 400, "r2", 4242));
    runs.saw("r2", process(900), t(460));
    runs.saw("r2", Look::Unknown("cannot read".into()), t(520));
    let reused = lost_after_grace(&mut runs, "r2", process(1200), process(1200), 580);
    assert!(
        reused
            .message
            .text
            .contains("its pid now belongs to another process"),
        "{}",
        reused.message.text
    );
    // A zombie has ended: lost, its exit code its parent's.
    runs.apply(&in_process(3, 600, "r3", 77));
    runs.saw("r3", process(5), t(660));
    let ended = Look::Ended {
        exit_code: None,
        oom: false,
        last_lines: Vec::new(),
    };
    assert!(
        lost_after_grace(&mut runs, "r3", ended.clone(), ended, 720)
            .message
            .text
            .contains("a zombie")
    );
    // A pid never seen running (gone before the first look, or in a pid namespace lookoutd
    // does not share): nobody vouches for the run, said so rather than silence.
    runs.apply(&in_process(4, 800, "r4", 78));
    let never = lost_after_grace(&mut runs, "r4", Look::Missing, Look::Missing, 860);
    assert!(
        never
            .message
            .text
            .contains("never seen running: it ended before the first look, or lookoutd does not share the host's pid namespace"),
        "{}",
        never.message.text
    );
}

#[test]
fn a_run_found_gone_whose_run_finished_follows_within_the_grace_is_not_lost() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&in_container(1, 0, "r1"));
    let exited = Look::Ended {
        exit_code: Some(0),
        oom: false,
        last_lines: Vec::new(),
    };
    assert_eq!(runs.saw("r1", exited.clone(), t(60)), None);
    assert_eq!(
        runs.snapshot(t(61))[0].state,
        "gone: waiting for its run_finished"
    );
    // The host's finish, two seconds behind its container's exit: its own line, no "lost".
    let done = runs.apply(&ev(
        2,
        "run_finished",
        62,
        json!({"run_id": "r1", "group": "main", "run_kind": "task", "outcome": "success"}),
    ));
    assert_eq!(
        done, None,
        "a run that ended before its first line needs none"
    );
    assert_eq!(
        runs.saw("r1", exited, t(65)),
        None,
        "closed: nothing to conclude"
    );
    assert_eq!(runs.next_due(), None);

    // Found gone, then running again (the engine restarted it): the lines go on.
    runs.apply(&in_container(3, 100, "r2"));
    assert_eq!(runs.saw("r2", Look::Missing, t(160)), None, "not seen yet");
    let running = Look::Running {
        last_line: None,
        instance: None,
    };
    runs.saw("r2", running.clone(), t(160));
    runs.due(t(160));
    let exited = Look::Ended {
        exit_code: Some(1),
        oom: false,
        last_lines: Vec::new(),
    };
    assert_eq!(runs.saw("r2", exited, t(220)), None);
    assert_eq!(runs.saw("r2", running, t(225)), None);
    assert_eq!(
        texts(&runs.due(t(225))),
        ["⏱ nightly still running (2m 5s elapsed, container active)"]
    );
    // An engine that does not answer during the grace restarts it, rather than a look per loop.
    let exited = Look::Ended {
        exit_code: Some(2),
        oom: false,
        last_lines: Vec::new(),
    };
    assert_eq!(runs.saw("r2", exited.clone(), t(280)), None);
    assert_eq!(
        runs.saw("r2", Look::Unknown("engine down".into()), t(285)),
        None
    );
    assert_eq!(runs.next_due(), Some(t(290)));
    assert!(runs.saw("r2", exited, t(290)).is_some());
}

#[test]
fn a_pid_first_given_in_a_heartbeat_is_watched_from_then_on() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&started(1, 0, "r1", Some("sync")));
    assert!(runs.to_look(t(60)).is_empty());
    runs.apply(&ev(
        2,
        "run_heartbeat",
        30,
        json!({"run_id": "r1", "group": "main", "run_kind": "task", "pid": 99}),
    ));
    assert_eq!(
        runs.to_look(t(60)),
        [("r1".to_owned(), Watched::Process(99))]
    );
}

#[test]
fn the_open_runs_are_shown_with_what_they_are_watched_through_and_their_state() {
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&in_container(1, 0, "c1"));
    runs.apply(&in_process(2, 10, "p1", 42));
    runs.apply(&started(3, 20, "quiet", Some("oneshot")));
    runs.apply(&ev(
        4,
        "run_started",
        30,
        json!({"run_id": "hb", "group": "main", "run_kind": "task", "task": "beats"}),
    ));
    runs.saw(
        "c1",
        Look::Running {
            last_line: Some("step 2".into()),
            instance: None,
        },
        t(60),
    );
    let now = runs.snapshot(t(90));
    let states: Vec<(&str, Option<&str>, &str)> = now
        .iter()
        .map(|r| (r.run_id.as_str(), r.watched.as_deref(), r.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("c1", Some("container agent-7"), "active"),
            ("p1", Some("process 42"), "not seen yet"),
            ("quiet", None, "elapsed time only"),
            ("hb", None, "sending heartbeats"),
        ]
    );
    assert_eq!(now[0].last_output.as_deref(), Some("step 2"));
    // Three intervals without the heartbeats it promised: silent.
    let later = runs.snapshot(t(30 + 181));
    assert_eq!(later[3].state, "silent");
}

#[test]
fn the_doctor_names_the_runs_it_cannot_vouch_for() {
    assert!(doctor(&[]).is_none(), "no line while no run is open");
    let mut runs = HostRuns::new(Duration::from_secs(60));
    runs.apply(&in_container(1, 0, "c1"));
    runs.saw(
        "c1",
        Look::Running {
            last_line: None,
            instance: None,
        },
        t(60),
    );
    let ok = doctor(&runs.snapshot(t(60))).unwrap();
    assert_eq!(ok.status, "ok");
    assert_eq!(
        ok.detail,
        "1 open run(s) followed, 1 watched through a container or process"
    );
    runs.saw("c1", Look::Unknown("engine down".into()), t(120));
    let warn = doctor(&runs.snapshot(t(120))).unwrap();
    assert_eq!(warn.status, "warn");
    assert!(
        warn.detail.ends_with("nightly (not checked: engine down)"),
        "{}",
        warn.detail
    );
    // A container the engine never knew: it may live on an engine lookoutd does not watch.
    runs.apply(&in_container(2, 100, "c2"));
    runs.saw("c2", Look::Missing, t(160));
    let warn = doctor(&runs.snapshot(t(160))).unwrap();
    assert!(
        warn.detail
            .ends_with("nightly (not found: the engine has no such container)"),
        "{}",
        warn.detail
    );
}
