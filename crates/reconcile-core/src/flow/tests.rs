use chrono::{TimeZone, Timelike};

use super::*;

/// Monday 2026-11-02 00:00 UTC.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn at(day: i64, h: u32, m: u32) -> DateTime<Utc> {
    monday() + TimeDelta::days(day) + TimeDelta::hours(h.into()) + TimeDelta::minutes(m.into())
}

fn received(channel: &str, chat: &str, id: &str) -> Event {
    Event::MessageReceived {
        channel: channel.into(),
        chat_jid: chat.into(),
        message_id: id.into(),
        group: None,
        sender: None,
        timestamp: None,
    }
}

fn answered(chat: &str) -> Event {
    Event::BotResponse {
        chat_jid: chat.into(),
        timestamp: None,
        message_id: None,
        channel: None,
        run_id: None,
    }
}

fn dispatched(chat: &str) -> Event {
    Event::BatchDispatched {
        chat_jid: chat.into(),
        message_ids: vec!["other-id".into()],
        run_id: None,
        group: None,
    }
}

/// A small deterministic generator (a 64-bit LCG), so the traffic is irregular and repeatable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A team channel's inbound traffic on day `day` (0 = a Monday), up to `until` when given:
/// weekdays 08:00–18:00 a message every 5–11 minutes (sometimes a burst of replies), weekends
/// 10:00–14:00 one every 15–25 minutes, and a stray message at 02:xx every third night. `end`
/// is the hour the working day ends.
fn day_traffic(
    day: i64,
    end: u32,
    rng: &mut Lcg,
    until: Option<DateTime<Utc>>,
) -> Vec<DateTime<Utc>> {
    let weekend = day.rem_euclid(7) >= 5;
    let (from, to, gap) = if weekend {
        (10, 14, (15, 10))
    } else {
        (8, end, (5, 6))
    };
    let mut out = Vec::new();
    if day % 3 == 0 {
        out.push(at(day, 2, rng.below(60) as u32));
    }
    let mut t = at(day, from, rng.below(5) as u32);
    while t < at(day, to, 0) {
        out.push(t);
        // One message in six starts a burst: two quick replies within the minute.
        if rng.below(6) == 0 {
            out.push(t + TimeDelta::seconds(20));
            out.push(t + TimeDelta::seconds(45));
        }
        t += TimeDelta::minutes((gap.0 + rng.below(gap.1 + 1)) as i64);
    }
    out.retain(|m| until.is_none_or(|u| *m <= u));
    out
}

/// Feeds `times` as messages on #slack in chat c1 (answered at once), evaluating the quiet
/// judgement every 15 minutes between messages from `judge_from`; returns what it found.
fn feed(
    flow: &mut Flow,
    limits: &FlowLimits,
    times: &[DateTime<Utc>],
    judge_from: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, String)> {
    let mut alerts = Vec::new();
    let mut n = 0;
    for (i, t) in times.iter().enumerate() {
        if let Some(prev) = times[..i].last() {
            let mut now = *prev + TimeDelta::minutes(15);
            while now < *t {
                if now >= judge_from {
                    for q in flow.quiet(limits, now) {
                        alerts.push((now, q.text));
                    }
                }
                now += TimeDelta::minutes(15);
            }
        }
        n += 1;
        flow.apply(&received("slack", "c1", &format!("m{n}")), *t, limits);
        flow.apply(&answered("c1"), *t, limits);
    }
    alerts
}

/// Three weeks of the team's traffic; on Wednesday of the third week the day ends an hour early.
fn three_weeks(rng: &mut Lcg) -> Vec<DateTime<Utc>> {
    (0..21)
        .flat_map(|d| day_traffic(d, if d == 16 { 17 } else { 18 }, rng, None))
        .collect()
}

#[test]
fn a_normal_fortnight_and_week_raise_nothing_nights_weekends_and_an_early_evening_included() {
    for seed in [7, 8, 9, 10] {
        normal_weeks(seed);
    }
}

