//! The follower on real files in a temporary directory: each change is made the way a host or
//! logrotate makes it, then one poll says what was read.

use std::io::Write;

use super::*;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn it_starts_at_the_end_and_reads_what_is_appended_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    append(&log, "old line 1\nold line 2\n");
    let mut f = FileFollower::new(&log);
    assert_eq!(
        f.poll().unwrap(),
        Vec::<String>::new(),
        "what was there counts not"
    );
    assert!(f.is_open());
    append(&log, "new 1\nnew 2\r\nhalf");
    assert_eq!(f.poll().unwrap(), ["new 1", "new 2"]);
    assert_eq!(
        f.poll().unwrap(),
        Vec::<String>::new(),
        "an unfinished line waits"
    );
    append(&log, " and the rest\n");
    assert_eq!(f.poll().unwrap(), ["half and the rest"]);
}

#[test]
fn a_file_that_appears_later_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later.log");
    let mut f = FileFollower::new(&log);
    let e = f.poll().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(!f.is_open());
    append(&log, "first\n");
    assert_eq!(f.poll().unwrap(), ["first"]);
}

#[test]
fn a_rotation_reads_the_old_file_to_its_end_then_the_new_one_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    append(&log, "");
    let mut f = FileFollower::new(&log);
    f.poll().unwrap();
    append(&log, "before\n");
    // logrotate's rename: the host still writes to the old file for a moment.
    std::fs::rename(&log, dir.path().join("host.log.1")).unwrap();
    append(
        &dir.path().join("host.log.1"),
        "late to the old file\nunfinished",
    );
    assert_eq!(f.poll().unwrap(), ["before", "late to the old file"]);
    // The new file appears; the old one's unfinished line ends with it.
    append(&log, "in the new file\n");
    assert_eq!(
        f.poll().unwrap(),
        ["unfinished", "in the new file"],
        "the old file's last line, then the new file from its start"
    );
    append(&log, "more\n");
    assert_eq!(f.poll().unwrap(), ["more"]);
    // A second rotation, the new file created in the same poll interval as the last lines.
    append(&log, "last of the second\n");
    std::fs::rename(&log, dir.path().join("host.log.2")).unwrap();
    append(&log, "third file\n");
    assert_eq!(f.poll().unwrap(), ["last of the second", "third file"]);
}

#[test]
fn a_truncation_reads_the_file_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    append(&log, "a long line that was there before\n");
    let mut f = FileFollower::new(&log);
    f.poll().unwrap();
    append(&log, "appended\n");
    assert_eq!(f.poll().unwrap(), ["appended"]);
    // copytruncate: same file, emptied, then written again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, "after\n");
    assert_eq!(f.poll().unwrap(), ["after"]);
    append(&log, "and on\n");
    assert_eq!(f.poll().unwrap(), ["and on"]);
    // Truncated and written past the old end again before the next poll: the bytes read last
    // are not where they were, so it is read from the start all the same.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(
        &log,
        "a line longer than all that was there before the truncation\n",
    );
    assert_eq!(
        f.poll().unwrap(),
        ["a line longer than all that was there before the truncation"]
    );
    assert_eq!(f.poll().unwrap(), Vec::<String>::new());
}

#[test]
fn long_lines_are_cut_and_big_writes_are_read_over_several_polls() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    append(&log, "");
    let mut f = FileFollower::new(&log);
    f.poll().unwrap();
    append(&log, &format!("{}\n", "y".repeat(MAX_LINE + 10)));
    let lines = f.poll().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), MAX_LINE);
    assert_eq!(lines[1].len(), 10);
    // More than one poll's worth: read in pieces, nothing lost.
    let line = format!("{}\n", "z".repeat(1000));
    let n = (MAX_READ as usize / line.len()) * 2;
    append(&log, &line.repeat(n));
    let mut got = f.poll().unwrap().len();
    assert!(f.behind());
    while f.behind() {
        got += f.poll().unwrap().len();
    }
    assert_eq!(got, n);
}

#[test]
fn a_whole_text_splits_as_the_follower_reads_it() {
    assert_eq!(lines_of(b"a\r\nb\n\nc"), ["a", "b", "", "c"]);
    assert_eq!(lines_of(b""), Vec::<String>::new());
    assert_eq!(lines_of(b"\xffok\n"), ["\u{fffd}ok"]);
}

#[test]
fn a_deleted_file_is_read_to_its_end_and_closed_then_its_path_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gone.log");
    append(&log, "before\n");
    let mut f = FileFollower::new(&log);
    f.poll().unwrap();
    // Written and deleted between two polls: the last line is read, then the file let go.
    let mut writer = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writer.write_all(b"last words\nunfinished").unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(f.poll().unwrap(), ["last words", "unfinished"]);
    assert!(!f.is_open(), "a deleted file is not held open");
    assert_eq!(f.poll().unwrap_err().kind(), io::ErrorKind::NotFound);
    // A new file at the path is read from its start.
    append(&log, "reborn\n");
    assert_eq!(f.poll().unwrap(), ["reborn"]);
    // Renamed away (a rotation), it still has a name: followed until the new file comes.
    std::fs::rename(&log, dir.path().join("gone.log.1")).unwrap();
    writer = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("gone.log.1"))
        .unwrap();
    writer.write_all(b"after the rename\n").unwrap();
    assert_eq!(f.poll().unwrap(), ["after the rename"]);
    assert!(f.is_open());
}

#[test]
fn a_path_there_but_unreadable_at_the_start_is_opened_at_its_end_once_readable() {
    let dir = tempfile::tempdir().unwrap();
    // Not a NotFound error (ENOTDIR; as root, permissions cannot refuse a read): the file may hold
    // old lines that must not be read as new.
    let parent = dir.path().join("logs");
    std::fs::write(&parent, "a file where a directory should be").unwrap();
    let log = parent.join("host.log");
    let mut f = FileFollower::new(&log);
    let e = f.poll().unwrap_err();
    assert_ne!(e.kind(), io::ErrorKind::NotFound, "{e}");
    std::fs::remove_file(&parent).unwrap();
    std::fs::create_dir(&parent).unwrap();
    append(&log, "old line, there before it could be read\n");
    assert_eq!(f.poll().unwrap(), Vec::<String>::new());
    append(&log, "new\n");
    assert_eq!(f.poll().unwrap(), ["new"]);
}
