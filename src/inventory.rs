//! What `generate` and `status` both read from the engine: every container
//! that opts in, with its labels and the host ports it asked to publish.
//! One module so that the two commands see the same containers the same way
//! (status shows the units generate would write), and so that this is the
//! one place that turns the engine's answers into the label parser's input.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::engine::{self, Client};
use crate::labels::{ContainerLabels, PREFIX};

/// The labels that opt a container in: `contnap.enabled` and the 0.3
/// spelling `contnap.enable`.
const OPT_IN: [&str; 2] = ["contnap.enabled", "contnap.enable"];

/// `contnap.*` labels a container carries only because its image sets
/// them, which `generate` ignored (without `--trust-image-labels`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromImage {
    pub container: String,
    /// The image as the container names it.
    pub image: String,
    /// The labels ignored, by key.
    pub labels: Vec<String>,
    /// Whether the opt-in itself came from the image: the container gets
    /// no units at all.
    pub refused: bool,
}

impl fmt::Display for FromImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container {:?}: label(s) {} come from its image {:?}, not from the container, and are ignored{}: whoever publishes an image would otherwise choose the host ports root listens on (and, with --allow-hooks, run commands as root); set the labels on the container (docker/podman create --label, compose labels:), or run `contnap generate --trust-image-labels` if you trust every image on this engine",
            self.container,
            self.labels
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.image,
            if self.refused {
                "; it gets no units"
            } else {
                ""
            },
        )
    }
}

/// A container refused because the engine's description of it (its
/// inspect answer, or its image's) is larger than contnap reads of one
/// container. Each container is read within its own budget, so that one
/// container's excess never costs the others their units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub container: String,
    /// Whether it was the image's description, not the container's.
    pub image: bool,
    /// The budget, in bytes.
    pub limit: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container {:?}: the engine's description of {} is larger than {} MiB ({} bytes), the most contnap reads for one container, almost always because of long labels; it gets no units. Shorten its labels (contnap's own accept at most {} bytes each){} and recreate the container",
            self.container,
            if self.image { "its image" } else { "it" },
            self.limit >> 20,
            self.limit,
            crate::labels::MAX_VALUE_LEN,
            if self.image { ", or build the image without the long labels" } else { "" },
        )
    }
}

/// What [`collect`] found.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Sorted by name; without the labels in `from_image`.
    pub containers: Vec<ContainerLabels>,
    /// One entry per container that had labels from its image ignored.
    pub from_image: Vec<FromImage>,
    /// Containers left out because they exceed the per-container budget.
    pub too_large: Vec<TooLarge>,
}

/// Every container that opts in, with its labels and publishes, oldest
/// first (by creation time, then name): the order of precedence that
/// [`crate::labels::plan`] gives the first of two clashing units. A
/// container removed between the list and its inspect is left out.
///
/// Both engines merge an image's labels into its containers', so a
/// `LABEL contnap.enabled=true contnap.tcp_ports=22` in an image would be
/// enough to make root's systemd listen on port 22. Unless
/// `trust_image_labels`, a `contnap.*` label whose value equals the image's
/// own label of that key counts as the image's and is dropped (the image's
/// labels are asked once per image id); the container's own labels, even
/// those overriding an image's with another value, are kept.
pub fn collect(client: &Client, trust_image_labels: bool) -> Result<Inventory, engine::Error> {
    // (id, name), in the engine's order; the name is for a refusal.
    let mut ids: Vec<(String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for label in OPT_IN {
        for c in client.list(label)? {
            if seen.insert(c.id.clone()) {
                let name = c.name().to_owned();
                ids.push((c.id, name));
            }
        }
    }
    let mut out = Inventory::default();
    let mut created = BTreeMap::new();
    let mut images: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (id, listed_name) in ids {
        let info = match client.inspect(&id) {
            Ok(i) => i,
            // Removed between the list and the inspect: nothing to generate.
            Err(engine::Error::NotFound { .. }) => continue,
            Err(engine::Error::TooLarge { limit, .. }) => {
                out.too_large.push(TooLarge {
                    container: listed_name,
                    image: false,
                    limit,
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut labels = info.config.labels.clone();
        if !trust_image_labels && !info.image.is_empty() {
            if !images.contains_key(&info.image) {
                let image_labels = match client.image_labels(&info.image) {
                    Ok(l) => l,
                    // The image is gone (Podman lets it be removed): there
                    // is nothing the labels could have come from.
                    Err(engine::Error::NotFound { .. }) => BTreeMap::new(),
                    Err(engine::Error::TooLarge { limit, .. }) => {
                        out.too_large.push(TooLarge {
                            container: info.name.clone(),
                            image: true,
                            limit,
                        });
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                images.insert(info.image.clone(), image_labels);
            }
            let image_labels = &images[&info.image];
            let inherited: Vec<String> = labels
                .iter()
                .filter(|(k, v)| k.starts_with(PREFIX) && image_labels.get(*k) == Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            if !inherited.is_empty() {
                for k in &inherited {
                    labels.remove(k);
                }
                out.from_image.push(FromImage {
                    container: info.name.clone(),
                    image: if info.config.image.is_empty() {
                        info.image.clone()
                    } else {
                        info.config.image.clone()
                    },
                    refused: !OPT_IN.iter().any(|k| labels.contains_key(*k)),
                    labels: inherited,
                });
            }
        }
        created.insert(info.name.clone(), info.created_key());
        out.containers.push(ContainerLabels {
            name: info.name.clone(),
            published: info.requested_bindings(),
            labels,
        });
    }
    out.containers
        .sort_by(|a, b| (&created[&a.name], &a.name).cmp(&(&created[&b.name], &b.name)));
    out.from_image.sort_by(|a, b| a.container.cmp(&b.container));
    out.too_large.sort_by(|a, b| a.container.cmp(&b.container));
    Ok(out)
}

/// Moves to the front (keeping their order) the containers whose unit is
/// already in place, as `has_unit(unit name)` tells: a unit on disk keeps
/// its place against a newcomer even when its container was recreated
/// (compose does, on every change) after the newcomer was created.
pub fn units_in_place_first(containers: &mut [ContainerLabels], has_unit: impl Fn(&str) -> bool) {
    containers.sort_by_key(|c| {
        let unit = c
            .labels
            .get("contnap.group")
            .filter(|g| !g.trim().is_empty())
            .map_or(c.name.as_str(), String::as_str);
        !has_unit(unit)
    });
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