fn normal_weeks(seed: u64) {
    let limits = FlowLimits::default();
    let mut flow = Flow::default();
    let mut rng = Lcg(seed);
    let times = three_weeks(&mut rng);
    let alerts = feed(&mut flow, &limits, &times, monday());
    assert!(alerts.is_empty(), "seed {seed}: {alerts:?}");
    // And it did learn: a weekday working hour has a usual gap near the traffic's (~8m, fewer
    // arrivals than messages: bursts count once), a night none.
    let r = &flow.channels["slack"];
    let busy = r.usual_gap(&limits, at(22, 11, 0)).unwrap();
    assert!(
        busy >= TimeDelta::minutes(6) && busy <= TimeDelta::minutes(10),
        "{busy:?}"
    );
    assert_eq!(r.usual_gap(&limits, at(22, 3, 0)), None, "no rate at night");
    assert_eq!(
        r.usual_gap(&limits, at(26, 11, 0)),
        None,
        "weekends: too few to judge"
    );
    // The first and last working hours borrow their quiet neighbour's rate: none.
    assert_eq!(r.usual_gap(&limits, at(22, 8, 30)), None);
    assert_eq!(r.usual_gap(&limits, at(22, 17, 30)), None);
}

#[test]
fn traffic_stopping_in_a_busy_hour_is_quiet_within_one_usual_gap_multiple_and_resolves() {
    // Several traffic draws: the bound holds for each, not for a lucky one.
    for seed in 1..=6 {
        busy_hour_stop(seed);
    }
}

fn busy_hour_stop(seed: u64) {
    let limits = FlowLimits::default();
    let mut flow = Flow::default();
    let mut rng = Lcg(seed);
    // Three weeks and three days as usual, then Thursday of the fourth week stops at 11:00.
    let mut times: Vec<DateTime<Utc>> = (0..24)
        .flat_map(|d| day_traffic(d, 18, &mut rng, None))
        .collect();
    times.extend(day_traffic(24, 18, &mut rng, Some(at(24, 11, 0))));
    assert!(feed(&mut flow, &limits, &times, monday()).is_empty());
    let last = *times.last().unwrap();
    // The usual gap of the hours the silence covers (it starts at 10:5x: two hours' rates).
    let r = &flow.channels["slack"];
    let usual = [last, last + TimeDelta::hours(1)]
        .map(|t| r.usual_gap(&limits, t).unwrap())
        .into_iter()
        .max()
        .unwrap();
    let bound = usual * 6 + TimeDelta::seconds(15);
    // The daemon's tick: every 15 s.
    let mut now = last;
    let first = loop {
        now += TimeDelta::seconds(15);
        if let Some(q) = flow.quiet(&limits, now).pop() {
            break q;
        }
        assert!(
            now - last <= bound,
            "seed {seed}: no alert within 6 × {usual:?}"
        );
    };
    // What `cargo test -p lookout-reconcile-core flow -- --nocapture` reports (docs/performance.md).
    eprintln!(
        "seed {seed}: quiet {}s after the last message (usual gap {}s, 6 × usual {}s)",
        (now - last).num_seconds(),
        usual.num_seconds(),
        (usual * 6).num_seconds()
    );
    assert!(now - last >= TimeDelta::minutes(30), "the floor holds");
    assert!(
        now - last <= bound,
        "seed {seed}: {:?} after the last message",
        now - last
    );
    assert_eq!(first.channel, "slack");
    assert_eq!(first.since, last);
    assert!(first.expected >= 6.0);
    assert!(
        first.text.starts_with("📭 #slack quiet for ")
            && first.text.contains(" (usually a message every "),
        "{}",
        first.text
    );
    // Still quiet later, with the silence in the text.
    let later = flow
        .quiet(&limits, last + TimeDelta::minutes(95))
        .pop()
        .unwrap();
    assert!(
        later
            .text
            .starts_with("📭 #slack quiet for 1h 35m (usually a message every "),
        "{}",
        later.text
    );
    // Traffic resumes: resolved.
    flow.apply(
        &received("slack", "c9", "back"),
        last + TimeDelta::minutes(100),
        &limits,
    );
    assert!(
        flow.quiet(&limits, last + TimeDelta::minutes(101))
            .is_empty()
    );
}

