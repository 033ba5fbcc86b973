//! `clientele customers list | show` (and the forget commands, in `forget.rs`).

use crate::args::CustomersCommand;
use crate::print::{local_time, print_json, print_table, value_text};
use anyhow::Result;
use clientele_engine::Operations;

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
                    "  {} '{}' customer {}{}{}",
                    s.provider.display_name(),
                    s.connection,
                    s.customer_ref,
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
        CustomersCommand::Forget(cmd) => crate::forget::run(ops, cmd),
    }
}
