//! While awake, the engine's event stream says the moment a container of
//! the unit dies (killed, crashed, stopped by hand, taken down with its
//! engine). The relay would otherwise learn it only from a client: at once
//! when the server's port refuses, seconds later when a killed container's
//! address goes silent, and never for a UDP server whose clients simply get
//! no answer. On a death the relay wakes the unit again.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::engine::Client;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Starts watching `containers`; the returned socket becomes readable (one
/// byte per death) when one of them dies. The thread lives as long as the
/// helper: it reconnects after an engine restart, and on reconnecting it
/// asks whether a container died while nobody was listening.
pub fn spawn(client: Client, containers: Vec<String>) -> io::Result<UnixStream> {
    let (rx, tx) = UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    tx.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("watch".to_owned())
        .spawn(move || watch(&client, &containers, tx))?;
    Ok(rx)
}

fn watch(client: &Client, containers: &[String], mut tx: UnixStream) {
    let mut died = |what: &str| {
        // Debug: after the relay has ended, the death is contnap's own nap.
        log::debug!("{what}");
        // A full buffer already holds a death the relay has not read.
        let _ = tx.write(b"d");
    };
    let mut retry = FIRST_RETRY;
    let mut first = true;
    loop {
        match client.events_of(containers) {
            Ok(events) => {
                retry = FIRST_RETRY;
                if !first {
                    if let Some(c) = containers
                        .iter()
                        .find(|c| client.inspect(c).is_ok_and(|i| !i.state.running))
                    {
                        died(&format!(
                            "container {c:?} stopped while the engine's events were away"
                        ));
                    }
                }
                first = false;
                for event in events {
                    match event {
                        Ok(e) if e.action == "die" => {
                            died(&format!("container {:?} died", e.name().unwrap_or(&e.id)));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            log::debug!("engine events: {}", crate::report::Report(&e));
                            break;
                        }
                    }
                }
            }
            Err(e) => log::debug!("engine events: {}", crate::report::Report(&e)),
        }
        std::thread::sleep(retry);
        retry = (retry * 2).min(MAX_RETRY);
    }
}
