//! A match's name, checked once where it enters (the command line, a control request): a
//! path-safe name, so every path built from it stays inside the match's directory.
//!
//! May call: `profile` (its name rule).

use std::fmt;

/// A valid match name: 1–32 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchId(String);

/// Why a name is not a match name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected {}", crate::profile::path_safe_name_rule())]
pub struct BadMatchId;

impl MatchId {
    pub fn parse(name: &str) -> Result<MatchId, BadMatchId> {
        if crate::profile::is_path_safe_name(name) {
            Ok(MatchId(name.to_string()))
        } else {
            Err(BadMatchId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for MatchId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MatchId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for MatchId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl fmt::Display for MatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_path_safe_names_are_match_ids() {
        assert_eq!(MatchId::parse("final-1").unwrap().as_str(), "final-1");
        for bad in ["", "../x", "Final", "a/b", "-x", &"x".repeat(33)] {
            assert_eq!(MatchId::parse(bad), Err(BadMatchId), "{bad:?}");
        }
        assert!(BadMatchId.to_string().starts_with("expected "));
    }
}
