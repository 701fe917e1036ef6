//! Noise control: a `container_status` is worth storing only when the status changed.
//!
//! The seed's host reported every working agent's container every 5 s — 720 rows an hour each,
//! almost all "running". [`ContainerStatusFilter`] remembers the last status per container and
//! admits a report only when it differs (the bench `container_filter` measures the drop).

use std::collections::HashMap;

/// Remembers the last status seen per container.
#[derive(Debug, Clone, Default)]
pub struct ContainerStatusFilter {
    last: HashMap<String, String>,
    seen: u64,
    admitted: u64,
}

impl ContainerStatusFilter {
    /// An empty filter (every container's first status is admitted).
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the filter the last stored status of a container (e.g. read from the log at start),
    /// without counting it.
    pub fn seed(&mut self, container: &str, status: &str) {
        self.last.insert(container.to_owned(), status.to_owned());
    }

    /// Whether a report of `status` for `container` should be stored: true when it differs from the
    /// last one admitted (or is the first).
    pub fn admit(&mut self, container: &str, status: &str) -> bool {
        self.seen += 1;
        let changed = match self.last.get_mut(container) {
            Some(last) if last == status => false,
            Some(last) => {
                status.clone_into(last);
                true
            }
            None => {
                self.last.insert(container.to_owned(), status.to_owned());
                true
            }
        };
        if changed {
            self.admitted += 1;
        }
        changed
    }

    /// Forgets a container (removed for good), so its map entry does not outlive it.
    pub fn forget(&mut self, container: &str) {
        self.last.remove(container);
    }

    /// Reports seen and admitted so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.seen, self.admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_pass() {
        let mut f = ContainerStatusFilter::new();
        f.seed("b", "running");
        let got: Vec<bool> = [
            ("a", "running"),
            ("a", "running"),
            ("a", "exited"),
            ("a", "exited"),
            ("a", "running"),
            ("b", "running"),
        ]
        .iter()
        .map(|(c, s)| f.admit(c, s))
        .collect();
        assert_eq!(got, [true, false, true, false, true, false]);
        assert_eq!(f.counts(), (6, 3));
    }
}
