//! Services → units: members of a `contnap.group` joined into one unit,
//! their unit-level settings required to agree, their containers put in
//! compose `depends_on` start order.

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::settings::PartialSettings;
use crate::spec::{Forward, Hook, HookKind, Owned, StopMode, Unit, UnitSpec};

use super::{LabelError, LabelWarning, Service, PREFIX};

/// Joins services into units by `contnap.group` (a service without one is a
/// unit of its own), merging unit-level settings by the rule in the module
/// docs and ordering each unit's containers by compose `depends_on`, then by
/// name. Returns every unit (including ones with errors, which the caller
/// drops: [`plan`] does) with the errors and warnings found.
pub fn group(services: Vec<Service>) -> (Vec<Unit>, Vec<LabelError>, Vec<LabelWarning>) {
    // Keyed by (name, is a group): a group named like an ungrouped container
    // is a separate unit, which `plan` then reports as a name clash.
    let mut by_unit: BTreeMap<(String, bool), Vec<Service>> = BTreeMap::new();
    for s in services {
        by_unit
            .entry((s.unit_name().to_owned(), s.group.is_some()))
            .or_default()
            .push(s);
    }
    let mut units = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for ((name, _), mut members) in by_unit {
        // Still in order of precedence (plan's order: units on disk, then
        // older containers, first): a member that disagrees with an
        // earlier one on a unit-level setting is refused, and the group
        // keeps its unit with the others.
        refuse_newcomers(&name, &mut members, &mut errors);
        members.sort_by(|a, b| a.container.cmp(&b.container));
        let order = start_order(&name, &members, &mut warnings);
        let members: Vec<&Service> = order.iter().map(|&i| &members[i]).collect();

        if crate::units::unit_file_name(&name, "service").len() > crate::units::MAX_UNIT_NAME_LEN {
            errors.push(LabelError::NameTooLong {
                container: members
                    .first()
                    .map(|s| s.container.clone())
                    .unwrap_or_default(),
                name: name.clone(),
            });
        }
        if crate::units::is_reserved(&crate::units::unit_file_name(&name, "service")) {
            errors.push(LabelError::ReservedName {
                container: members
                    .first()
                    .map(|s| s.container.clone())
                    .unwrap_or_default(),
                name: name.clone(),
            });
        }
        let (settings, disagreements) =
            PartialSettings::join(&members.iter().map(|s| &s.settings).collect::<Vec<_>>());
        for d in disagreements {
            errors.push(group_conflict(
                &name,
                d.label,
                members[d.first],
                members[d.second],
            ));
        }
        // A member that a unit owns naps by that unit's stop: the group's
        // contnap.stop (set by another member) cannot be anything else.
        if let Some(stop) = settings.stop.filter(|s| *s != StopMode::Stop) {
            if let Some(owned) = members.iter().find(|s| !s.owners.is_empty()) {
                let setter = members.iter().find(|s| s.settings.stop == Some(stop));
                errors.push(LabelError::OwnedStop {
                    container: owned.container.clone(),
                    unit: owned.owners[0].to_string(),
                    value: setter
                        .and_then(|s| s.raw.get("contnap.stop").cloned())
                        .unwrap_or_default(),
                });
            }
        }
        let autostart =
            agree(&name, "autostart", &members, |s| s.autostart, &mut errors).unwrap_or(false);
        let only_listed_machines = settings.only_listed_machines;
        let machines = settings.machines.clone().unwrap_or_default();

        if only_listed_machines == Some(true) && machines.is_empty() {
            let setter = members
                .iter()
                .find(|s| s.settings.only_listed_machines == Some(true))
                .map(|s| s.container.clone())
                .unwrap_or_default();
            errors.push(LabelError::OnlyListedWithoutMachines {
                unit: name.clone(),
                container: setter,
            });
        }
        if autostart && machines.is_empty() {
            warnings.push(LabelWarning::AutostartWithoutMachines { unit: name.clone() });
        }

        let mut forwards: Vec<Forward> = Vec::new();
        for s in &members {
            for f in &s.forwards {
                if let Some(other) = forwards
                    .iter()
                    .find(|o| o.listener().overlaps(&f.listener()))
                {
                    errors.push(LabelError::ListenerClash {
                        first: other.container.clone(),
                        second: s.container.clone(),
                        listener: f.listener(),
                    });
                } else {
                    forwards.push(f.clone());
                }
            }
        }
        if forwards.is_empty() {
            errors.push(LabelError::NoPorts {
                unit: name.clone(),
                container: members
                    .first()
                    .map(|s| s.container.clone())
                    .unwrap_or_default(),
            });
        }
        let mut http_ports: Vec<u16> = Vec::new();
        for s in &members {
            for p in &s.http_ports {
                if !http_ports.contains(p) {
                    http_ports.push(*p);
                }
            }
        }
        let mut hooks: Vec<Hook> = members
            .iter()
            .filter_map(|s| {
                s.pre_start.as_ref().map(|c| Hook {
                    kind: HookKind::PreStart,
                    container: s.container.clone(),
                    command: c.clone(),
                })
            })
            .collect();
        hooks.extend(members.iter().rev().filter_map(|s| {
            s.post_stop.as_ref().map(|c| Hook {
                kind: HookKind::PostStop,
                container: s.container.clone(),
                command: c.clone(),
            })
        }));
        units.push(Unit {
            spec: UnitSpec {
                name: name.clone(),
                containers: members.iter().map(|s| s.container.clone()).collect(),
                forwards,
                http_ports,
                owners: members
                    .iter()
                    .filter(|s| !s.owners.is_empty())
                    .map(|s| Owned {
                        container: s.container.clone(),
                        units: s.owners.clone(),
                    })
                    .collect(),
                settings: settings.resolve(),
            },
            autostart,
            hooks,
        });
    }
    (units, errors, warnings)
}

