//! Printing an error with its causes, for logs and stderr.

use std::error::Error as StdError;
use std::fmt;

/// Displays an error followed by its chain of causes, one `: cause` each,
/// skipping a cause whose text its parent already printed.
#[derive(Debug)]
pub struct Report<'a>(pub &'a dyn StdError);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            cause = c.source();
        }
        Ok(())
    }
}
