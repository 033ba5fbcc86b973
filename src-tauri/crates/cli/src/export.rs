//! `clientele export` and `clientele export-profile import | list | show | remove | history`.

use crate::args::{ExportArgs, ExportProfileCommand};
use crate::print::{local_time, print_json, print_table};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clientele_core::export::ExportProfile;
use clientele_engine::Operations;
use clientele_store::export::Saved;
use serde::Serialize;
use std::io::{IsTerminal, Read};
use std::sync::Arc;

pub fn export(ops: Operations, args: ExportArgs) -> Result<()> {
    ops.catch_up()?;
    let saved = ops.store().reader()?.export_profile(&args.profile)?;
    let now = Utc::now();
    let out = match args.out {
        None => std::env::current_dir()
            .context("couldn't read the current folder")?
            .join(saved.profile.file_name_at(now)),
        Some(path) if path.is_dir() => path.join(saved.profile.file_name_at(now)),
        Some(path) => path,
    };
    let ops = Arc::new(ops);
    // Ctrl+C cancels cleanly: the temporary file is removed and the run recorded as cancelled.
    {
        let (ops, name) = (ops.clone(), saved.name.clone());
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        ops.cancel_export(&name);
                    }
                });
            }
        });
    }
    let interactive = std::io::stderr().is_terminal();
    let result = ops.run_export_as(&saved.name, &out, now, args.full, &mut |p| {
        if interactive {
            eprint!(
                "\rExporting: {} of {} rows read",
                p.scanned,
                p.total.unwrap_or_default()
            );
        }
    });
    if interactive {
        eprintln!();
    }
    let run = result?;
    if args.json {
        return print_json(&run);
    }
    println!(
        "Wrote {} {} to {}",
        run.rows,
        if run.rows == 1 { "row" } else { "rows" },
        run.file
    );
    Ok(())
}

pub fn profile(ops: &Operations, cmd: ExportProfileCommand) -> Result<()> {
    let store = ops.store();
    match cmd {
        ExportProfileCommand::Import { file } => {
            let (text, shown) = if file.as_os_str() == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .context("couldn't read the profile from standard input")?;
                (buf, "standard input".to_string())
            } else {
                (
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("couldn't read {}", file.display()))?,
                    file.display().to_string(),
                )
            };
            let profile = ExportProfile::from_json(&text)
                .map_err(|e| anyhow::anyhow!("{shown} isn't a valid export profile: {e}"))?;
            let saved = store.writer()?.save_export_profile(&profile, Utc::now())?;
            println!(
                "{} export profile '{}'.",
                match saved {
                    Saved::Created => "Created",
                    Saved::Replaced => "Replaced",
                },
                profile.name
            );
            Ok(())
        }
        ExportProfileCommand::List { json } => {
            #[derive(Serialize)]
            struct Row {
                name: String,
                rows: String,
                format: String,
                columns: usize,
                incremental: bool,
                created_at: DateTime<Utc>,
                updated_at: DateTime<Utc>,
                last_run: Option<clientele_store::export::ExportRun>,
                profile: ExportProfile,
            }
            let reader = store.reader()?;
            let rows: Vec<Row> = reader
                .export_profiles()?
                .into_iter()
                .map(|p| {
                    Ok(Row {
                        last_run: reader.export_runs(Some(&p.name), Some(1))?.pop(),
                        rows: p.profile.rows.as_str().to_string(),
                        format: p.profile.format.extension().to_string(),
                        columns: p.profile.columns.len(),
                        incremental: p.profile.incremental,
                        created_at: p.created_at,
                        updated_at: p.updated_at,
                        name: p.name,
                        profile: p.profile,
                    })
                })
                .collect::<Result<_>>()?;
            if json {
                return print_json(&rows);
            }
            if rows.is_empty() {
                println!(
                    "No export profiles yet. Import one with: clientele export-profile import FILE"
                );
                return Ok(());
            }
            print_table(
                &["NAME", "ROWS", "FORMAT", "COLUMNS", "LAST RUN"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.rows.clone(),
                            format!(
                                "{}{}",
                                r.format,
                                if r.incremental { " (changes only)" } else { "" }
                            ),
                            r.columns.to_string(),
                            r.last_run
                                .as_ref()
                                .map(|run| {
                                    format!(
                                        "{} {} ({} rows)",
                                        local_time(run.started_at),
                                        run.outcome.as_str(),
                                        run.rows
                                    )
                                })
                                .unwrap_or_else(|| "never".into()),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        ExportProfileCommand::Show { name, json } => {
            let saved = store.reader()?.export_profile(&name)?;
            if json {
                println!("{}", saved.profile.to_json_pretty());
                return Ok(());
            }
            let p = &saved.profile;
            println!("{}", p.name);
            println!(
                "  One row per {}, {} file, named like {}",
                match p.rows {
                    clientele_core::export::RowKind::People => "person",
                    clientele_core::export::RowKind::Events => "timeline event",
                },
                p.format.extension().to_uppercase(),
                p.file_name_at(Utc::now())
            );
            if p.incremental {
                println!("  Only rows that changed since the last successful run");
            }
            if !p.filters.is_empty() {
                println!(
                    "  Filters: {}",
                    serde_json::to_string(&p.filters).unwrap_or_default()
                );
            }
            println!();
            print_table(
                &["COLUMN", "SOURCE", "TRANSFORM"],
                p.columns
                    .iter()
                    .map(|c| {
                        vec![
                            c.header.clone(),
                            c.source.clone(),
                            if c.transform.is_identity() {
                                String::new()
                            } else {
                                serde_json::to_string(&c.transform).unwrap_or_default()
                            },
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        ExportProfileCommand::Remove { name } => {
            ops.delete_export_profile(&name)?;
            println!("Removed export profile '{name}'. Its history is kept.");
            Ok(())
        }
        ExportProfileCommand::History { name, limit, json } => {
            let reader = store.reader()?;
            if let Some(name) = &name {
                reader.export_profile(name)?;
            }
            let runs = reader.export_runs(name.as_deref(), limit)?;
            if json {
                return print_json(&runs);
            }
            if runs.is_empty() {
                println!("No exports have run yet.");
                return Ok(());
            }
            print_table(
                &["STARTED", "PROFILE", "OUTCOME", "ROWS", "SECONDS", "FILE"],
                runs.iter()
                    .map(|r| {
                        vec![
                            local_time(r.started_at),
                            r.profile.clone(),
                            match &r.error {
                                Some(e) => format!("{}: {e}", r.outcome.as_str()),
                                None => r.outcome.as_str().to_string(),
                            },
                            r.rows.to_string(),
                            r.duration_ms
                                .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
                                .unwrap_or_default(),
                            r.file.clone(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
    }
}
