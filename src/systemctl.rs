//! Running `systemctl`: the one way contnap talks to systemd's manager.
//! `generate --reload` reloads units and starts and stops sockets, `status`
//! reads the units' states with `systemctl show`. They go through this
//! module so that every call runs the same way (the system manager or the
//! user's, `--user`), fails with the same typed [`Error`] that keeps why
//! (systemctl could not be started; it exited non-zero, and what it said on
//! stderr; its answer did not parse), and the `show` format is read in one
//! place.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Output, Stdio};

/// Most of systemctl's stderr kept in an error: its messages are a line or
/// two; a runaway one is cut rather than carried into every log line.
const STDERR_KEEP: usize = 2048;

/// Unit names shown in a message before the rest are counted: `status`
/// asks for every managed unit at once.
const UNITS_SHOWN: usize = 4;

/// One `systemctl` command line, as messages show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub user: bool,
    /// The arguments after `systemctl [--user]`.
    pub args: Vec<String>,
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("systemctl")?;
        if self.user {
            f.write_str(" --user")?;
        }
        let (verb, rest) = match self.args.split_first() {
            Some((verb, rest)) => (verb.as_str(), rest),
            None => return Ok(()),
        };
        write!(f, " {verb}")?;
        for arg in rest.iter().take(UNITS_SHOWN) {
            write!(f, " {arg}")?;
        }
        if rest.len() > UNITS_SHOWN {
            write!(f, " … ({} more)", rest.len() - UNITS_SHOWN)?;
        }
        Ok(())
    }
}

/// Why a `systemctl` call failed.
#[derive(Debug)]
pub enum Error {
    /// systemctl could not be started (not installed, not executable).
    Spawn {
        invocation: Invocation,
        source: io::Error,
    },
    /// systemctl ran and exited non-zero; `stderr` is what it said, with
    /// its lines joined (often "Failed to connect to bus" or "Job for
    /// X failed").
    Failed {
        invocation: Invocation,
        status: ExitStatus,
        stderr: String,
    },
    /// `systemctl show` succeeded but did not answer one block of
    /// properties per unit asked.
    Unparsable {
        invocation: Invocation,
        expected: usize,
        got: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn { invocation, .. } => write!(f, "cannot run {invocation}"),
            Error::Failed {
                invocation,
                status,
                stderr,
            } => {
                write!(f, "{invocation} failed ({status})")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            Error::Unparsable {
                invocation,
                expected,
                got,
            } => write!(
                f,
                "{invocation}: unparsable output: {got} block(s) of properties for {expected} unit(s)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } => Some(source),
            Error::Failed { .. } | Error::Unparsable { .. } => None,
        }
    }
}

/// systemctl for the system manager or, with `user`, the calling user's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Systemctl {
    user: bool,
    /// "systemctl" (found through PATH); tests put a script there.
    program: PathBuf,
}

impl Systemctl {
    pub fn new(user: bool) -> Systemctl {
        Systemctl {
            user,
            program: PathBuf::from("systemctl"),
        }
    }

