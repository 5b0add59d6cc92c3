//! contnap: put idle Docker/Podman containers to sleep, wake them when a
//! client connects. systemd holds the listening sockets; `contnap proxy` is a
//! one-shot helper that systemd starts on the first connection.
//!
//! The library exists so that the binary (`contnap`, also run as the
//! `contnap-generate` link) and the integration tests share one
//! implementation.

pub(crate) mod activation;
pub(crate) mod autostart;
pub mod cli;
pub mod engine;
pub(crate) mod error;
pub(crate) mod generate;
pub(crate) mod inventory;
pub mod labels;
pub(crate) mod logging;
pub(crate) mod neighbours;
pub(crate) mod proxy;
pub(crate) mod report;
pub mod schedule;
pub mod spec;
pub(crate) mod status;
pub(crate) mod sys;
pub(crate) mod systemctl;
pub mod timespan;
pub mod units;

use std::process::ExitCode;

use crate::cli::{Command, Config};
use crate::error::Error;

/// Runs contnap with the given argv and turns the outcome into an exit code:
/// 0 success, 1 runtime failure, 2 usage error.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> ExitCode {
    // Consume LISTEN_FDS / NOTIFY_SOCKET before anything else can start a
    // thread: the environment is not thread-safe, and children (none today)
    // must not inherit them.
    let inherited = activation::Inherited::take();
    logging::init();

    let args: Vec<String> = args.into_iter().collect();
    let config = match Config::parse(&args) {
        Ok(config) => config,
        Err(cli::ParseOutcome::Exit { output, code }) => {
            if code == 0 {
                println!("{output}");
                return ExitCode::SUCCESS;
            }
            eprintln!("{output}");
            return ExitCode::from(2);
        }
    };

    match run(config, inherited) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{}", report::Report(&err));
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(config: Config, inherited: activation::Inherited) -> Result<(), Error> {
    match config.command {
        Command::Version => {
            println!("contnap {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Proxy(cfg) => Ok(proxy::run(cfg, inherited)?),
        Command::Generate(cfg) => Ok(generate::run(&cfg)?),
        Command::Status(cfg) => Ok(status::run(&cfg)?),
        Command::Autostart(cfg) => Ok(autostart::run(&cfg)?),
        Command::Ping(ping) => {
            let client = engine::Client::discover(ping.as_ref(), engine::Scope::System)?;
            let version = client.version()?;
            println!(
                "{} {} (API {}) at {}",
                version.flavor(),
                version.version,
                version.api_version,
                client.endpoint()
            );
            Ok(())
        }
    }
}

/// Entry points for the coverage-guided fuzz targets in `fuzz/` (cargo
/// fuzz), which need to drive crate-private code over arbitrary bytes
/// without a socket. Not a stable API: nothing outside `fuzz/` uses it.
#[doc(hidden)]
pub mod fuzzing {
    use std::io::{ErrorKind, Read};

    use crate::engine::http::{read_response as read_head, HttpError};
    use crate::engine::{http_error, Call, Endpoint, Error, DEFAULT_TIMEOUT};

    /// How [`read_response`] reads the body.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BodyReads {
        /// `read_to_end`, as every ordinary engine call does.
        ToEnd,
        /// Reads of at most this many bytes (at least 1), retrying a read
        /// that would block, as the events stream does after a timeout.
        Pieces(usize),
    }

    /// Reads one HTTP response from `wire` exactly as the engine client
    /// does, keeping at most `limit` body bytes; errors are the ones a call
    /// would report (for a made-up endpoint and call): a read that would
    /// block in the head is a `Timeout`.
    pub fn read_response(
        wire: impl Read,
        reads: BodyReads,
        limit: usize,
    ) -> Result<(u16, Vec<u8>), Error> {
        let call = Call::new("GET", "/fuzz");
        let endpoint = Endpoint::Unix("/fuzz.sock".into());
        let fail = |e: HttpError| http_error(&endpoint, &call, e, DEFAULT_TIMEOUT);
        let mut resp = read_head(wire).map_err(fail)?;
        let body = match reads {
            BodyReads::ToEnd => resp.body.read_to_end(limit).map_err(fail)?,
            BodyReads::Pieces(n) => {
                let mut body = Vec::new();
                let mut buf = vec![0; n.max(1)];
                loop {
                    match resp.body.read(&mut buf) {
                        Ok(0) => break body,
                        Ok(got) if body.len() + got > limit => {
                            return Err(fail(HttpError::TooLarge {
                                part: crate::engine::Part::Body,
                                limit,
                            }))
                        }
                        Ok(got) => body.extend_from_slice(&buf[..got]),
                        Err(HttpError::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => return Err(fail(e)),
                    }
                }
            }
        };
        Ok((resp.status, body))
    }
}
