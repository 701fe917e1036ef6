//! The alert lifecycle: one state per condition (rule + subject), kept in the store.
