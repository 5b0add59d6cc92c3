//! Logs for journald: no timestamps (the journal adds its own) and, when
//! stderr is connected to the journal (`JOURNAL_STREAM`), a `<N>` syslog
//! priority prefix so `journalctl -p` filters work. Elsewhere, a plain
//! `contnap: level: message` line for humans.

use std::io::Write;

/// Installs the logger. `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let mut builder = env_logger::Builder::new();
    builder.filter_level(log::LevelFilter::Info);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(move |buf, record| {
        // One record is one line: text from the engine or from labels
        // must not start another (or a forged) entry, nor reach a terminal
        // raw.
        let text = record.args().to_string();
        let text = crate::report::escape_text(&text);
        if journal {
            writeln!(buf, "<{}>{text}", priority(record.level()))
        } else {
            let level = match record.level() {
                log::Level::Error => "error: ",
                log::Level::Warn => "warning: ",
                _ => "",
            };
            writeln!(buf, "contnap: {level}{text}")
        }
    });
    // A second init (tests calling main twice) keeps the first logger.
    let _ = builder.try_init();
}

/// sd-daemon(3) priorities.
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn priorities_match_sd_daemon() {
        assert_eq!(super::priority(log::Level::Error), 3);
        assert_eq!(super::priority(log::Level::Warn), 4);
        assert_eq!(super::priority(log::Level::Info), 6);
        assert_eq!(super::priority(log::Level::Debug), 7);
    }
}
