//! A shop manager builds an export in the real window: picks columns from the searchable list,
//! renames and reorders them, checks the live preview, runs it through the native save dialog
//! (a real GTK dialog under Xvfb, answered by typing a path), and the file is read back — XLSX
//! with a spreadsheet reader, CSV with a CSV parser. A customer whose name is a formula arrives as
//! text, never as a formula, and the command line writes the same bytes. Screenshots are kept in tests/artifacts/e2e/exports/.

mod support;

use calamine::{Data, Reader as _, open_workbook_auto};
use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use clientele_core::Provider;
use clientele_tests::{agent, clientele_bin, post, signed};
use fantoccini::Locator;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::App;

const SECRET: &str = "tiquo-exports-e2e-secret-41d2";
const FORMULA: &str = "=HYPERLINK(\"http://x\",\"click\")";
const DIALOG_TITLE: &str = "Save the export as";

fn customer(id: &str, first: &str, last: &str, email: &str, phone: &str) -> Vec<u8> {
    let at = (Utc::now() - ChronoDuration::minutes(10)).to_rfc3339_opts(SecondsFormat::Secs, true);
    serde_json::to_vec(&json!({
        "id": format!("evt_{id}"), "type": "customer.created", "created": at,
        "data": {"id": id, "firstName": first, "lastName": last, "email": email,
                 "phone": phone, "loyaltyPoints": 10, "tags": [], "marketingConsent": true,
                 "createdAt": at}
    }))
    .unwrap()
}

/// The headers of the columns in the editor, in order.
async fn column_headers(app: &App) -> Vec<String> {
    let mut headers = Vec::new();
    for input in app.find_all("column-header-input").await {
        headers.push(input.prop("value").await.unwrap().unwrap_or_default());
    }
    headers
}

async fn add_column(app: &App, search: &str, source: &str, header: &str) {
    let before = app.find_all("export-column").await.len();
    let field = app.find("source-search").await;
    field.clear().await.unwrap();
    field.send_keys(search).await.unwrap();
    app.client
        .wait()
        .at_most(support::WAIT)
        .for_element(Locator::Css(&format!(
            "[data-testid=\"source-option\"][data-source=\"{source}\"]"
        )))
        .await
        .unwrap_or_else(|e| panic!("the source list offers {source} for {search:?}: {e}"))
        .click()
        .await
        .unwrap();
    let columns = app.find_all("export-column").await;
    assert_eq!(
        columns.len(),
        before + 1,
        "clicking {source} adds one column"
    );
    let input = columns[before]
        .find(Locator::Css("[data-testid=\"column-header-input\"]"))
        .await
        .unwrap();
    input.clear().await.unwrap();
    input.send_keys(header).await.unwrap();
}

