use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

#[test]
fn deploy_reads_like_a_sentence() {
    let d = json!({
        "branch": "main", "dirty": false, "head_commit": "fix: dedupe routing",
        "head_sha": "5fda35b0123456789", "last_deploy_at": "2026-01-01T10:00:00Z",
        "last_deploy_sha": "5fda35b0123456789", "unpushed_commits": 0, "upstream": "origin/main",
    });
    assert_eq!(
        section_view("deploy", &d, "pass", now()).summary,
        "main @ 5fda35b fix: dedupe routing — clean, 0 unpushed to origin/main, deployed 2h ago"
    );
    let mut moved = d.clone();
    moved["head_sha"] = json!("aaaaaaa999");
    moved["dirty"] = json!(true);
    moved["unpushed_commits"] = json!(null);
    assert_eq!(
        section_view("deploy", &moved, "warn", now()).summary,
        "main @ aaaaaaa fix: dedupe routing — dirty, no upstream, HEAD is not what was deployed (5fda35b 2h ago)"
    );
    let never = json!({"branch": "main", "head_sha": "abc", "dirty": false, "unpushed_commits": 2});
    assert_eq!(
        section_view("deploy", &never, "pass", now()).summary,
        "main @ abc — clean, 2 unpushed, never deployed"
    );
}

#[test]
fn repos_name_the_conflicted_worktrees_and_list_every_worktree() {
    let d = json!({"host": {
        "branch": "main", "dirty": false, "head_commit": "init", "head_sha": "0123456789",
        "unpushed_commits": 1, "upstream": "origin/main",
        "worktrees": {
            "g1": {"ahead": 2, "behind": 0, "branch": "g1", "conflict": true, "dirty": true,
                   "error": null, "sha": "fedcba987654"},
            "g2": {"ahead": 0, "behind": 3, "branch": null, "conflict": false, "dirty": false,
                   "error": null, "sha": "111111122"},
        }
    }});
    let v = section_view("repos", &d, "fail", now());
    assert_eq!(v.verdict, Verdict::Fail);
    assert_eq!(
        v.summary,
        "host: main @ 0123456 init — clean, 1 unpushed to origin/main, 2 worktrees (g1 in conflict)"
    );
    assert_eq!(v.tables[0].title, "worktrees");
    assert_eq!(
        v.tables[0].rows,
        vec![
            vec!["host", "g1", "g1", "fedcba9", "2", "0", "yes", "yes", "—"],
            vec!["host", "g2", "detached", "1111111", "0", "3", "—", "—", "—"],
        ]
    );
}

#[test]
fn channels_and_messages_say_what_is_down_and_since_when() {
    let c = json!({
        "slack": {"connected": true, "reason": null, "since": "2026-01-01T10:00:00Z"},
        "tg": {"connected": false, "reason": "gave up reconnecting", "since": "2026-01-01T11:00:00Z"},
    });
    let v = section_view("channels", &c, "fail", now());
    assert_eq!(
        v.summary,
        "1 of 2 connected; tg down 1h (gave up reconnecting)"
    );
    assert_eq!(v.tables[0].rows[1][1], "disconnected");
    assert_eq!(v.tables[0].rows[1][2], "1h ago");
    assert_eq!(
        section_view("channels", &json!({}), "pass", now()).summary,
        "no channel reported yet"
    );
    let m = json!({"total_inbound": 12, "total_outbound": 9, "in_flight": 3,
                   "in_flight_too_long": 2, "pending_deliveries": 1, "failed_deliveries": 0,
                   "last_received_at": "2026-01-01T11:58:00Z"});
    assert_eq!(
        section_view("messages", &m, "warn", now()).summary,
        "12 in, 9 out, 3 in flight (2 unanswered too long), 1 delivery pending; last received 2m ago"
    );
}

#[test]
fn tasks_name_the_overdue_the_failed_and_the_next() {
    let t = json!([
        {"name": "backup", "schedule_type": "interval", "schedule_value": "1h", "status": "active",
         "next_run": "2026-01-01T12:30:00Z", "last_run": "2026-01-01T11:30:00Z",
         "last_result": "success", "overdue": false, "running": false},
        {"name": "report", "schedule_type": "cron", "schedule_value": "0 9 * * *", "status": "active",
         "next_run": "2026-01-01T11:00:00Z", "last_run": null, "last_result": "failed",
         "overdue": true, "running": false},
    ]);
    let v = section_view("tasks", &t, "fail", now());
    assert_eq!(
        v.summary,
        "2 scheduled; report overdue 1h; last run failed: report; next: backup in 30m"
    );
    assert_eq!(
        v.tables[0].rows[0],
        vec![
            "backup",
            "interval 1h",
            "active",
            "in 30m",
            "30m ago",
            "success"
        ]
    );
    assert_eq!(
        section_view("host_jobs", &json!([]), "pass", now()).summary,
        "none scheduled"
    );
}

