//! The Docker engine for the end-to-end tests: the test image (made from Debian's static busybox by
//! `scripts/test-image.sh`, no registry needed) and the `docker` CLI.

use std::path::Path;
use std::process::Command;

/// The image the tests' containers run.
pub const IMAGE: &str = "lookout-test/busybox";

/// Whether the engine and [`IMAGE`] are there (making the image when it is not); in CI their
/// absence fails the test instead of skipping it.
pub fn engine() -> bool {
    let inspect = || {
        Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if inspect() {
        return true;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-image.sh");
    let made = Command::new("bash")
        .arg(script)
        .output()
        .is_ok_and(|o| o.status.success());
    if made && inspect() {
        return true;
    }
    assert!(
        !lookout_common::in_ci(),
        "CI is set but the Docker engine or {IMAGE} is not usable"
    );
    eprintln!("skipped: no Docker engine or {IMAGE} here (outside CI)");
    false
}

/// Runs `docker ARGS`, which must succeed; its trimmed standard output.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
