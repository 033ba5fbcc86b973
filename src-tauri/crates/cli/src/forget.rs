//! `clientele customers forget | erasures | keep-forgetting | stop-forgetting`.

use crate::args::ForgetCommand;
use crate::print::{print_json, print_table};
use anyhow::{Result, bail};
use clientele_engine::Operations;
use clientele_engine::ops::forget::ForgetPreview;
use clientele_engine::ops::hand_sync::RelaySync;
use std::io::{BufRead, IsTerminal, Write};

pub fn run(ops: &Operations, cmd: ForgetCommand) -> Result<()> {
    match cmd {
        ForgetCommand::Forget {
            id,
            keep_forgetting,
            yes,
            json,
        } => forget(ops, id, keep_forgetting, yes, json),
        ForgetCommand::Erasures { json } => {
            let log = ops.erasure_log()?;
            if json {
                return print_json(&log);
            }
            if log.is_empty() {
                println!("No customer has been forgotten.");
                return Ok(());
            }
            print_table(
                &[
                    "ID", "WHEN", "COMPUTER", "WHY", "PEOPLE", "RECORDS", "MESSAGES",
                ],
                log.iter()
                    .map(|e| {
                        vec![
                            e.id.to_string(),
                            local(&e.at),
                            e.computer.clone(),
                            why(e.reason).into(),
                            e.people.to_string(),
                            e.records.to_string(),
                            e.deliveries.to_string(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        ForgetCommand::KeepForgetting { json } => {
            let list = ops.suppressions()?;
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("Nobody is being kept forgotten.");
                return Ok(());
            }
            print_table(
                &[
                    "FORGET ID",
                    "SINCE",
                    "RECORDS",
                    "MESSAGES NOT KEPT",
                    "STOPPED",
                ],
                list.iter()
                    .map(|s| {
                        vec![
                            s.forget_uid.clone(),
                            local(&s.since),
                            s.records.to_string(),
                            s.withheld.to_string(),
                            s.lifted_at.as_deref().map(local).unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        ForgetCommand::StopForgetting { forget_id } => {
            let relay = ops.stop_forgetting(&forget_id)?;
            println!(
                "Stopped forgetting: new messages about those customers are kept again. What was forgotten stays forgotten."
            );
            if let Some(line) = relay_line(&relay) {
                println!("{line}");
            }
            Ok(())
        }
    }
}

fn forget(ops: &Operations, id: i64, keep_forgetting: bool, yes: bool, json: bool) -> Result<()> {
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "forgetting a customer can't be undone, so it needs a yes: run it in a terminal to be asked, or add --yes. Nothing was changed."
            );
        }
        let preview = ops.forget_preview(id)?;
        show_preview(&preview, keep_forgetting);
        eprint!("Type yes to forget {} for good: ", preview.display_name);
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("not forgotten: the answer wasn't yes. Nothing was changed.");
        }
    }
    let outcome = ops.forget_person(id, keep_forgetting)?;
    if json {
        return print_json(&outcome);
    }
    println!(
        "Forgotten: {} {}, {} {}, {} stored {} erased. The erasure log shows it as number {}.",
        outcome.people,
        plural(outcome.people, "customer", "customers"),
        outcome.records,
        plural(outcome.records, "record", "records"),
        outcome.deliveries,
        plural(outcome.deliveries, "message", "messages"),
        outcome.erasure_id
    );
    if outcome.keep_forgetting {
        println!(
            "New messages about them will be acknowledged to the provider and not kept (`clientele customers keep-forgetting`)."
        );
    }
    if let Some(line) = relay_line(&outcome.relay) {
        println!("{line}");
    }
    Ok(())
}

fn show_preview(p: &ForgetPreview, keep_forgetting: bool) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "Forget {} (customer {}) for good:",
        p.display_name, p.person_id
    );
    for r in &p.records {
        let _ = writeln!(err, "  - {}", r.label);
    }
    let _ = writeln!(
        err,
        "Their {} stored {} will be erased, with their timeline, profile and links. This can't be undone.",
        p.deliveries,
        plural(p.deliveries, "message", "messages")
    );
    if keep_forgetting {
        let _ = writeln!(
            err,
            "New messages about these records will be acknowledged and not kept."
        );
    }
    if p.relay_joined {
        let _ = writeln!(
            err,
            "The relay's copy is forgotten too, and every other desk's when it next pulls."
        );
    }
    if !p.exports.is_empty() {
        let _ = writeln!(
            err,
            "Export files already written are outside Clientele's reach; delete them yourself if they must go:"
        );
        for e in &p.exports {
            let _ = writeln!(
                err,
                "  - {} ({}, {}){}",
                e.file,
                e.profile_name,
                local(&e.finished_at),
                if e.certain {
                    ""
                } else {
                    " — may include them"
                }
            );
        }
    }
}

fn relay_line(relay: &RelaySync) -> Option<String> {
    match relay {
        RelaySync::NotJoined => None,
        RelaySync::Shared => {
            Some("The relay has it too: every desk joined to it forgets when it next pulls.".into())
        }
        RelaySync::Pending { message } | RelaySync::Refused { message } => Some(message.clone()),
    }
}

fn why(reason: clientele_core::hand::ErasureReason) -> &'static str {
    use clientele_core::hand::ErasureReason;
    match reason {
        ErasureReason::Request => "asked to be forgotten",
        ErasureReason::ProviderDeleted => "deleted at the provider",
        ErasureReason::Retention => "retention",
    }
}

fn plural<'a>(n: i64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// An RFC 3339 time from a view, in this computer's time zone.
fn local(iso: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| crate::print::local_time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| iso.to_string())
}
