//! Exports from the command line, end to end: deliveries posted over real HTTP to the real
//! `clientele serve`, a profile imported from a JSON file, `clientele export` run, and the file
//! read back with a CSV parser and a spreadsheet reader.

use calamine::{Data, Reader as _, Xlsx, open_workbook_from_rs};
use chrono::{SecondsFormat, Utc};
use clientele_core::Provider;
use clientele_tests::{Server, Workspace, agent, post, signed};
use serde_json::{Value, json};
use std::path::Path;

const TIQUO_SECRET: &str = "tiquo-secret-0123456789";
const VAGARO_TOKEN: &str = "vagaro-token-0123456789";

fn send(server: &Server, provider: Provider, secret: &str, body: &Value) {
    let body = serde_json::to_vec(body).unwrap();
    let now = Utc::now();
    let headers = signed(provider, secret, &body, now);
    let (status, text) = post(
        &agent(),
        &server.url(&format!("/hooks/{}/main", provider.id())),
        &headers,
        &body,
    );
    assert_eq!(status, 200, "{provider}: {text}");
}

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn tiquo(event: &str, kind: &str, data: Value) -> Value {
    json!({"id": event, "type": kind, "created": now_iso(), "data": data})
}

/// Two Tiquo customers (one named like a formula, one with accents) and a Vagaro customer
/// with a postal code that starts with 0.
fn workspace_with_customers() -> (Workspace, Server) {
    let mut ws = Workspace::new();
    ws.add_connection(Provider::Tiquo, "main", Some(TIQUO_SECRET));
    ws.add_connection(Provider::Vagaro, "main", Some(VAGARO_TOKEN));
    let server = ws.serve();
    send(
        &server,
        Provider::Tiquo,
        TIQUO_SECRET,
        &tiquo(
            "evt_1",
            "customer.created",
            json!({"id": "cust_1", "fullName": "=HYPERLINK(\"http://x\",\"click\")",
                   "email": "hyper@example.com", "phone": "00447911123456",
                   "loyaltyPoints": 40, "tags": ["VIP"], "marketingConsent": true}),
        ),
    );
    send(
        &server,
        Provider::Tiquo,
        TIQUO_SECRET,
        &tiquo(
            "evt_2",
            "customer.created",
            json!({"id": "cust_2", "firstName": "Zoë", "lastName": "Ångström",
                   "email": "zoe@example.com", "phone": "+15550001", "loyaltyPoints": -5}),
        ),
    );
    send(
        &server,
        Provider::Vagaro,
        VAGARO_TOKEN,
        &json!({"id": "v1", "createdDate": now_iso(), "type": "customer", "action": "created",
                "payload": {"customerId": "V1", "customerFirstName": "José",
                            "customerLastName": "Núñez", "email": "jose@example.com",
                            "postalCode": "01234", "countryCode": "US"}}),
    );
    (ws, server)
}

fn import(ws: &Workspace, profile: &Value) -> String {
    let file = ws.path().join(format!(
        "{}.json",
        profile["name"].as_str().expect("a name")
    ));
    std::fs::write(&file, serde_json::to_vec_pretty(profile).unwrap()).unwrap();
    ws.ok(&["export-profile", "import", file.to_str().unwrap()])
}

/// Runs `clientele export`, checks what it prints, and returns the file's bytes.
fn export(ws: &Workspace, profile: &str, out: &Path, rows: usize) -> Vec<u8> {
    let stdout = ws.ok(&[
        "export",
        "--profile",
        profile,
        "--out",
        out.to_str().unwrap(),
    ]);
    let noun = if rows == 1 { "row" } else { "rows" };
    assert_eq!(
        stdout.trim(),
        format!("Wrote {rows} {noun} to {}", out.display()),
        "prints the row count and the file written"
    );
    std::fs::read(out).unwrap()
}

fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn mailing(format: Value) -> Value {
    json!({"name": "mailing", "rows": "people",
        "columns": [
            {"header": "Email", "source": "email"},
            {"header": "Name", "source": "full_name", "transform": {"case": "upper"}},
            {"header": "Phone", "source": "phone"},
            {"header": "Points", "source": "loyalty_points"},
            {"header": "Postcode", "source": "postal_code", "transform": {"default": ""}}
        ],
        "format": format})
}

