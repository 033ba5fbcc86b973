//! `clientele serve`: the listener on a server, until Ctrl+C or SIGTERM.

use crate::args::{SecretsMode, ServeArgs};
use anyhow::{Context, Result};
use clientele_engine::Engine;
use std::io::Write;
use std::path::Path;

pub fn serve(dir: &Path, mode: SecretsMode, args: ServeArgs) -> Result<()> {
    let mut printer = crate::upgrade::Printer::new();
    let engine = Engine::start_with_progress(dir, mode.store(), |p| printer.show(p))?
        .with_body_limit(args.body_limit);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clientele-http")
        .build()
        .context("couldn't start the network runtime")?;
    let result = runtime.block_on(async {
        let addr = engine.listen(args.bind).await.with_context(|| {
            format!(
                "couldn't listen on {} (is another program using that port?)",
                args.bind
            )
        })?;
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: listening on {addr}: other computers that can reach this one may send messages to Clientele. Use --bind 127.0.0.1:PORT to keep it to this computer."
            );
        }
        let connections = engine.registry().all();
        for live in &connections {
            if let Some(problem) = &live.secret_problem {
                eprintln!(
                    "warning: {} connection '{}': {problem}",
                    live.connection.provider.display_name(),
                    live.connection.name
                );
            }
        }
        if connections.is_empty() {
            eprintln!(
                "No connections yet. Add one with, for example: clientele connection add tiquo main"
            );
        }
        // A desk joined to a relay pulls from it while it runs: at once, then live.
        match engine.start_pulling().await {
            Ok(true) => {
                if let Ok(Some(link)) = engine.operations().relay_link() {
                    eprintln!("pulling from the relay at {}", link.url);
                }
            }
            Ok(false) => {}
            Err(e) => eprintln!("warning: not pulling from the relay: {e}"),
        }
        let stop = shutdown_signal();
        println!("listening on http://{addr}");
        std::io::stdout().flush().ok();
        stop.await;
        engine.shutdown().await;
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    // After an error above: the pipeline still stores and derives what it was given.
    engine.shutdown_blocking();
    eprintln!("stopped");
    result
}

/// Starts listening for Ctrl-C and SIGTERM now, and returns what resolves when either arrives.
///
/// Called before the listener says it is listening: a signal's handler exists only from here on,
/// and a SIGTERM sent the moment a supervisor (or a test) read "listening on" used to find none
/// and kill the process outright, skipping the graceful stop.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            async fn received(signal: Option<Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = received(interrupt) => {},
                _ = received(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
