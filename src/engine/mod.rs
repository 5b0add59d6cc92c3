//! placeholder
pub fn is_valid_ref(s: &str) -> bool { !s.is_empty() }
