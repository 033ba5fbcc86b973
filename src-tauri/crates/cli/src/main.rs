//! `clientele`: the headless command — for servers, CI, benchmarks and people who prefer a
//! terminal. See `clientele --help` and `docs/cli.md`. Every listing has `--json`; errors go to
//! stderr with a non-zero exit. The commands call the same operations as the app's screens
//! (`clientele_engine::Operations`); this crate only reads arguments and prints.

mod args;
mod connection;
mod customers;
mod deliveries;
mod export;
mod forget;
mod print;
mod relay;
mod relay_db;
mod relay_serve;
mod relay_tls;
mod serve;
mod upgrade;

use anyhow::Result;
use args::{Cli, Command, SecretsMode, SettingsCommand};
use clap::Parser;
use clientele_engine::{Operations, data_dir};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    clientele_engine::log_to_stderr();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = data_dir::resolve(cli.data_dir.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve::serve(&dir, cli.secrets, args),
        Command::Relay(cmd) => relay::run(&dir, cli.secrets, cmd),
        Command::Connection(cmd) => {
            connection::run(&operations(&dir, cli.secrets)?, cli.secrets, cmd)
        }
        Command::Customers(cmd) => customers::run(&operations(&dir, cli.secrets)?, cmd),
        Command::Deliveries(cmd) => deliveries::run(&operations(&dir, cli.secrets)?, cmd),
        Command::Reprocess => reprocess(&operations(&dir, cli.secrets)?),
        Command::Settings(cmd) => settings(&operations(&dir, cli.secrets)?, cmd),
        Command::Export(args) => export::export(operations(&dir, cli.secrets)?, args),
        Command::ExportProfile(cmd) => export::profile(&operations(&dir, cli.secrets)?, cmd),
    }
}

/// The operations over the data folder, for a command that runs no listener.
fn operations(dir: &Path, secrets: SecretsMode) -> Result<Operations> {
    Ok(Operations::new(
        upgrade::open_store(dir)?,
        secrets.store(),
        dir,
    ))
}

fn settings(ops: &Operations, cmd: SettingsCommand) -> Result<()> {
    match cmd {
        SettingsCommand::DefaultCountry { code } => {
            let interactive = std::io::stderr().is_terminal();
            let summary = ops.set_default_country(&code, &mut |p| {
                if interactive {
                    eprint!(
                        "\rReading phone numbers again: {} of {} records",
                        p.done, p.total
                    );
                }
            })?;
            if interactive {
                eprintln!();
            }
            println!(
                "Default country set to {}. Read the phone numbers of {} customer records again; {} people changed.",
                summary.default_country,
                summary.records,
                summary.people_changed.len()
            );
        }
        SettingsCommand::Businesses { json } => {
            let businesses = ops.businesses("vagaro")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&businesses)?);
            } else if businesses.is_empty() {
                println!("No Vagaro business ids seen yet.");
            } else {
                for b in businesses {
                    println!(
                        "{}\t{}\t{} customers",
                        b.id,
                        b.name.as_deref().unwrap_or("(no name)"),
                        b.customers
                    );
                }
            }
        }
        SettingsCommand::Retention {
            inactive_months,
            rejections_days,
            apply,
            json,
        } => retention(ops, inactive_months, rejections_days, apply, json)?,
        SettingsCommand::BusinessName { id, name } => {
            ops.name_business("vagaro", &id, &name)?;
            if name.trim().is_empty() {
                println!("Forgot the name of business {id}.");
            } else {
                println!("Business {id} is now called {}.", name.trim());
            }
        }
    }
    Ok(())
}

fn retention(
    ops: &Operations,
    inactive_months: Option<args::Limit>,
    rejections_days: Option<args::Limit>,
    apply: bool,
    json: bool,
) -> Result<()> {
    let mut view = ops.retention()?;
    if inactive_months.is_some() || rejections_days.is_some() {
        view = ops.set_retention(
            inactive_months.map_or(view.inactive_months, |l| l.0),
            rejections_days.map_or(view.rejections_days, |l| l.0),
        )?;
    }
    let run = if apply {
        Some(ops.apply_retention(chrono::Utc::now())?)
    } else {
        None
    };
    if json {
        let mut out = serde_json::to_value(&view)?;
        if let Some(run) = &run {
            out["applied"] = serde_json::to_value(run)?;
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    match view.inactive_months {
        Some(m) => println!("Customers with no activity for {m} months are forgotten for good."),
        None => println!("Customers are kept however long they have been quiet (off)."),
    }
    match view.rejections_days {
        Some(d) => println!("Refused requests are dropped after {d} days."),
        None => println!("Refused requests are kept (the newest 10,000)."),
    }
    if view.held_by_relay {
        println!(
            "These are the relay's settings, the same on every desk joined to it{}.",
            if view.can_change {
                ""
            } else {
                "; the desk that manages the relay's connections changes them"
            }
        );
    }
    if let Some(run) = run {
        println!(
            "Applied now: {} inactive customers and {} records their provider deleted forgotten ({} messages), {} refused requests dropped.",
            run.inactive_people, run.deleted_records, run.deliveries, run.rejections
        );
    }
    Ok(())
}

fn reprocess(ops: &Operations) -> Result<()> {
    let interactive = std::io::stderr().is_terminal();
    let summary = ops.reprocess(&mut |done, total| {
        if interactive {
            eprint!("\rRe-processing: {done} of {total} messages");
        }
    })?;
    if interactive {
        eprintln!();
    }
    println!(
        "Re-processed {} messages: {} timeline events, {} people, {} needing attention.",
        summary.deliveries, summary.events, summary.people, summary.needs_attention
    );
    Ok(())
}