#[test]
fn nothing_is_judged_before_the_minimum_history() {
    // Every hour with a message is known here: only the history decides.
    let mut limits = FlowLimits {
        min_slot_messages: 1.0,
        ..FlowLimits::default()
    };
    let mut flow = Flow::default();
    let mut rng = Lcg(3);
    // Tuesday to Friday: four days, then a silent Monday morning.
    let times: Vec<DateTime<Utc>> = (1..5)
        .flat_map(|d| day_traffic(d, 18, &mut rng, None))
        .collect();
    feed(&mut flow, &limits, &times, monday());
    let monday_noon = at(7, 12, 0);
    assert!(flow.quiet(&limits, monday_noon).is_empty());
    let view = flow.channel_flows(&limits, monday_noon);
    assert!(view[0].learning, "{view:?}");
    // The same silence with a shorter minimum history is quiet.
    limits.min_history = Duration::from_secs(3 * 86_400);
    assert_eq!(flow.quiet(&limits, at(8, 12, 0)).len(), 1);
}

#[test]
fn a_disconnected_channel_is_left_to_i5_and_a_reconnect_restarts_the_silence() {
    let limits = FlowLimits::default();
    let mut flow = Flow::default();
    let mut rng = Lcg(5);
    let mut times: Vec<DateTime<Utc>> = (0..24)
        .flat_map(|d| day_traffic(d, 18, &mut rng, None))
        .collect();
    times.extend(day_traffic(24, 18, &mut rng, Some(at(24, 10, 0))));
    feed(&mut flow, &limits, &times, monday());
    let last = *times.last().unwrap();
    let ev = |up: bool| {
        if up {
            Event::ChannelConnected {
                channel: "slack".into(),
                reason: None,
            }
        } else {
            Event::ChannelDisconnected {
                channel: "slack".into(),
                reason: Some("socket closed".into()),
            }
        }
    };
    flow.apply(&ev(false), last + TimeDelta::minutes(5), &limits);
    assert!(flow.quiet(&limits, last + TimeDelta::hours(2)).is_empty());
    assert!(!flow.channel_flows(&limits, last)[0].connected);
    let up = last + TimeDelta::hours(2);
    flow.apply(&ev(true), up, &limits);
    assert!(flow.quiet(&limits, up + TimeDelta::minutes(29)).is_empty());
    let q = flow
        .quiet(&limits, up + TimeDelta::minutes(90))
        .pop()
        .unwrap();
    assert_eq!(q.since, up, "the silence counts from the reconnect");
}

#[test]
fn bursts_count_once_and_a_late_report_is_not_learned() {
    let limits = FlowLimits::default();
    let mut r = ChannelRhythm::default();
    let t = at(0, 9, 0);
    for s in 0..10 {
        r.inbound(t + TimeDelta::seconds(s * 10), &limits);
    }
    r.inbound(t + TimeDelta::minutes(5), &limits);
    assert_eq!(r.inbound_count(), 11);
    let arrivals: f64 = r.slots.iter().map(|s| s.arrivals).sum();
    assert_eq!(arrivals, 2.0, "ten messages in 90 s are one arrival");
    r.inbound(t, &limits);
    assert_eq!(r.last_inbound, Some(t + TimeDelta::minutes(5)));
    let observed: f64 = r.slots.iter().map(|s| s.observed).sum();
    assert_eq!(observed, 300.0);
}

