//! Unit tests of keys, fold rules and the lifecycle's helpers.

use super::*;

#[test]
fn a_key_reads_back_from_its_stored_form() {
    let k = AlertKey::new("watchdog_shared", "docker engine");
    assert_eq!(k.to_string(), "watchdog_shared:docker engine");
    assert_eq!(AlertKey::parse(&k.to_string()), Some(k.clone()));
    assert_eq!(
        serde_json::to_value(&k).unwrap(),
        "watchdog_shared:docker engine"
    );
    // The subject may hold a `:`; the rule never does.
    let run = AlertKey::parse("task-run:42:finished").unwrap();
    assert_eq!(
        (run.rule.as_str(), run.subject.as_str()),
        ("task-run", "42:finished")
    );
    assert_eq!(run.to_string(), "task-run:42:finished");
    assert_eq!(AlertKey::parse("I5:"), Some(AlertKey::new("I5", "")));
    assert_eq!(AlertKey::parse("no-colon"), None);
    assert_eq!(AlertKey::parse(":subject"), None);
}

#[test]
fn a_fold_rule_applies_to_its_rules_for_subjects_that_depend_on_its_cause() {
    let r = FoldRule {
        cause: AlertKey::new("watchdog_shared", "docker engine"),
        folds: &["watchdog_circuit", "task-failed"],
        when: Dependency("docker engine"),
        drops_messages: true,
    };
    let engine = [Dependency("docker engine")];
    assert!(r.applies("task-failed", &engine));
    assert!(!r.applies("task-overdue", &engine), "not a rule it folds");
    assert!(
        !r.applies("task-failed", &[Dependency("gateway")]),
        "another dependency"
    );
    assert!(!r.applies("task-failed", &[]));
}