async fn choose_format(app: &App, value: &str) {
    app.find("export-format")
        .await
        .find(Locator::Css(&format!("option[value=\"{value}\"]")))
        .await
        .unwrap_or_else(|e| panic!("format option {value}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Runs the export through the native save dialog and waits for the result message.
async fn run_into(app: &App, file: &Path) -> String {
    let dialog = App::answer_save_dialog(DIALOG_TITLE, file);
    app.click("run-export").await;
    app.client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("[data-testid=\"export-result\"]"))
        .await
        .expect("a result after the run");
    dialog
        .join()
        .expect("the dialog thread")
        .expect("the save dialog was answered");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = app.text_of("export-result").await;
        if text.contains(&file.display().to_string()) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_builds_an_export_in_the_window_and_opens_the_file() {
    if !support::can_run("a_manager_builds_an_export_in_the_window_and_opens_the_file") {
        return;
    }
    let app = App::start("exports").await;
    let out = tempfile::tempdir().expect("a folder for the files");

    app.connect_provider("tiquo", "shop", SECRET).await;
    let url = app.url("/hooks/tiquo/shop");
    for body in [
        customer(
            "cust_zoe",
            "Zoë",
            "Brontë",
            "zoe@example.com",
            "+5511965958122",
        ),
        customer(
            "cust_formula",
            FORMULA,
            "",
            "x@example.com",
            "+447700900123",
        ),
    ] {
        let (status, text) = post(
            &agent(),
            &url,
            &signed(Provider::Tiquo, SECRET, &body, Utc::now()),
            &body,
        );
        assert_eq!(status, 200, "{text}");
    }
    app.click("nav-customers").await;
    app.wait_for_text("Zoë Brontë", support::WAIT).await;

    // No exports yet: the screen says what one is and offers to make one.
    app.click("nav-exports").await;
    app.find("new-export").await;
    app.shot("01-exports-empty").await;
    app.click("new-export").await;
    let name = app.find("export-name").await;
    name.clear().await.unwrap();
    name.send_keys("Mailing list").await.unwrap();

    // Columns from the searchable list, renamed, then the phone moved up by keyboard-friendly
    // buttons: Email, Phone, Name.
    add_column(&app, "email", "email", "Email").await;
    add_column(&app, "name", "full_name", "Name").await;
    add_column(&app, "phone", "phone", "Phone").await;
    assert_eq!(column_headers(&app).await, ["Email", "Name", "Phone"]);
    let columns = app.find_all("export-column").await;
    columns[2]
        .find(Locator::Css("[data-testid=\"move-up\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + support::WAIT;
    while column_headers(&app).await != ["Email", "Phone", "Name"] {
        assert!(
            std::time::Instant::now() < deadline,
            "Move up reorders the columns: {:?}",
            column_headers(&app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Excel workbook, formulas neutralized (the default); the live preview shows both people.
    choose_format(&app, "xlsx").await;
    assert!(
        app.find("neutralize-formulas")
            .await
            .is_selected()
            .await
            .unwrap(),
        "protection against formulas is on by default"
    );
    // The preview follows the editor (debounced): wait for the one with all three columns.
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let preview = app.text_of("export-preview").await;
        if [
            "Phone",
            "Name",
            "zoe@example.com",
            "+447700900123",
            "HYPERLINK",
        ]
        .iter()
        .all(|t| preview.contains(t))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the preview shows both people in three columns: {preview:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.shot("02-editor").await;
    app.click("save-export").await;

    let xlsx = out.path().join("mailing.xlsx");
    let result = run_into(&app, &xlsx).await;
    assert!(
        result.contains(&xlsx.display().to_string()),
        "the result names the file: {result}"
    );
    assert!(result.contains('2'), "two rows written: {result}");
    app.shot("03-xlsx-done").await;

    // The workbook, read back with a spreadsheet reader.
    let mut workbook = open_workbook_auto(&xlsx).expect("a workbook Excel can open");
    let sheet = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&sheet).expect("the sheet");
    let rows: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
    assert_eq!(
        rows[0],
        ["Email", "Phone", "Name"].map(|h| Data::String(h.into()))
    );
    assert_eq!(rows.len(), 3, "a header and two people: {rows:?}");
    let row = |email: &str| {
        rows.iter()
            .find(|r| r[0] == Data::String(email.into()))
            .unwrap_or_else(|| panic!("a row for {email}: {rows:?}"))
            .clone()
    };
    assert_eq!(
        row("x@example.com"),
        [
            Data::String("x@example.com".into()),
            Data::String("+447700900123".into()),
            Data::String(FORMULA.into()),
        ],
        "the phone is text and the formula is only text"
    );
    assert_eq!(row("zoe@example.com")[2], Data::String("Zoë Brontë".into()));
    let formulas = workbook.worksheet_formula(&sheet).expect("formulas");
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "no cell is a formula"
    );

    // The same export as an "Excel" CSV: BOM, CRLF, accents intact, the formula quoted away.
    choose_format(&app, "csv-excel").await;
    app.click("save-export").await;
    let csv_file = out.path().join("mailing.csv");
    let result = run_into(&app, &csv_file).await;
    assert!(result.contains(&csv_file.display().to_string()), "{result}");
    let bytes = std::fs::read(&csv_file).expect("the CSV file");
    assert!(
        bytes.starts_with("\u{feff}".as_bytes()),
        "Excel preset: BOM"
    );
    assert!(bytes.windows(2).any(|w| w == b"\r\n"), "Excel preset: CRLF");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["Email", "Phone", "Name"]
    );
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert!(
        records.contains(&vec![
            "x@example.com".to_string(),
            "'+447700900123".to_string(),
            format!("'{FORMULA}"),
        ]),
        "{records:?}"
    );
    assert!(records.iter().any(|r| r[2] == "Zoë Brontë"), "{records:?}");

    // Both runs are in the history.
    let deadline = std::time::Instant::now() + support::WAIT;
    while app.find_all("export-history-row").await.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "two runs in the history"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.shot("04-history").await;
    let mut left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["mailing.csv", "mailing.xlsx"],
        "the two files and no temporary file left behind"
    );

    // The command line, on the same data folder while the app runs, writes the same file.
    let cli_dir = tempfile::tempdir().expect("a folder for the command line's file");
    let cli_file = cli_dir.path().join("mailing.csv");
    let cli = std::process::Command::new(clientele_bin())
        .arg("--data-dir")
        .arg(app.data.path())
        .args(["export", "--profile", "Mailing list", "--out"])
        .arg(&cli_file)
        .output()
        .expect("run clientele export");
    assert!(cli.status.success(), "{cli:?}");
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains("2 rows"),
        "{cli:?}"
    );
    assert!(
        std::fs::read(&cli_file).expect("the command line's file") == bytes,
        "the command line and the window write the same bytes"
    );
    app.stop().await;
}
