//! Captured output, kept as head and tail with a count of what was cut.

use std::collections::VecDeque;

/// Keeps the first `head` and last `tail` bytes of a stream, and counts the bytes cut between.
#[derive(Debug, Clone)]
pub struct OutputBuffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_max: usize,
    tail_max: usize,
    cut: u64,
}

impl Default for OutputBuffer {
    fn default() -> Self {
        OutputBuffer::new(2048, 2048)
    }
}

impl OutputBuffer {
    /// A buffer keeping `head` + `tail` bytes at most.
    pub fn new(head: usize, tail: usize) -> OutputBuffer {
        OutputBuffer {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_max: head,
            tail_max: tail,
            cut: 0,
        }
    }

    /// Appends bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        let room = self.head_max - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        for &b in bytes {
            if self.tail.len() == self.tail_max {
                self.tail.pop_front();
                self.cut += 1;
            }
            self.tail.push_back(b);
        }
    }

    /// Bytes dropped from the middle.
    pub fn cut(&self) -> u64 {
        self.cut
    }

    /// The kept text: head, a line saying how much was cut (when anything was), tail.
    pub fn summary(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.cut > 0 {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("[… {} bytes cut …]\n", self.cut));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_says_what_was_cut() {
        let mut b = OutputBuffer::new(6, 6);
        b.push(b"line1\n");
        assert_eq!(b.summary(), "line1");
        for i in 2..=9 {
            b.push(format!("line{i}\n").as_bytes());
        }
        assert_eq!(b.cut(), 6 * 9 - 12);
        assert_eq!(b.summary(), "line1\n[… 42 bytes cut …]\nline9");
    }
}
