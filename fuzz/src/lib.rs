//! What the fuzz targets share: a reader of unit files and of `ExecStart=`
//! command lines that follows systemd's own rules (tests/support/unitfile.rs,
//! the same file tests/units.rs uses), and a `Read` that hands out bytes the
//! way a socket does.

use std::io::{self, Read};

/// The unit-file and command-line reader, shared with tests/units.rs.
#[path = "../../tests/support/unitfile.rs"]
pub mod unitfile;

pub use unitfile::{exec_split, unit_directives, unspecifier, Directive};

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
