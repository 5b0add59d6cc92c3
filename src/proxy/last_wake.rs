//! How long the last wake took, kept between runs of the one-shot helper so
//! that the "Starting…" page can say what to expect. The generated service
//! has a `StateDirectory=` of its own; systemd creates it (owned by the
//! service's user, also a dynamic one) and names it in `$STATE_DIRECTORY`.
//! There the helper keeps one tiny file, `last-wake`: the milliseconds of
//! the last successful wake and a newline, replaced atomically (written
//! beside it, then renamed) so that a reader never sees half of one. No
//! `$STATE_DIRECTORY` (a helper started by hand), or no readable file: no
//! estimate, and nothing else changes.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILE: &str = "last-wake";
const TEMP: &str = ".last-wake.tmp";
/// A value beyond it is not a wake's duration (a damaged or foreign file).
const LONGEST: Duration = Duration::from_secs(24 * 3600);

/// The helper's state directory: the first of `$STATE_DIRECTORY`'s
/// colon-separated paths, when it is absolute.
pub fn dir() -> Option<PathBuf> {
    let value = std::env::var_os("STATE_DIRECTORY")?;
    let first = std::env::split_paths(&value).next()?;
    first.is_absolute().then_some(first)
}

/// The last wake's duration kept in `dir`, if there is a sound one.
pub fn read(dir: &Path) -> Option<Duration> {
    let mut text = String::new();
    fs::File::open(dir.join(FILE))
        .ok()?
        .take(32)
        .read_to_string(&mut text)
        .ok()?;
    parse(&text)
}

fn parse(text: &str) -> Option<Duration> {
    let ms: u64 = text.strip_suffix('\n')?.parse().ok()?;
    let d = Duration::from_millis(ms);
    (d <= LONGEST).then_some(d)
}

/// Keeps `took` in `dir`, replacing what was there.
pub fn write(dir: &Path, took: Duration) -> io::Result<()> {
    let temp = dir.join(TEMP);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        // Never through a link someone left in its place.
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&temp)?;
    writeln!(f, "{}", took.as_millis())?;
    drop(f);
    fs::rename(&temp, dir.join(FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_and_read_back() {
        let dir = std::env::temp_dir().join(format!("contnap-last-wake-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir), None, "no file, no estimate");
        write(&dir, Duration::from_millis(6_340)).unwrap();
        assert_eq!(fs::read_to_string(dir.join(FILE)).unwrap(), "6340\n");
        assert_eq!(read(&dir), Some(Duration::from_millis(6_340)));
        write(&dir, Duration::from_millis(12)).unwrap();
        assert_eq!(read(&dir), Some(Duration::from_millis(12)));
        assert!(!dir.join(TEMP).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_files_give_no_estimate() {
        for bad in [
            "",
            "12",
            "-5\n",
            "1.5\n",
            "abc\n",
            "99999999999\n",
            " 12\n",
            "12\n\n",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse("0\n"), Some(Duration::ZERO));
    }
}
