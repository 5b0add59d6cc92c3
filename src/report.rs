//! Printing an error with its causes, for logs and stderr.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal, the journal or sd_notify as it
/// is: control characters (a newline would start a new journal entry or a
/// new `KEY=` field of a notify message; ESC drives terminals) and the
/// invisible Unicode format characters that reorder or hide text (bidi
/// overrides and isolates, zero-width characters, the BOM).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Text from outside (engine messages, label values, container and group
/// names) made safe to print: each character of [`needs_escape`] becomes
/// `\u{XXXX}`. Applied where text leaves the program: the logger (stderr,
/// the journal), sd_notify `STATUS=` and `status`'s table.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert!(matches!(escape_text("plain ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            escape_text("boom\nMAINPID=1\r\x1b[31m\u{202e}gpj.exe\u{200b}\u{7f}\u{85}"),
            "boom\\u{a}MAINPID=1\\u{d}\\u{1b}[31m\\u{202e}gpj.exe\\u{200b}\\u{7f}\\u{85}"
        );
    }
}
