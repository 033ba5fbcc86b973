//! The data folders in `tests/fixtures/store-vN` (each made by `make_store_fixture` with the
//! build of schema N) and the commands whose output the upgrade test compares with what that
//! build printed.

use crate::{Provider, Workspace, secret_env, test_secret};
use serde_json::Value;
use std::path::PathBuf;

/// `tests/fixtures/store-v6`.
pub fn dir() -> PathBuf {
    dir_of(6)
}

/// `tests/fixtures/store-v{schema}`.
pub fn dir_of(schema: i64) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/store-v{schema}"))
}

/// A workspace holding a copy of the schema-6 fixture's data folder, with its connections'
/// secrets.
pub fn copy() -> Workspace {
    copy_of(6)
}

/// A workspace holding a copy of the schema-`schema` fixture's data folder, with its
/// connections' secrets.
pub fn copy_of(schema: i64) -> Workspace {
    let mut ws = Workspace::new();
    std::fs::copy(
        dir_of(schema).join("data/clientele.db"),
        ws.path().join(clientele_store::DATABASE_FILE),
    )
    .expect("copy the fixture");
    for p in Provider::ALL {
        ws.secrets.push((secret_env(p, "main"), test_secret(p)));
    }
    ws
}

/// What the upgrade test compares: the same commands, run on the fixture's data folder.
pub fn outputs(ws: &Workspace) -> Vec<(String, Value)> {
    let mut out = vec![
        (
            "customers-list.json".to_string(),
            ws.json(&["customers", "list"]),
        ),
        (
            "customers-list-all.json".to_string(),
            ws.json(&["customers", "list", "--limit", "1000"]),
        ),
    ];
    let all = out[1].1.as_array().unwrap().clone();
    for person in &all {
        let id = person["id"].as_i64().unwrap().to_string();
        out.push((
            format!("customer-{id}.json"),
            ws.json(&["customers", "show", &id]),
        ));
    }
    out.push((
        "deliveries.json".into(),
        ws.json(&["deliveries", "list", "--limit", "1000"]),
    ));
    out.push(("connections.json".into(), ws.json(&["connection", "list"])));
    out.push((
        "decisions.json".into(),
        ws.json(&["customers", "decisions"]),
    ));
    out.push(("erasures.json".into(), ws.json(&["customers", "erasures"])));
    out.push((
        "keep-forgetting.json".into(),
        ws.json(&["customers", "keep-forgetting"]),
    ));
    out.push((
        "businesses.json".into(),
        ws.json(&["settings", "businesses"]),
    ));
    out.push((
        "export-profiles.json".into(),
        ws.json(&["export-profile", "list"]),
    ));
    out
}