#[test]
fn a_profile_imported_from_json_exports_csv_and_xlsx_from_the_command_line() {
    let (ws, server) = workspace_with_customers();
    let out = tempfile::tempdir().unwrap();

    assert_eq!(
        import(&ws, &mailing(json!({"type": "csv", "preset": "excel"}))).trim(),
        "Created export profile 'mailing'."
    );
    // `show --json` gives back what was imported, ready to import elsewhere.
    assert_eq!(
        ws.json(&["export-profile", "show", "mailing"]),
        mailing(json!({"type": "csv", "preset": "excel"}))
    );

    // While the listener runs.
    let bytes = export(&ws, "mailing", &out.path().join("mailing.csv"), 3);
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "Excel preset: BOM");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert_eq!(
        text.matches("\r\n").count(),
        4,
        "Excel preset: CRLF after every line"
    );
    let rows = csv_rows(&bytes[3..]);
    assert_eq!(
        rows[0],
        vec!["Email", "Name", "Phone", "Points", "Postcode"]
    );
    let row = |email: &str| {
        rows.iter()
            .find(|r| r[0] == email)
            .unwrap_or_else(|| panic!("no {email} in {rows:?}"))
            .clone()
    };
    assert_eq!(
        row("hyper@example.com"),
        vec![
            "hyper@example.com",
            "'=HYPERLINK(\"HTTP://X\",\"CLICK\")",
            "00447911123456",
            "40",
            ""
        ]
    );
    assert_eq!(
        row("zoe@example.com"),
        vec!["zoe@example.com", "ZOË ÅNGSTRÖM", "'+15550001", "-5", ""]
    );
    assert_eq!(row("jose@example.com")[4], "01234");

    server.stop();

    // The same profile as XLSX, replaced by name.
    assert_eq!(
        import(&ws, &mailing(json!({"type": "xlsx"}))).trim(),
        "Replaced export profile 'mailing'."
    );
    let bytes = export(&ws, "mailing", &out.path().join("mailing.xlsx"), 3);
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("mailing").unwrap();
    assert!(
        wb.worksheet_formula("mailing")
            .unwrap()
            .used_cells()
            .next()
            .is_none(),
        "no formulas"
    );
    let find = |email: &str| -> Vec<Data> {
        range
            .rows()
            .find(|r| r[0] == Data::String(email.into()))
            .unwrap_or_else(|| panic!("no {email}"))
            .to_vec()
    };
    let hyper = find("hyper@example.com");
    assert_eq!(
        hyper[1],
        Data::String("=HYPERLINK(\"HTTP://X\",\"CLICK\")".into()),
        "a formula-looking name arrives as text"
    );
    assert_eq!(hyper[2], Data::String("00447911123456".into()));
    assert!(
        matches!(hyper[3], Data::Float(v) if v == 40.0) || hyper[3] == Data::Int(40),
        "{:?}",
        hyper[3]
    );
    assert_eq!(find("jose@example.com")[4], Data::String("01234".into()));

    // --out a folder: the profile's file name template, in that folder.
    let stdout = ws.ok(&[
        "export",
        "--profile",
        "mailing",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let expected = out.path().join(format!("mailing-{today}.xlsx"));
    assert!(
        stdout.contains(expected.to_str().unwrap()) && expected.exists(),
        "{stdout}"
    );

    let listed = ws.json(&["export-profile", "list"]);
    assert_eq!(listed[0]["name"], "mailing");
    assert_eq!(listed[0]["last_run"]["outcome"], "succeeded");
    let history = ws.json(&["export-profile", "history", "mailing"]);
    assert_eq!(history.as_array().unwrap().len(), 3);
    assert!(history.as_array().unwrap().iter().all(|r| r["rows"] == 3));
}

#[test]
fn an_incremental_profile_exports_only_what_changed_since_its_last_run() {
    let (ws, server) = workspace_with_customers();
    let out = tempfile::tempdir().unwrap();
    import(
        &ws,
        &json!({"name": "sync", "rows": "people", "incremental": true,
                "columns": [{"header": "Email", "source": "email"}, {"header": "Name", "source": "display_name"}],
                "format": {"type": "csv", "preset": "other"},
                "file_name": "sync-{date}-{time}"}),
    );
    let first = csv_rows(&export(&ws, "sync", &out.path().join("1.csv"), 3));
    assert_eq!(first.len(), 4);
    let second = csv_rows(&export(&ws, "sync", &out.path().join("2.csv"), 0));
    assert_eq!(second.len(), 1, "only the header: nothing changed");

    send(
        &server,
        Provider::Tiquo,
        TIQUO_SECRET,
        &json!({"id": "evt_3", "type": "customer.updated", "created": now_iso(),
                "data": {"id": "cust_2", "email": "zoe.new@example.com"},
                "previousAttributes": {"email": "zoe@example.com"}}),
    );
    let third = csv_rows(&export(&ws, "sync", &out.path().join("3.csv"), 1));
    assert_eq!(
        third,
        vec![
            vec!["Email".to_string(), "Name".to_string()],
            vec![
                "zoe.new@example.com".to_string(),
                "Zoë Ångström".to_string()
            ]
        ]
    );
    // --full writes everyone again.
    let stdout = ws.ok(&[
        "export",
        "--profile",
        "sync",
        "--full",
        "--json",
        "--out",
        out.path().join("4.csv").to_str().unwrap(),
    ]);
    let run: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["rows"], 3);
    assert_eq!(run["outcome"], "succeeded");
}

#[test]
fn mistakes_are_explained_on_stderr_with_a_non_zero_exit() {
    let ws = Workspace::new();
    let out = tempfile::tempdir().unwrap();

    let bad = ws.path().join("bad.json");
    let mut profile = mailing(json!({"type": "csv"}));
    profile["columns"][1]["transform"]["case"] = json!("title");
    std::fs::write(&bad, profile.to_string()).unwrap();
    let res = ws.run(&["export-profile", "import", bad.to_str().unwrap()]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("columns[1].transform.case") && err.contains("title"),
        "names the bad key: {err}"
    );

    profile["columns"][1]["transform"]["case"] = json!("upper");
    profile["columns"][0]["source"] = json!("emial");
    std::fs::write(&bad, profile.to_string()).unwrap();
    let err = String::from_utf8_lossy(
        &ws.run(&["export-profile", "import", bad.to_str().unwrap()])
            .stderr,
    )
    .into_owned();
    assert!(
        err.contains("columns[0].source") && err.contains("emial"),
        "{err}"
    );

    let res = ws.run(&["export", "--profile", "nope"]);
    assert!(!res.status.success());
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("no export profile called 'nope'"),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(res.stdout.is_empty());

    import(&ws, &mailing(json!({"type": "csv"})));
    let missing = out.path().join("missing").join("x.csv");
    let res = ws.run(&[
        "export",
        "--profile",
        "mailing",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert!(!res.status.success());
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("doesn't exist"),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(!missing.exists());
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
    let history = ws.json(&["export-profile", "history"]);
    assert_eq!(history[0]["outcome"], "failed");
}