#[test]
fn watch_targets_show_their_state_tier_and_next_action() {
    let w = json!({
        "bridge": {"circuit_open": false, "healthy": false, "kind": "http", "tier": 2,
                   "observation": "endpoint failed 3 probes", "last_action_at": "2026-01-01T11:59:00Z",
                   "next_action": "restart the container", "next_action_at": "2026-01-01T12:01:00Z"},
        "db": {"circuit_open": true, "circuit_reason": "3 restarts did not help", "healthy": false,
               "kind": "container", "tier": 3},
        "ok": {"circuit_open": false, "healthy": true, "kind": "process", "tier": 0},
    });
    let v = section_view("watchdog", &w, "fail", now());
    assert_eq!(
        v.summary,
        "1 of 3 healthy; bridge healing; db circuit open (3 restarts did not help)"
    );
    assert_eq!(
        v.tables[0].rows[0],
        vec![
            "bridge",
            "http",
            "healing",
            "2",
            "restart the container (in 1m)",
            "1m ago",
            "endpoint failed 3 probes"
        ]
    );
}

#[test]
fn an_unavailable_section_says_why_and_unknown_ones_show_their_fields() {
    let v = section_view(
        "repos",
        &json!({"error": "timed out after 2s", "elapsed_ms": 2000}),
        "warn",
        now(),
    );
    assert_eq!(v.summary, "unavailable: timed out after 2s");
    assert!(v.tables.is_empty());
    assert_eq!(
        section_view(
            "custom",
            &json!({"a": 1, "b": "x", "c": null}),
            "pass",
            now()
        )
        .summary,
        "a 1, b x"
    );
}

#[test]
fn sections_come_in_reading_order_with_their_verdicts() {
    let report = json!({
        "sections": {"watchdog": {}, "service": {"status": "ok", "uptime_seconds": 3700, "version": "1.2.3"},
                     "zeta": {}, "boot": {}},
        "section_status": {"watchdog": "pass", "service": "pass", "zeta": "warn", "boot": "fail"},
    });
    let v = sections(&report, now());
    let names: Vec<&str> = v.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["service", "watchdog", "boot", "zeta"]);
    assert_eq!(v[0].summary, "up 1h 1m, version 1.2.3");
    assert_eq!(v[2].verdict, Verdict::Fail);
    assert_eq!(v[3].verdict, Verdict::Warn);
}

#[test]
fn times_are_relative_and_commit_ids_short() {
    assert_eq!(
        relative(Some(&json!("2026-01-01T09:55:00Z")), now()),
        "2h 5m ago"
    );
    assert_eq!(
        relative(Some(&json!("2026-01-02T12:00:00Z")), now()),
        "in 1d"
    );
    assert_eq!(relative(None, now()), "—");
    assert_eq!(relative(Some(&json!("soon")), now()), "soon");
    assert_eq!(short_sha("5fda35b0123"), "5fda35b");
    assert_eq!(short_sha("abc"), "abc");
}

#[test]
fn host_runs_say_what_they_are_watched_through_and_the_docker_stream_its_state() {
    let d = json!({"open": 2, "watched": 1, "list": [
        {"run_id": "r1", "name": "nightly", "group": "main", "started_at": "2026-01-01T11:57:00Z",
         "watched": "container agent-7", "state": "active", "last_output": "step 3",
         "progress": null},
        {"run_id": "r2", "name": "sync", "group": null, "started_at": "2026-01-01T11:59:00Z",
         "watched": null, "state": "elapsed time only", "last_output": null,
         "progress": "2 of 5"},
    ]});
    let v = section_view("runs", &d, "pass", now());
    assert_eq!(
        v.summary,
        "2 open: nightly 3m, container active; sync 1m, elapsed time only"
    );
    assert_eq!(
        v.tables[0].rows[0],
        [
            "nightly",
            "main",
            "3m ago",
            "container agent-7",
            "active",
            "step 3"
        ]
    );
    assert_eq!(
        v.tables[0].rows[1][5], "2 of 5",
        "progress where there is no output"
    );
    let none = json!({"open": 0, "watched": 0, "list": []});
    assert_eq!(
        section_view("runs", &none, "pass", now()).summary,
        "no host run open"
    );

    let docker = json!({"following": ["agent-*", "label:lookout"], "stream": "connected",
        "since": "2026-01-01T09:00:00Z", "last_error": null, "events": 3,
        "last_event_at": "2026-01-01T11:58:00Z", "reconnects": 0});
    assert_eq!(
        section_view("docker", &docker, "pass", now()).summary,
        "event stream connected 3h ago; following agent-*, label:lookout; 3 events, last 2m ago"
    );
    let down = json!({"following": ["agent-*"], "stream": "disconnected",
        "since": "2026-01-01T11:59:00Z", "last_error": "connection refused", "events": 0,
        "last_event_at": null, "reconnects": 0});
    assert_eq!(
        section_view("docker", &down, "warn", now()).summary,
        "event stream disconnected 1m ago: connection refused; following agent-*; 0 events"
    );
}

#[test]
fn the_flow_line_counts_quiet_channels_waiting_chats_and_unconfirmed_deliveries() {
    let d = json!({"channels_followed": 2, "quiet_channels": 0, "unanswered_chats": 1,
                   "unconfirmed_chats": [{"chat": "c1", "count": 2}]});
    assert_eq!(
        section_view("flow", &d, "warn", now()).summary,
        "2 channels followed, 0 quiet, 1 chat waiting for an answer, 1 chat with deliveries never confirmed"
    );
    let calm = json!({"channels_followed": 1, "quiet_channels": 0, "unanswered_chats": 0,
                      "unconfirmed_chats": []});
    assert_eq!(
        section_view("flow", &calm, "pass", now()).summary,
        "1 channel followed, 0 quiet, 0 chats waiting for an answer"
    );
}
