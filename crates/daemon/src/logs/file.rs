//! Following a file as `tail -F` does, by polling: appended lines are read; a file truncated in
//! place (`copytruncate`) is read again from its start — found by its size below what was read,
//! or, when it was written past that again before the poll, by the last bytes read no longer being
//! where they were; a path that now names another file (renamed away and created anew) has the old
//! file read to its end, then the new one from its start. A path that does not exist yet is waited
//! for. A file deleted (its path gone and no name left to it) is read to its end and closed, as
//! `tail -F` does, so its space is freed and its path is waited for again.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A line longer than this is cut into pieces of this size.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// At most this much is read in one poll; the rest is read by the next one, at once.
const MAX_READ: u64 = 4 * 1024 * 1024;
/// How many of the last bytes read are kept to see that they are still there (no truncation).
const TAIL: usize = 64;

/// The file open now.
#[derive(Debug)]
struct Opened {
    file: File,
    /// Its identity (device, inode): another one at the path is a rotation.
    id: (u64, u64),
    /// How far it has been read.
    offset: u64,
    /// The last bytes read (at most [`TAIL`]), ending at `offset`.
    tail: Vec<u8>,
}

impl Opened {
    /// Whether the file was truncated since it was read up to `offset`: it is shorter, or the
    /// bytes before `offset` are not the ones read (truncated and written past it again).
    fn truncated(&self) -> io::Result<bool> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            return Ok(true);
        }
        let mut now = vec![0u8; self.tail.len()];
        let start = self.offset - self.tail.len() as u64;
        match self.file.read_exact_at(&mut now, start) {
            Ok(()) => Ok(now != self.tail),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// One followed file.
#[derive(Debug)]
pub(crate) struct FileFollower {
    path: PathBuf,
    open: Option<Opened>,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
    /// Whether the first look (which starts at the end) has been taken.
    started: bool,
    /// Whether the last poll stopped before the end (read again at once).
    behind: bool,
}

impl FileFollower {
    /// Follows `path`; nothing is read until [`FileFollower::poll`].
    pub(crate) fn new(path: impl Into<PathBuf>) -> FileFollower {
        FileFollower {
            path: path.into(),
            open: None,
            partial: Vec::new(),
            started: false,
            behind: false,
        }
    }

    /// The path followed.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is open (false: not there yet, or unreadable).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Whether the last poll left something to read.
    pub(crate) fn behind(&self) -> bool {
        self.behind
    }

    /// The complete lines written since the last poll. The first poll opens the file at its end:
    /// only what is written from then on counts; a file that appears later is read from its
    /// start. An error is the path's (not there, not readable) while no file is open.
    pub(crate) fn poll(&mut self) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        self.behind = false;
        let first = !self.started;
        self.started = true;
        if let Some(open) = &mut self.open {
            if open.truncated()? {
                // Truncated in place: what is there now was written since.
                open.file.seek(SeekFrom::Start(0))?;
                open.offset = 0;
                open.tail.clear();
                self.partial.clear();
            }
            self.behind = read_new(open, &mut self.partial, &mut lines)?;
            if self.behind {
                return Ok(lines);
            }
        }
        // With a file open, a path that cannot be looked at is a rotation under way (renamed
        // away, not created anew yet): the old file is followed meanwhile.
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if self.open.is_some() => {
                // Deleted, not renamed: nothing can write it under a name any more.
                let deleted = self
                    .open
                    .as_ref()
                    .is_some_and(|o| o.file.metadata().is_ok_and(|m| m.nlink() == 0));
                if e.kind() == io::ErrorKind::NotFound && deleted {
                    if !self.partial.is_empty() {
                        lines.push(text(&std::mem::take(&mut self.partial)));
                    }
                    self.open = None;
                }
                return Ok(lines);
            }
            Err(e) => return Err(self.not_opened(e, first)),
        };
        let id = (meta.dev(), meta.ino());
        if self.open.as_ref().is_some_and(|o| o.id == id) {
            return Ok(lines);
        }
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(_) if self.open.is_some() => return Ok(lines),
            Err(e) => return Err(self.not_opened(e, first)),
        };
        // Another file at the path (or the first one): the old one was read to its end above; its
        // last line, unfinished, is a line now.
        if !self.partial.is_empty() {
            lines.push(text(&std::mem::take(&mut self.partial)));
        }
        let offset = if first {
            file.seek(SeekFrom::End(0))?
        } else {
            0
        };
        let tail = if offset > 0 {
            let keep = offset.min(TAIL as u64);
            let mut tail = vec![0u8; keep as usize];
            file.read_exact_at(&mut tail, offset - keep)?;
            tail
        } else {
            Vec::new()
        };
        let mut open = Opened {
            file,
            id,
            offset,
            tail,
        };
        self.behind = read_new(&mut open, &mut self.partial, &mut lines)?;
        self.open = Some(open);
        Ok(lines)
    }

    /// The path could not be opened: only a file that is not there yet is read from its start
    /// when it comes; one there but unreadable (permissions) is still opened at its end, so its
    /// old lines are not read as new once it can be read.
    fn not_opened(&mut self, e: io::Error, first: bool) -> io::Error {
        if first && e.kind() != io::ErrorKind::NotFound {
            self.started = false;
        }
        e
    }
}

/// Reads what `open` has past its offset into `lines` (complete lines; the rest stays in
/// `partial`); true when it stopped at [`MAX_READ`] before the end.
fn read_new(open: &mut Opened, partial: &mut Vec<u8>, lines: &mut Vec<String>) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0u64;
    loop {
        if read >= MAX_READ {
            return Ok(true);
        }
        let n = match open.file.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        read += n as u64;
        open.offset += n as u64;
        open.tail.extend_from_slice(&buf[n.saturating_sub(TAIL)..n]);
        let extra = open.tail.len().saturating_sub(TAIL);
        open.tail.drain(..extra);
        split(&buf[..n], partial, lines);
    }
}

/// Appends the lines of `bytes` (after what `partial` holds) to `lines`, keeping an unfinished
/// last line in `partial`; a line longer than [`MAX_LINE`] is cut.
pub(crate) fn split(bytes: &[u8], partial: &mut Vec<u8>, lines: &mut Vec<String>) {
    let mut rest = bytes;
    while let Some(end) = rest.iter().position(|b| *b == b'\n') {
        partial.extend_from_slice(&rest[..end]);
        cut_long(partial, lines);
        lines.push(text(partial));
        partial.clear();
        rest = &rest[end + 1..];
    }
    partial.extend_from_slice(rest);
    cut_long(partial, lines);
}

/// Hands on the [`MAX_LINE`]-sized pieces of a line too long, keeping the rest in `partial`.
fn cut_long(partial: &mut Vec<u8>, lines: &mut Vec<String>) {
    while partial.len() > MAX_LINE {
        let tail = partial.split_off(MAX_LINE);
        lines.push(text(partial));
        *partial = tail;
    }
}

/// A line's bytes as text: invalid UTF-8 replaced, a trailing `\r` dropped.
pub(crate) fn text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of a whole text, as a follower would read them (`lookout logs test`).
pub(crate) fn lines_of(bytes: &[u8]) -> Vec<String> {
    let mut partial = Vec::new();
    let mut lines = Vec::new();
    split(bytes, &mut partial, &mut lines);
    if !partial.is_empty() {
        lines.push(text(&partial));
    }
    lines
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
