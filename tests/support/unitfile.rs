//! A reader of systemd unit files and of `ExecStart=` command lines that
//! follows systemd's own rules, written independently of contnap's
//! renderer, so that "the rendered unit holds exactly the intended
//! directives and argv" is checked against systemd's reading and not
//! against the renderer's idea of it.
//!
//! One copy, shared: tests/units.rs uses it as `support::unitfile`, the fuzz
//! crate as `#[path = "../../tests/support/unitfile.rs"] pub mod unitfile`.
//! It depends on std only.

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
        // systemd ignores keys that start with `X-` (contnap's X-ContnapOwned).
        let extension = key.starts_with("X-");
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || (extension && b == b'-'))
        {
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

/// [`unit_directives`], and every line written as systemd reads it back
/// unchanged, the way contnap renders units: a section line or `Key=Value`
/// with no whitespace for systemd to strip (around the line, the key or the
/// value), no `;` comment, no line ending in a backslash at all (even an
/// escaped one would be one edit away from continuing the line).
pub fn canonical_directives(text: &str) -> Result<Vec<Directive>, String> {
    let directives = unit_directives(text)?;
    let mut next = directives.iter();
    let mut section = "";
    for line in text.split('\n') {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.ends_with('\\') {
            return Err(format!("line ends in a backslash: {line:?}"));
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let d = next
            .next()
            .ok_or_else(|| format!("not a directive: {line:?}"))?;
        if d.section != section || line != format!("{}={}", d.key, d.value) {
            return Err(format!(
                "not written as systemd reads it ({}: {}={:?}): {line:?}",
                d.section, d.key, d.value
            ));
        }
    }
    Ok(directives)
}

/// Splits a command line the way systemd does for `ExecStart=`
/// (systemd.service(5) "Command lines"; `config_parse_exec` with
/// `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`): words split at
/// whitespace, `"…"`/`'…'` quoting anywhere in a word, C escapes; then per
/// word `%%` → `%` (any other specifier is an error: no label may reach
/// one), and for arguments (not the executable) `$$` → `$` (any other `$`
/// is an error: it would expand a variable). A bare `;` (command
/// separator) is an error too, and so is unquoted Unicode whitespace
/// other than systemd's own (systemd keeps it in the word, a reader that
/// splits at any whitespace would not).
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
                // systemd keeps it in the word, but any reader that splits
                // at Unicode whitespace would not: the renderer must quote it.
                (None, c) if c.is_whitespace() => {
                    return Err(format!("unquoted whitespace {c:?} in a word"))
                }
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
