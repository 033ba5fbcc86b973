//! What the engine's integration tests share: an [`Engine`] started as the app starts it, on a
//! temporary data folder with a real listener on 127.0.0.1:0 and the in-memory secret store (the
//! keychain has its own tests), stopped even when a test fails.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use clientele_engine::{Engine, Operations};
use clientele_secrets::MemoryStore;
use std::sync::Arc;

pub struct Running {
    pub engine: Engine,
    pub api: Arc<Operations>,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Running {
    /// Stops the listener and joins the pipeline, even when the test failed.
    fn drop(&mut self) {
        self.engine.shutdown_blocking();
    }
}

/// An engine listening on 127.0.0.1:0, with no connections.
pub async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Arc::new(MemoryStore::default())).unwrap();
    let addr = engine
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .to_string();
    Running {
        api: engine.operations().clone(),
        engine,
        addr,
        dir,
    }
}

/// Runs a blocking operation off the async runtime.
pub async fn call<T: Send + 'static>(
    api: &Arc<Operations>,
    f: impl FnOnce(&Operations) -> T + Send + 'static,
) -> T {
    let api = api.clone();
    tokio::task::spawn_blocking(move || f(&api)).await.unwrap()
}