#[test]
fn a_message_waits_until_its_chat_is_answered() {
    let limits = FlowLimits::default();
    let mut flow = Flow::default();
    let t = at(0, 9, 0);
    flow.apply(&received("whatsapp", "c1", "m1"), t, &limits);
    flow.apply(
        &received("whatsapp", "c1", "m2"),
        t + TimeDelta::minutes(1),
        &limits,
    );
    flow.apply(
        &received("whatsapp", "c2", "m3"),
        t + TimeDelta::minutes(2),
        &limits,
    );
    assert_eq!(
        flow.next_unanswered_due(&limits),
        Some(t + TimeDelta::minutes(10))
    );
    assert!(
        flow.unanswered(&limits, t + TimeDelta::seconds(599))
            .is_empty()
    );
    let late = flow.unanswered(&limits, t + TimeDelta::minutes(12));
    let texts: Vec<&str> = late.iter().map(|u| u.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "💬 2 message(s) in chat c1 unanswered for 12m",
            "💬 1 message(s) in chat c2 unanswered for 10m"
        ]
    );
    assert_eq!(late[0].waiting.channel, "whatsapp");
    // A batch for the chat answers every message before it, whatever ids it lists.
    assert!(flow.apply(&dispatched("c1"), t + TimeDelta::minutes(12), &limits));
    flow.apply(&answered("c2"), t + TimeDelta::minutes(13), &limits);
    assert!(flow.unanswered(&limits, t + TimeDelta::hours(1)).is_empty());
    assert_eq!(flow.next_unanswered_due(&limits), None);
    // A message after the answer waits again.
    flow.apply(
        &received("whatsapp", "c1", "m4"),
        t + TimeDelta::minutes(14),
        &limits,
    );
    assert_eq!(
        flow.unanswered(&limits, t + TimeDelta::minutes(25)).len(),
        1
    );
    // The view per channel counts it.
    let v = flow.channel_flows(&limits, t + TimeDelta::minutes(25));
    assert_eq!(
        (v[0].unanswered, v[0].oldest_unanswered),
        (1, Some(t + TimeDelta::minutes(14)))
    );
}

#[test]
fn ignored_chats_and_a_zero_answer_within_are_never_judged() {
    let mut limits = FlowLimits {
        ignore_chats: vec!["lobby".into()],
        ..FlowLimits::default()
    };
    let mut flow = Flow::default();
    let t = at(0, 9, 0);
    flow.apply(&received("slack", "lobby", "m1"), t, &limits);
    flow.apply(&received("slack", "dm", "m2"), t, &limits);
    let late = flow.unanswered(&limits, t + TimeDelta::hours(1));
    assert_eq!(
        late.iter().map(|u| u.chat.as_str()).collect::<Vec<_>>(),
        ["dm"]
    );
    limits.answer_within = Duration::ZERO;
    assert!(flow.unanswered(&limits, t + TimeDelta::hours(1)).is_empty());
    assert_eq!(flow.next_unanswered_due(&limits), None);
    // Old waits can be forgotten (a first start over an old log).
    flow.forget_unanswered_before(t + TimeDelta::seconds(1));
    assert!(flow.chats.is_empty());
}

#[test]
fn the_state_survives_a_round_trip_through_json() {
    let limits = FlowLimits::default();
    let mut flow = Flow::default();
    let mut rng = Lcg(9);
    let times: Vec<DateTime<Utc>> = (0..3)
        .flat_map(|d| day_traffic(d, 18, &mut rng, None))
        .collect();
    feed(&mut flow, &limits, &times, monday());
    flow.apply(&received("slack", "c2", "x"), at(3, 9, 0), &limits);
    let text = serde_json::to_string(&flow).unwrap();
    let back: Flow = serde_json::from_str(&text).unwrap();
    assert_eq!(back, flow);
    // Compact enough to save often: a channel is its 168 slots.
    assert!(text.len() < 12_000, "{} bytes", text.len());
    // An empty value (a first start) is the empty state.
    assert_eq!(serde_json::from_str::<Flow>("{}").unwrap(), Flow::default());
}

#[test]
fn hours_of_the_week_and_short_durations() {
    assert_eq!(hour_of_week(monday()), 0);
    assert_eq!(hour_of_week(at(6, 23, 59)), 167);
    assert_eq!(hour_of_week(at(2, 11, 0)), 59);
    assert_eq!(at(2, 11, 0).hour(), 11);
    let s = |secs: i64| short(TimeDelta::seconds(secs));
    assert_eq!(
        [
            s(40),
            s(12 * 60 + 30),
            s(3 * 3600),
            s(3 * 3600 + 300),
            s(2 * 86_400),
            s(2 * 86_400 + 4 * 3600)
        ],
        ["40s", "12m", "3h", "3h 5m", "2d", "2d 4h"]
    );
}