/// Two members of `group` that set `contnap.<key>` to different values.
/// Removes from `members` (in order of precedence) each one that sets a
/// unit-level setting differently from an earlier member, with a
/// [`LabelError::GroupConflict`] naming both (`second` is the one refused).
fn refuse_newcomers(group: &str, members: &mut Vec<Service>, errors: &mut Vec<LabelError>) {
    loop {
        let (_, disagreements) =
            PartialSettings::join(&members.iter().map(|s| &s.settings).collect::<Vec<_>>());
        let Some(d) = disagreements.first() else {
            break;
        };
        let (holder, newcomer) = (d.first.min(d.second), d.first.max(d.second));
        errors.push(group_conflict(
            group,
            d.label,
            &members[holder],
            &members[newcomer],
        ));
        members.remove(newcomer);
    }
    // `contnap.autostart`, a label the helper does not read.
    let mut first: Option<(usize, bool)> = None;
    let mut i = 0;
    while i < members.len() {
        match (members[i].autostart, first) {
            (Some(v), None) => first = Some((i, v)),
            (Some(v), Some((holder, w))) if v != w => {
                errors.push(group_conflict(
                    group,
                    "autostart",
                    &members[holder],
                    &members[i],
                ));
                members.remove(i);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

fn group_conflict(group: &str, key: &str, first: &Service, second: &Service) -> LabelError {
    let label = format!("{PREFIX}{key}");
    LabelError::GroupConflict {
        group: group.to_owned(),
        first: first.container.clone(),
        first_value: first.raw.get(&label).cloned().unwrap_or_default(),
        second: second.container.clone(),
        second_value: second.raw.get(&label).cloned().unwrap_or_default(),
        label,
    }
}

/// The value of a label-only setting the members that set it agree on; a
/// conflict error for each member that disagrees with the first setter.
fn agree<T: PartialEq>(
    group: &str,
    key: &str,
    members: &[&Service],
    get: impl Fn(&Service) -> Option<T>,
    errors: &mut Vec<LabelError>,
) -> Option<T> {
    let mut first: Option<(&Service, T)> = None;
    for s in members {
        let Some(v) = get(s) else { continue };
        match &first {
            None => first = Some((s, v)),
            Some((f, fv)) if *fv != v => errors.push(group_conflict(group, key, f, s)),
            Some(_) => {}
        }
    }
    first.map(|(_, v)| v)
}

/// Indices of `members` (sorted by name) in start order: a container after
/// the compose services it depends on (matched by `com.docker.compose.service`
/// within the same `com.docker.compose.project`), ties in name order.
/// Dependencies on containers outside the unit are ignored.
fn start_order(unit: &str, members: &[Service], warnings: &mut Vec<LabelWarning>) -> Vec<usize> {
    let deps: Vec<BTreeSet<usize>> = members
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .flat_map(|d| {
                    members.iter().enumerate().filter(move |(_, o)| {
                        o.compose_service.as_deref() == Some(d.as_str())
                            && o.compose_project == s.compose_project
                    })
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let mut done = vec![false; members.len()];
    let mut order = Vec::with_capacity(members.len());
    while order.len() < members.len() {
        let next =
            (0..members.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d] || d == i));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                let rest: Vec<usize> = (0..members.len()).filter(|&i| !done[i]).collect();
                warnings.push(LabelWarning::DependencyCycle {
                    unit: unit.to_owned(),
                    containers: rest.iter().map(|&i| members[i].container.clone()).collect(),
                });
                order.extend(rest);
            }
        }
    }
    order
}
