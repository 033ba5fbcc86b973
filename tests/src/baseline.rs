//! What the ingest benchmark's baselines (`bare_axum`, `group_commit`) share with each other and
//! with `clientele serve`, so that the only difference between them is their handler: a
//! multi-threaded tokio runtime with one worker per core, axum's HTTP/1 server, the route shape
//! `POST /hooks/{provider}/{connection}` and the default body limit.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::MethodRouter;
use std::io::Write;

/// `clientele serve`'s default body limit (5 MiB).
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

/// Serves `hook` at `/hooks/{provider}/{connection}` on `addr` until the process is killed,
/// printing `listening on http://ADDR` once it accepts (as `clientele serve` does).
pub fn serve(addr: &str, hook: MethodRouter) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let app = Router::new()
            .route("/hooks/{provider}/{connection}", hook)
            .layer(DefaultBodyLimit::max(BODY_LIMIT));
        axum::serve(listener, app).await
    })
}
