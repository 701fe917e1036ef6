use chrono::TimeZone;

use super::*;

fn rule(extra: &str) -> LogRule {
    let text = format!("[[logs]]\nname = \"r\"\nfile = \"host.log\"\n{extra}");
    lookout_config::parse(&text, "test.toml")
        .unwrap()
        .logs
        .remove(0)
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn fired(step: Option<Step>) -> Firing {
    match step {
        Some(Step::Fire(f)) => f,
        other => panic!("expected a firing, got {other:?}"),
    }
}

#[test]
fn one_match_fires_with_its_line_and_other_lines_do_nothing() {
    let mut m = Matcher::new(&rule("pattern = 'ValidationError'\n")).unwrap();
    assert_eq!(m.line("INFO starting", at(0)), None);
    let f = fired(m.line("pydantic ValidationError: 1 error", at(1)));
    assert!(f.first);
    assert_eq!(f.matches, 1);
    assert_eq!(f.lines, ["pydantic ValidationError: 1 error"]);
    assert!(m.firing());
    // While firing, more matches refresh the text at most once a minute.
    assert_eq!(m.line("ValidationError again", at(2)), None);
    let f = fired(m.line("ValidationError third", at(62)));
    assert!(!f.first);
    assert_eq!(f.matches, 3, "matches since it fired");
    assert_eq!(
        f.lines,
        [
            "pydantic ValidationError: 1 error",
            "ValidationError again",
            "ValidationError third"
        ]
    );
}

#[test]
fn count_within_fires_only_when_enough_matches_are_in_the_window() {
    let mut m = Matcher::new(&rule("pattern = ' 429 '\ncount = 3\nwithin = '1m'\n")).unwrap();
    assert_eq!(m.line("POST 429 x", at(0)), None);
    assert_eq!(m.line("POST 429 x", at(30)), None);
    // The first has left the window (more than 60 s old): still two.
    assert_eq!(m.line("POST 429 x", at(61)), None);
    let f = fired(m.line("POST 429 y", at(62)));
    assert!(f.first);
    assert_eq!(f.matches, 3);
    assert_eq!(f.lines.len(), LAST_LINES);
    assert_eq!(f.lines.last().unwrap(), "POST 429 y");
}

#[test]
fn a_resolve_line_resolves_a_firing_alert_and_is_nothing_otherwise() {
    let mut m = Matcher::new(&rule(
        "pattern = 'disconnected'\nresolve = 'connected to slack'\ncount = 2\nwithin = '10m'\n",
    ))
    .unwrap();
    // Not firing: a reconnect neither resolves nor resets the count of drops.
    assert_eq!(m.line("socket disconnected", at(0)), None);
    assert_eq!(m.line("now connected to slack", at(1)), None);
    assert!(fired(m.line("socket disconnected", at(2))).first);
    assert_eq!(
        m.line("now connected to slack", at(3)),
        Some(Step::Resolve(Some("now connected to slack".into())))
    );
    assert!(!m.firing());
    // The window was cleared by the resolve: one drop again is not enough.
    assert_eq!(m.line("socket disconnected", at(4)), None);
    // With a resolve pattern, time alone never resolves.
    assert!(fired(m.line("socket disconnected", at(5))).first);
    assert_eq!(m.tick(at(5 + 86_400)), None);
    assert!(m.firing());
}

#[test]
fn without_resolve_a_quiet_spell_resolves() {
    let mut m = Matcher::new(&rule("pattern = 'boom'\nwithin = '5m'\n")).unwrap();
    assert_eq!(m.tick(at(0)), None);
    assert!(fired(m.line("boom", at(0))).first);
    assert_eq!(m.tick(at(29)), None);
    // A later match pushes the quiet spell on.
    assert_eq!(m.line("boom", at(30)), None);
    assert_eq!(m.tick(at(300)), None);
    assert_eq!(m.tick(at(329)), None);
    assert_eq!(m.tick(at(330)), Some(Step::Resolve(None)));
    assert!(!m.firing());
    assert_eq!(m.tick(at(10_000)), None, "resolved once");
    // The next match is a new firing, counted afresh.
    let f = fired(m.line("boom", at(10_001)));
    assert!(f.first);
    assert_eq!(f.matches, 1);
}

#[test]
fn the_default_quiet_spell_is_ten_minutes_and_a_restored_alert_counts_from_the_start() {
    let mut m = Matcher::new(&rule("pattern = 'boom'\n")).unwrap();
    m.restore_firing(at(0));
    assert!(m.firing());
    assert_eq!(m.tick(at(599)), None);
    assert_eq!(m.tick(at(600)), Some(Step::Resolve(None)));
}

#[test]
fn lines_are_cut_and_cleaned_for_the_alert() {
    let long = "x".repeat(LINE_CHARS + 50);
    let c = cut(&format!("  \u{1b}[31mERROR\u{1b}[0m {long}\r"));
    assert!(c.starts_with("ERROR xxx"), "{c}");
    assert_eq!(c.chars().count(), LINE_CHARS + 1);
    assert!(c.ends_with('…'));
    assert_eq!(cut("ünïcode ✓"), "ünïcode ✓");
}

#[test]
fn the_alert_names_the_rule_its_source_and_its_last_lines() {
    let r = rule("pattern = 'boom'\n");
    let one = Firing {
        first: true,
        matches: 1,
        lines: vec!["boom at start".into()],
    };
    assert_eq!(alert_text(&r, &one), "📜 r in host.log: boom at start");
    let r = rule("pattern = '429'\ncount = 5\nwithin = '1m'\n");
    let many = Firing {
        first: true,
        matches: 7,
        lines: vec!["a 429".into(), "b 429".into(), "c 429".into()],
    };
    assert_eq!(
        alert_text(&r, &many),
        "📜 r: 7 matches within 1m in host.log, the last 3:\n  a 429\n  b 429\n  c 429"
    );
    let text = "[[logs]]\nname = \"gw\"\ncontainer = \"litellm\"\npattern = 'x'\n";
    let r = lookout_config::parse(text, "t").unwrap().logs.remove(0);
    let refreshed = Firing {
        first: false,
        matches: 4,
        lines: vec!["x1".into(), "x2".into()],
    };
    assert_eq!(
        alert_text(&r, &refreshed),
        "📜 gw: 4 matches in container litellm, the last 2:\n  x1\n  x2"
    );
}
