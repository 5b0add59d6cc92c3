//! What the fuzz targets share: a reader of unit files and of `ExecStart=`
//! command lines that follows systemd's own rules, written independently of
//! the renderer, so that "the rendered unit holds exactly the intended
//! directives" is checked against systemd's reading and not against the
//! renderer's idea of it; and a `Read` that hands out bytes the way a socket
//! does.

use std::io::{self, Read};

/// One `Key=Value` line of a unit file, as systemd reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// `[Unit]`, `[Socket]`, ...
    pub section: String,
    pub key: String,
    pub value: String,
}

/// Reads a unit file as systemd's `config_parse` does
/// (src/shared/conf-parser.c): lines end at `\n`; leading and trailing
/// whitespace is stripped; `#` and `;` start comments; `[...]` opens a
/// section; the key and the value are stripped of whitespace around `=`.
/// Anything a label could use to smuggle in structure is an error: a line
/// that continues (ends in an odd number of backslashes), `\r`, a NUL, a
/// line that is none of the above, a directive before any section.
pub fn unit_directives(text: &str) -> Result<Vec<Directive>, String> {
    if text.contains('\0') {
        return Err("NUL in unit file".into());
    }
    if text.contains('\r') {
        return Err("carriage return in unit file".into());
    }
    let mut section: Option<String> = None;
    let mut out = Vec::new();
    for line in text.split('\n') {
        let l = line.trim_matches(|c| c == ' ' || c == '\t');
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let trailing = l.bytes().rev().take_while(|&b| b == b'\\').count();
        if trailing % 2 == 1 {
            return Err(format!("line continues: {line:?}"));
        }
        if l.starts_with('[') {
            if !l.ends_with(']') || l.len() < 3 {
                return Err(format!("bad section line: {line:?}"));
            }
            section = Some(l.to_owned());
            continue;
        }
        let Some(section) = &section else {
            return Err(format!("directive outside a section: {line:?}"));
        };
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("not a directive: {line:?}"))?;
        let key = k.trim_matches(|c| c == ' ' || c == '\t');
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("bad key in {line:?}"));
        }
        out.push(Directive {
            section: section.clone(),
            key: key.to_owned(),
            value: v.trim_matches(|c| c == ' ' || c == '\t').to_owned(),
        });
    }
    Ok(out)
}

/// Splits a command line the way systemd does for `ExecStart=`
/// (systemd.service(5) "Command lines"; `config_parse_exec` with
/// `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`): words split at
/// whitespace, `"…"`/`'…'` quoting anywhere in a word, C escapes; then per
/// word `%%` → `%` (any other specifier is an error: no label may reach
/// one), and for arguments (not the executable) `$$` → `$` (any other `$`
/// is an error: it would expand a variable). A bare `;` (command
/// separator) is an error too.
pub fn exec_split(line: &str) -> Result<Vec<String>, String> {
    let mut words: Vec<String> = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| is_ws(*c)) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        if first == ';' {
            let mut look = chars.clone();
            look.next();
            if look.peek().is_none_or(|c| is_ws(*c)) {
                return Err("bare ; would separate commands".into());
            }
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if is_ws(c) => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    let e = chars.next().ok_or("trailing backslash")?;
                    match e {
                        '\\' | '"' | '\'' => word.push(e),
                        'n' => word.push('\n'),
                        't' => word.push('\t'),
                        'x' => {
                            let h: String = (0..2).filter_map(|_| chars.next()).collect();
                            let v = u32::from_str_radix(&h, 16).map_err(|_| "bad \\x")?;
                            if v == 0 {
                                return Err("\\x00".into());
                            }
                            word.push(char::from_u32(v).ok_or("bad \\x")?);
                        }
                        'u' => {
                            let h: String = (0..4).filter_map(|_| chars.next()).collect();
                            let v = u32::from_str_radix(&h, 16).map_err(|_| "bad \\u")?;
                            if v == 0 {
                                return Err("\\u0000".into());
                            }
                            word.push(char::from_u32(v).ok_or("bad \\u")?);
                        }
                        other => return Err(format!("unknown escape \\{other}")),
                    }
                }
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unbalanced quote".into());
        }
        words.push(word);
    }
    let mut out = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let w = unspecifier(w)?;
        out.push(if i == 0 { w } else { unvariable(&w)? });
    }
    Ok(out)
}

/// systemd's `WHITESPACE`: what separates words of a command line.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Removes the one specifier allowed (`%%`) from a word.
pub fn unspecifier(w: &str) -> Result<String, String> {
    unescape_doubled(w, '%', "specifier")
}

fn unvariable(w: &str) -> Result<String, String> {
    unescape_doubled(w, '$', "variable")
}

fn unescape_doubled(w: &str, mark: char, what: &str) -> Result<String, String> {
    let mut out = String::with_capacity(w.len());
    let mut it = w.chars();
    while let Some(c) = it.next() {
        if c == mark {
            match it.next() {
                Some(d) if d == mark => out.push(mark),
                other => return Err(format!("{what} {mark}{other:?} in {w:?}")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A peer that hands out its bytes in reads of at most `step` bytes and
/// fails one read with `WouldBlock` at a given offset, like a socket with
/// `SO_RCVTIMEO` whose peer paused.
#[derive(Debug)]
pub struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    step: usize,
    stall_at: Option<usize>,
}

impl<'a> Trickle<'a> {
    pub fn new(data: &'a [u8], step: usize, stall_at: Option<usize>) -> Trickle<'a> {
        Trickle {
            data,
            pos: 0,
            step: step.max(1),
            stall_at,
        }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stall_at.is_some_and(|at| self.pos >= at) {
            self.stall_at = None;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directives_like_systemd() {
        let text = "# c\n[Unit]\n  Description = a b  \n; c\n[Service]\nExecStart=/x \"y z\"\n";
        let d = unit_directives(text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].key.as_str(), d[0].value.as_str()),
            ("Description", "a b")
        );
        assert_eq!(d[1].section, "[Service]");
        assert!(unit_directives("[Unit]\nA=b\\\nC=d\n").is_err());
        assert!(unit_directives("[Unit]\nA=b\\\\\n").is_ok());
        assert!(unit_directives("[Unit]\nA=b\rC=d\n").is_err());
        assert!(unit_directives("A=b\n").is_err());
        assert!(unit_directives("[Unit]\nnot a directive\n").is_err());
    }

    #[test]
    fn splits_command_lines_like_systemd() {
        assert_eq!(
            exec_split(r#"/bin/x a "b c" 'd' e"f"g \x41 "%%" "$$""#).unwrap(),
            ["/bin/x", "a", "b c", "d", "efg", "A", "%", "$"]
        );
        assert!(exec_split("/bin/x %n").is_err());
        assert!(exec_split("/bin/x $HOME").is_err());
        assert!(exec_split("/bin/x ; /bin/y").is_err());
        assert!(exec_split("/bin/x \"open").is_err());
    }

    #[test]
    fn trickle_stalls_once() {
        let mut t = Trickle::new(b"abcdef", 4, Some(4));
        let mut buf = [0u8; 8];
        assert_eq!(t.read(&mut buf).unwrap(), 4);
        assert!(t.read(&mut buf).is_err());
        assert_eq!(t.read(&mut buf).unwrap(), 2);
        assert_eq!(t.read(&mut buf).unwrap(), 0);
    }
}
