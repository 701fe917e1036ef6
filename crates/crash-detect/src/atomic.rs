//! Atomic writes of small state files: [`lookout_common::write_atomic`].

pub(crate) use lookout_common::write_atomic;
