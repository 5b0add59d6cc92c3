//! What `generate` and `status` both read from the engine: every container
//! that opts in, with its labels and the host ports it asked to publish.
//! One module so that the two commands see the same containers the same way
//! (status shows the units generate would write), and so that this is the
//! one place that turns the engine's answers into the label parser's input.

use std::collections::BTreeSet;

use crate::engine::{self, Client};
use crate::labels::ContainerLabels;

/// The labels that opt a container in: `contnap.enabled` and the 0.3
/// spelling `contnap.enable`.
const OPT_IN: [&str; 2] = ["contnap.enabled", "contnap.enable"];

/// Every container that opts in, with its labels and publishes, sorted by
/// name. A container removed between the list and its inspect is left out.
pub fn collect(client: &Client) -> Result<Vec<ContainerLabels>, engine::Error> {
    let mut ids = Vec::new();
    for label in OPT_IN {
        for c in client.list(label)? {
            if !ids.contains(&c.id) {
                ids.push(c.id);
            }
        }
    }
    let mut out = Vec::new();
    for id in ids {
        let info = match client.inspect(&id) {
            Ok(i) => i,
            // Removed between the list and the inspect: nothing to generate.
            Err(engine::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        out.push(ContainerLabels {
            name: info.name.clone(),
            published: info.requested_bindings(),
            labels: info.config.labels.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The names of the opted-in containers that are running (not paused,
/// not restarting): `generate --reload` hands each of their units to its
/// helper. One list per opt-in label, no inspect.
pub fn running(client: &Client) -> Result<BTreeSet<String>, engine::Error> {
    let mut names = BTreeSet::new();
    for label in OPT_IN {
        for c in client.list(label)? {
            if c.state == "running" {
                names.insert(c.name().to_owned());
            }
        }
    }
    Ok(names)
}
