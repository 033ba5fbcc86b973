//! `clientele customers list | show | merge | split | decisions | undo` (and the forget
//! commands, in `forget.rs`).

use crate::args::CustomersCommand;
use crate::print::{local_time, print_json, print_table, value_text};
use anyhow::Result;
use clientele_core::hand::DecisionKind;
use clientele_engine::Operations;
use clientele_engine::ops::hand::HandEditOutcome;
use clientele_engine::ops::hand_sync::RelaySync;

pub fn run(ops: &Operations, cmd: CustomersCommand) -> Result<()> {
    ops.catch_up()?;
    let reader = ops.store().reader()?;
    match cmd {
        CustomersCommand::List {
            search,
            limit,
            json,
        } => {
            let people = reader.people(search.as_deref(), limit, 0)?;
            for shared in reader.shared_keys()? {
                eprintln!(
                    "note: the {} {} is shared by {} records, so it doesn't link anyone.",
                    shared.kind.as_str(),
                    shared.value,
                    shared.profiles
                );
            }
            if json {
                return print_json(&people);
            }
            if people.is_empty() {
                match search {
                    Some(s) => println!("No customers match '{s}'."),
                    None => println!(
                        "No customers yet. They appear here when a connected provider sends a message."
                    ),
                }
                return Ok(());
            }
            print_table(
                &["ID", "NAME", "EMAIL", "PHONE", "FROM", "LAST ACTIVITY"],
                people
                    .iter()
                    .map(|p| {
                        let mut providers: Vec<&str> = p
                            .sources
                            .iter()
                            .map(|s| s.provider.display_name())
                            .collect();
                        providers.dedup();
                        vec![
                            p.id.to_string(),
                            if p.deleted {
                                format!("{} (deleted)", p.display_name)
                            } else {
                                p.display_name.clone()
                            },
                            p.emails.join(", "),
                            p.phones.join(", "),
                            providers.join(", "),
                            p.last_event_at.map(local_time).unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        CustomersCommand::Show { id, json } => {
            let person = reader.person(id)?;
            if json {
                return print_json(&person);
            }
            println!(
                "{}{}",
                person.display_name,
                if person.deleted { " (deleted)" } else { "" }
            );
            println!();
            for (field, value) in &person.profile_sources {
                println!(
                    "  {:<24} {}  ({}, {})",
                    clientele_core::fields::label(field),
                    value_text(&value.value),
                    value.provider.display_name(),
                    local_time(value.at)
                );
            }
            println!();
            println!("Records:");
            for s in &person.sources {
                println!(
                    "  {} '{}' customer {} [{}]{}{}",
                    s.provider.display_name(),
                    s.connection,
                    s.customer_ref,
                    clientele_core::hand::RecordRef {
                        provider: s.provider,
                        connection: s.connection.clone(),
                        customer_ref: s.customer_ref.clone(),
                    },
                    if s.deleted_at.is_some() {
                        " (deleted)"
                    } else {
                        ""
                    },
                    s.linked_because
                        .as_deref()
                        .map(|r| format!(" — {r}"))
                        .unwrap_or_default()
                );
            }
            println!();
            println!("Timeline (oldest first):");
            for e in &person.timeline {
                println!(
                    "  {}  {}  · {}",
                    local_time(e.occurred_at),
                    e.summary,
                    e.provider.display_name()
                );
                for c in &e.changes {
                    println!(
                        "      {}: {} → {}",
                        clientele_core::fields::label(&c.field),
                        value_text(&c.old),
                        value_text(&c.new)
                    );
                }
            }
            Ok(())
        }
        CustomersCommand::Merge { id, other, json } => edited(&ops.merge_people(id, other)?, json),
        CustomersCommand::Split { id, record, json } => {
            edited(&ops.split_record(id, &record)?, json)
        }
        CustomersCommand::Undo { decision_id, json } => {
            edited(&ops.undo_decision(decision_id)?, json)
        }
        CustomersCommand::Decisions { json } => decisions(ops, json),
        CustomersCommand::Forget(cmd) => crate::forget::run(ops, cmd),
    }
}

/// What a merge, split or undo did, and whether the relay has it.
fn edited(outcome: &HandEditOutcome, json: bool) -> Result<()> {
    if json {
        return print_json(outcome);
    }
    let d = &outcome.decision;
    match (&d.undone_at, d.kind) {
        (Some(_), _) => println!("Undone: {}.", d.summary),
        (None, DecisionKind::Merge) => println!("Merged: {}.", d.summary),
        (None, DecisionKind::Split) => println!("Split: {}.", d.summary),
    }
    if let Some(person) = outcome.person_id {
        println!("See them with: clientele customers show {person}");
    }
    println!("Undo with: clientele customers undo {}", d.id);
    print_relay(&outcome.relay);
    Ok(())
}

pub(crate) fn print_relay(relay: &RelaySync) {
    match relay {
        RelaySync::NotJoined => {}
        RelaySync::Shared => println!("The relay has it: every desk joined to it gets it too."),
        RelaySync::Pending { message } => println!("{message}"),
        RelaySync::Refused { message } => eprintln!("note: {message}"),
    }
}

fn decisions(ops: &Operations, json: bool) -> Result<()> {
    let all = ops.decisions()?;
    if json {
        return print_json(&all);
    }
    if all.is_empty() {
        println!("No changes made by hand yet. `clientele customers merge` and `split` make them.");
        return Ok(());
    }
    print_table(
        &["ID", "KIND", "WHAT", "BY", "WHEN", "UNDONE"],
        all.iter()
            .map(|d| {
                vec![
                    d.id.to_string(),
                    d.kind.as_str().to_string(),
                    d.summary.clone(),
                    d.made_by.clone(),
                    d.made_at.clone(),
                    d.undone_at
                        .as_ref()
                        .map(|at| format!("{at} by {}", d.undone_by.clone().unwrap_or_default()))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    );
    Ok(())
}