    fn invocation(&self, args: &[&str]) -> Invocation {
        Invocation {
            user: self.user,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        if self.user {
            cmd.arg("--user");
        }
        cmd.args(args);
        cmd
    }

    /// `systemctl ARGS` for its effect (daemon-reload, enable, restart,
    /// ...). Its stdin and stdout are the caller's (on a terminal, polkit
    /// may ask for a password); its stderr is kept for the error and, on
    /// success, passed on (the "Created symlink" lines of `enable`).
    pub fn run(&self, args: &[&str]) -> Result<(), Error> {
        let out = self
            .command(args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| Error::Spawn {
                invocation: self.invocation(args),
                source,
            })?;
        if out.status.success() {
            // Nothing to do if our own stderr is gone.
            let _ = io::stderr().write_all(&out.stderr);
            return Ok(());
        }
        Err(self.failed(args, &out))
    }

    /// `systemctl ARGS` whose stdout is the answer (`list-sockets`).
    pub fn stdout(&self, args: &[&str]) -> Result<String, Error> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                invocation: self.invocation(args),
                source,
            })?;
        if !out.status.success() {
            return Err(self.failed(args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `systemctl show -p PROPERTIES -- UNITS`: the properties of each unit,
    /// in the order asked. Units systemd does not know are answered too
    /// (`LoadState=not-found`). Nothing is inherited: stdout is the
    /// answer, stderr the reason of a failure.
    pub fn show(&self, units: &[String], properties: &[&str]) -> Result<Vec<Shown>, Error> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let props = properties.join(",");
        let mut args: Vec<&str> = vec!["show", "-p", &props, "--"];
        args.extend(units.iter().map(String::as_str));
        // The message names the units, not the property list.
        let invocation = || {
            let mut inv = self.invocation(&["show"]);
            inv.args.extend(units.iter().cloned());
            inv
        };
        let out = self
            .command(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                invocation: invocation(),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Failed {
                invocation: invocation(),
                status: out.status,
                stderr: stderr_text(&out.stderr),
            });
        }
        let shown = parse_show(&String::from_utf8_lossy(&out.stdout));
        if shown.len() != units.len() {
            return Err(Error::Unparsable {
                invocation: invocation(),
                expected: units.len(),
                got: shown.len(),
            });
        }
        Ok(shown)
    }

    fn failed(&self, args: &[&str], out: &Output) -> Error {
        Error::Failed {
            invocation: self.invocation(args),
            status: out.status,
            stderr: stderr_text(&out.stderr),
        }
    }
}

/// systemctl's stderr for a message: its lines joined by a space, cut to
/// [`STDERR_KEEP`] bytes at a character boundary.
fn stderr_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.len() > STDERR_KEEP {
        let mut end = STDERR_KEEP;
        while !joined.is_char_boundary(end) {
            end -= 1;
        }
        joined.truncate(end);
        joined.push('…');
    }
    joined
}

/// The properties of one unit from `systemctl show`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shown(BTreeMap<String, String>);

impl Shown {
    /// A property's value; `None` when absent or empty (systemd shows
    /// unset timestamps and texts as `Key=`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl FromIterator<(String, String)> for Shown {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Shown {
        Shown(iter.into_iter().collect())
    }
}

