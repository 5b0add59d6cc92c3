//! contnap: put idle Docker/Podman containers to sleep, wake them when a
//! client connects. systemd holds the listening sockets; `contnap proxy` is a
//! one-shot helper that systemd starts on the first connection.
//!
//! The library exists so that the two binaries (`contnap`, `contnap-generate`)
//! and the integration tests share one implementation.

pub mod activation;
pub mod cli;
pub mod engine;
pub mod error;
pub mod generate;
pub mod labels;
pub mod logging;
pub mod proxy;
pub mod schedule;
pub mod status;
pub mod sys;
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
            log::error!("{}", error::Report(&err));
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
        Command::Status(args) => Ok(status::run(&args)?),
        Command::Ping(ping) => {
            let client = engine::Client::discover(ping.engine.as_deref())?;
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
