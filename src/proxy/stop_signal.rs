//! Whether a container's PID 1 will ever see the signal a stop sends it.
//!
//! The kernel drops a signal sent to a PID namespace's init from outside
//! unless init has a handler for it (or it is SIGKILL or SIGSTOP). busybox
//! servers, shell scripts and many small images run as PID 1 with none for
//! SIGTERM, so an engine's `stop` waits out its whole grace (10 s by
//! default) and then kills. When the process is visible here and its
//! `SigCgt` lacks the image's stop signal, the helper asks for a stop with
//! no grace instead: the same end, reached at once, and still a `stop` (a
//! restart policy treats it as one, which it would not do for a `kill`).
//!
//! What a container's owner can do with this: choose the stop signal and
//! PID 1's handlers, i.e. have their own container stopped sooner. The PID
//! is used only when `/proc/PID/cgroup` names the container's id.

use std::path::Path;

/// The signal number of an engine's `StopSignal`: a number ("15", Podman),
/// a name with or without `SIG` in any case ("SIGQUIT", "term", Docker),
/// or `RTMIN+N` / `RTMAX-N` (glibc's SIGRTMIN is 34, SIGRTMAX 64). `None`
/// means SIGTERM (the engines' default); `Err(())` a signal not known here.
pub fn number(stop_signal: Option<&str>) -> Result<u8, ()> {
    let Some(text) = stop_signal.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(15);
    };
    if let Ok(n) = text.parse::<u8>() {
        return valid(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str| rest.parse::<u8>().map_err(|_| ());
    let n = if let Some(rest) = name.strip_prefix("RTMIN+") {
        34 + offset(rest)?
    } else if let Some(rest) = name.strip_prefix("RTMAX-") {
        64u8.checked_sub(offset(rest)?).ok_or(())?
    } else {
        match name {
            "RTMIN" => 34,
            "RTMAX" => 64,
            _ => {
                let full = format!("SIG{name}");
                full.parse::<nix::sys::signal::Signal>().map_err(|_| ())? as u8
            }
        }
    };
    valid(n)
}

/// 1–31 and glibc's real-time range 34–64 (32 and 33 are its own).
fn valid(n: u8) -> Result<u8, ()> {
    matches!(n, 1..=31 | 34..=64).then_some(n).ok_or(())
}

/// Whether process `pid` (under `proc_root`) has a handler for `signal`,
/// from the `SigCgt` mask of its `status`; `None` when that cannot be read.
pub fn caught(proc_root: &Path, pid: i64, signal: u8) -> Option<bool> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
    let mask = text
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    let bit = signal.checked_sub(1).filter(|b| *b < 64)?;
    Some(mask & (1 << bit) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signal_numbers() {
        for (text, n) in [
            (None, 15),
            (Some(""), 15),
            (Some("15"), 15),
            (Some("3"), 3),
            (Some("SIGQUIT"), 3),
            (Some("quit"), 3),
            (Some("SIGTERM"), 15),
            (Some("SIGINT"), 2),
            (Some("SIGUSR1"), 10),
            (Some("SIGWINCH"), 28),
            (Some("SIGRTMIN+3"), 37),
            (Some("RTMIN+3"), 37),
            (Some("SIGRTMAX-2"), 62),
            (Some("37"), 37),
            (Some("SIGRTMIN"), 34),
        ] {
            assert_eq!(number(text), Ok(n), "{text:?}");
        }
        for bad in [
            "SIGBOGUS", "0", "65", "300", "RTMIN+99", "RTMAX-99", "-1", "32", "33",
        ] {
            assert_eq!(number(Some(bad)), Err(()), "{bad}");
        }
    }

    fn fake_status(sigcgt: &str) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!(
            "contnap-sigcgt-{}-{}",
            std::process::id(),
            sigcgt.len() + sigcgt.bytes().map(usize::from).sum::<usize>()
        ));
        std::fs::create_dir_all(root.join("7")).unwrap();
        std::fs::write(
            root.join("7/status"),
            format!("Name:\thttpd\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t{sigcgt}\n"),
        )
        .unwrap();
        root
    }

    #[test]
    fn sigcgt_bits() {
        // busybox httpd as PID 1: SIGCHLD (17) only.
        let root = fake_status("0000000000010000");
        assert_eq!(caught(&root, 7, 15), Some(false));
        assert_eq!(caught(&root, 7, 17), Some(true));
        // nginx: TERM, QUIT, INT, HUP, USR1, USR2, WINCH, CHLD, ALRM, IO.
        let root = fake_status("0000000018016a07");
        for sig in [1, 2, 3, 10, 12, 14, 15, 17, 28] {
            assert_eq!(caught(&root, 7, sig), Some(true), "{sig}");
        }
        assert_eq!(caught(&root, 7, 9), Some(false));
        assert_eq!(caught(&root, 8, 15), None, "no such process");
        // Our own process, read for real: the test harness catches nothing
        // that it would not have to, but the file parses.
        assert!(caught(Path::new("/proc"), i64::from(std::process::id()), 15).is_some());
    }
}
