//! `clientele deliveries list [--rejected]`.

use crate::args::DeliveriesCommand;
use crate::print::{local_time, print_json, print_table};
use anyhow::Result;
use clientele_engine::Operations;

pub fn run(ops: &Operations, cmd: DeliveriesCommand) -> Result<()> {
    ops.catch_up()?;
    let reader = ops.store().reader()?;
    let DeliveriesCommand::List {
        rejected,
        limit,
        json,
    } = cmd;
    if rejected {
        let rows = reader.rejections(limit)?;
        if json {
            return print_json(&rows);
        }
        if rows.is_empty() {
            println!("Nothing has been refused.");
            return Ok(());
        }
        print_table(
            &["RECEIVED", "PROVIDER", "CONNECTION", "REASON"],
            rows.iter()
                .map(|r| {
                    vec![
                        local_time(r.received_at),
                        r.provider.clone(),
                        r.connection.clone(),
                        r.reason.clone(),
                    ]
                })
                .collect(),
        );
        return Ok(());
    }
    let rows = reader.deliveries(limit)?;
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("No messages received yet.");
        return Ok(());
    }
    print_table(
        &[
            "ID",
            "PROVIDER",
            "CONNECTION",
            "RECEIVED",
            "STATUS",
            "DUPLICATES",
            "KEY",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.provider.display_name().to_string(),
                    r.connection.clone(),
                    local_time(r.received_at),
                    r.status.as_str().to_string(),
                    r.duplicates.to_string(),
                    r.dedupe_key.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}