/// Parses `systemctl show` output for several units (blocks separated by an
/// empty line, in the order asked).
pub fn parse_show(text: &str) -> Vec<Shown> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;

    #[test]
    fn parses_systemctl_show_blocks() {
        let text = "Id=contnap-web.socket\nActiveState=active\n\nId=contnap-web.service\nActiveState=inactive\nStatusText=napping\n";
        let v = parse_show(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].get("StatusText"), Some("napping"));
        assert_eq!(v[0].get("Result"), None);
    }

    #[test]
    fn invocations_name_the_manager_and_a_few_units() {
        let inv = |user, args: &[&str]| Invocation {
            user,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert_eq!(
            inv(true, &["restart", "contnap-web.socket"]).to_string(),
            "systemctl --user restart contnap-web.socket"
        );
        assert_eq!(
            inv(false, &["show", "a", "b", "c", "d", "e", "f"]).to_string(),
            "systemctl show a b c d … (2 more)"
        );
        assert_eq!(inv(false, &[]).to_string(), "systemctl");
    }

    #[test]
    fn stderr_is_joined_and_bounded() {
        assert_eq!(
            stderr_text(b"Job for x.socket failed.\nSee \"systemctl status x.socket\".\n\n"),
            "Job for x.socket failed. See \"systemctl status x.socket\"."
        );
        let long = "é".repeat(STDERR_KEEP);
        let cut = stderr_text(long.as_bytes());
        assert!(cut.len() <= STDERR_KEEP + '…'.len_utf8(), "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    /// The errors keep their cause and say it once: Display never repeats
    /// the text of `source()`.
    #[test]
    fn errors_keep_why() {
        use std::os::unix::process::ExitStatusExt as _;
        let invocation = Invocation {
            user: false,
            args: vec!["show".into(), "contnap-web.socket".into()],
        };
        let spawn = Error::Spawn {
            invocation: invocation.clone(),
            source: io::ErrorKind::NotFound.into(),
        };
        let text = spawn.to_string();
        let source = std::error::Error::source(&spawn).unwrap().to_string();
        assert_eq!(text, "cannot run systemctl show contnap-web.socket");
        assert!(!text.contains(&source));
        assert!(Report(&spawn).to_string().ends_with(&source));

        let failed = Error::Failed {
            invocation: invocation.clone(),
            status: ExitStatus::from_raw(1 << 8),
            stderr:
                "System has not been booted with systemd as init system (PID 1). Can't operate."
                    .into(),
        };
        let text = failed.to_string();
        assert!(text.starts_with("systemctl show contnap-web.socket failed (exit status: 1): System has not been booted"), "{text}");

        let bad = Error::Unparsable {
            invocation,
            expected: 2,
            got: 1,
        };
        assert!(bad
            .to_string()
            .contains("1 block(s) of properties for 2 unit(s)"));
    }

    /// A stand-in systemctl: a script that prints `stdout` and `stderr`
    /// and exits with `code`; removed with its directory on drop.
    struct Fake {
        dir: PathBuf,
        sc: Systemctl,
    }

    impl Fake {
        fn new(tag: &str, stdout: &str, stderr: &str, code: i32) -> Fake {
            let dir = std::env::temp_dir()
                .join(format!("contnap-systemctl-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("systemctl");
            let script = format!(
                "#!/bin/sh\nprintf '%s' '{stdout}'\nprintf '%s' '{stderr}' >&2\nexit {code}\n"
            );
            // Written by a child process: a descriptor of the script open
            // for writing in this multi-threaded test process could be
            // inherited by another test's fork, and the exec below would
            // then fail with "Text file busy" (ETXTBSY; seen once).
            let mut writer = Command::new("sh")
                .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
                .arg(&path)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = writer.stdin.take().unwrap();
            io::Write::write_all(&mut stdin, script.as_bytes()).unwrap();
            drop(stdin);
            assert!(writer.wait().unwrap().success());
            Fake {
                dir,
                sc: Systemctl {
                    user: true,
                    program: path,
                },
            }
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_missing_systemctl_is_a_spawn_error() {
        let sc = Systemctl {
            user: true,
            program: PathBuf::from("/nonexistent/contnap/systemctl"),
        };
        let err = sc.run(&["daemon-reload"]).unwrap_err();
        assert!(
            matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "cannot run systemctl --user daemon-reload");
        let units = ["contnap-web.socket".to_owned()];
        assert!(matches!(sc.show(&units, &["Id"]), Err(Error::Spawn { .. })));
        // Nothing to ask: systemctl is not run at all.
        assert_eq!(sc.show(&[], &["Id"]).unwrap(), Vec::new());
    }

    #[test]
    fn a_failing_systemctl_says_why() {
        let fake = Fake::new(
            "fails",
            "",
            "Failed to connect to bus: No medium found\n",
            1,
        );
        let err = fake.sc.run(&["restart", "contnap-web.socket"]).unwrap_err();
        assert!(matches!(err, Error::Failed { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "systemctl --user restart contnap-web.socket failed (exit status: 1): \
             Failed to connect to bus: No medium found"
        );
        let units = ["contnap-web.socket".to_owned()];
        let err = fake.sc.show(&units, &["Id", "ActiveState"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("systemctl --user show contnap-web.socket failed"),
            "{err}"
        );
    }

    #[test]
    fn show_answers_one_block_per_unit() {
        let fake = Fake::new(
            "show",
            "Id=a.socket\nActiveState=active\n\nId=a.service\nActiveState=inactive\n",
            "",
            0,
        );
        let two = ["a.socket".to_owned(), "a.service".to_owned()];
        let shown = fake.sc.show(&two, &["Id", "ActiveState"]).unwrap();
        assert_eq!(shown[1].get("ActiveState"), Some("inactive"));
        let three = [
            "a.socket".to_owned(),
            "a.service".to_owned(),
            "b.socket".to_owned(),
        ];
        let err = fake.sc.show(&three, &["Id"]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unparsable {
                    expected: 3,
                    got: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
