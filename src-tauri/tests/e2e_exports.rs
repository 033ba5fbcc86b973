//! A shop manager builds a mailing export in the real window: picks columns from the searchable
//! list, renames and reorders them, chooses "Only people who said yes" to email marketing, checks
//! the live preview and how many match, runs it through the native save dialog (a real GTK dialog
//! under Xvfb, answered by typing a path), and the file is read back — XLSX with a spreadsheet
//! reader, CSV with a CSV parser. Only the people who said yes are in it; a customer whose name is
//! a formula arrives as text, never as a formula; in the CSV for other software phone numbers go
//! as they are and the consent column says "Yes" as chosen; the command line writes the same
//! bytes. Scrolling the editor far down with the mouse wheel never scrolls the window itself away.
//! Screenshots are kept in tests/artifacts/e2e/exports/.

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

fn customer(id: &str, first: &str, last: &str, email: &str, phone: &str, consent: bool) -> Vec<u8> {
    let at = (Utc::now() - ChronoDuration::minutes(10)).to_rfc3339_opts(SecondsFormat::Secs, true);
    serde_json::to_vec(&json!({
        "id": format!("evt_{id}"), "type": "customer.created", "created": at,
        "data": {"id": id, "firstName": first, "lastName": last, "email": email,
                 "phone": phone, "loyaltyPoints": 10, "tags": [], "marketingConsent": consent,
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

/// Chooses `value` in the `<select>` with this test id.
async fn choose(app: &App, testid: &str, value: &str) {
    app.find(testid)
        .await
        .find(Locator::Css(&format!("option[value=\"{value}\"]")))
        .await
        .unwrap_or_else(|e| panic!("{testid} offers {value}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Waits until the element with this test id shows `text`.
async fn wait_for_text_in(app: &App, testid: &str, text: &str) -> String {
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let shown = app.text_of(testid).await;
        if shown.contains(text) {
            return shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{testid} never showed {text:?}; it shows {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A number from the page (a JavaScript expression).
async fn js_number(app: &App, expression: &str) -> f64 {
    app.client
        .execute(&format!("return {expression};"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .as_f64()
        .unwrap_or_else(|| panic!("{expression} is not a number"))
}

/// Turns the mouse wheel down `notches` times over the element `selector` (CSS), as a person
/// would: real X pointer and button events (xdotool), not script.
async fn wheel_down_over(app: &App, selector: &str, notches: u32) {
    let point = app
        .client
        .execute(
            &format!(
                "const r = document.querySelector('{selector}').getBoundingClientRect();
                 return [Math.round(window.screenX + r.left + r.width / 2),
                         Math.round(window.screenY + r.top + Math.min(r.height / 2, 60))];"
            ),
            vec![],
        )
        .await
        .expect("where the element is on the screen");
    let xy: Vec<String> = point
        .as_array()
        .expect("two numbers")
        .iter()
        .map(|v| v.as_f64().expect("a coordinate").to_string())
        .collect();
    let xdotool = |args: &[&str]| {
        let out = std::process::Command::new("timeout")
            .arg("30")
            .arg("xdotool")
            .args(args)
            .output()
            .expect("run xdotool");
        assert!(out.status.success(), "xdotool {args:?}: {out:?}");
    };
    xdotool(&["mousemove", "--sync", &xy[0], &xy[1]]);
    let notches = notches.to_string();
    // Button 5 is the wheel turned down one notch.
    xdotool(&["click", "--repeat", &notches, "--delay", "80", "5"]);
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
            true,
        ),
        customer(
            "cust_formula",
            FORMULA,
            "",
            "x@example.com",
            "+447700900123",
            true,
        ),
        // Said no to marketing: never in the mailing list.
        customer(
            "cust_noah",
            "Noah",
            "Nein",
            "noah@example.com",
            "+447911123456",
            false,
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
    app.wait_for_text("Noah Nein", support::WAIT).await;

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

    // The mouse wheel turned far down over the right column scrolls the editor, never the window
    // itself: the left menu stays where it is. (It used to escape: the picker's visually hidden
    // "Add" labels, positioned against the whole page, made the page taller than the window.)
    app.find("source-option").await;
    app.find("export-preview").await;
    wheel_down_over(&app, "#export-columns-title", 24).await;
    let deadline = std::time::Instant::now() + support::WAIT;
    while js_number(&app, "document.querySelector('.screen-body').scrollTop").await == 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the wheel scrolls the editor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.shot("02a-editor-scrolled").await;
    // The cause, not only the symptom: nothing in the page reaches below the window (the page
    // can't scroll anyway, so this is what shows a label escaping its list again).
    assert!(
        js_number(&app, "document.documentElement.scrollHeight").await
            <= js_number(&app, "window.innerHeight").await,
        "nothing makes the page taller than the window"
    );
    assert_eq!(
        js_number(&app, "document.scrollingElement.scrollTop").await,
        0.0,
        "the window itself never scrolls"
    );
    assert_eq!(
        js_number(
            &app,
            "document.querySelector('.shell').getBoundingClientRect().top"
        )
        .await,
        0.0,
        "the app's frame stays in place"
    );
    assert_eq!(
        js_number(
            &app,
            "document.elementFromPoint(40, 40).closest('nav') ? 1 : 0"
        )
        .await,
        1.0,
        "the left menu is still on screen"
    );
    app.client
        .execute(
            "document.querySelector('.screen-body').scrollTop = 0",
            vec![],
        )
        .await
        .unwrap();

    // Which customers: only the people who said yes to email marketing.
    app.wait_for_text("All 3 customers", support::WAIT).await;
    choose(&app, "filter-email-marketing", "yes").await;
    wait_for_text_in(&app, "filter-count", "2 customers match").await;

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
    assert!(
        !rows
            .iter()
            .any(|r| r[0] == Data::String("noah@example.com".into())),
        "Noah said no: not in the mailing list"
    );
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
    assert_eq!(records.len(), 2, "only the two who said yes: {records:?}");

    // For a mailing tool: CSV for other software, with the consent column written "Yes" as
    // chosen. Phone numbers go in as they are; the formula is still quoted away.
    choose_format(&app, "csv-other").await;
    wait_for_text_in(&app, "neutralize-help", "go as they are").await;
    add_column(
        &app,
        "marketing",
        "email_marketing_opt_in",
        "Email marketing",
    )
    .await;
    let consent = app
        .find_all("export-column")
        .await
        .pop()
        .expect("the new column");
    consent
        .find(Locator::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let transforms = consent
        .find(Locator::Css("[data-testid=\"column-transforms\"]"))
        .await
        .unwrap();
    assert!(
        transforms
            .find(Locator::Css("[data-testid=\"column-date\"]"))
            .await
            .is_err(),
        "a yes/no column offers no date formats"
    );
    transforms
        .find(Locator::Css(
            "[data-testid=\"column-yes-no\"] option[value=\"yes_no\"]",
        ))
        .await
        .expect("the yes/no choice")
        .click()
        .await
        .unwrap();
    let phone = &app.find_all("export-column").await[1];
    phone
        .find(Locator::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        phone
            .find(Locator::Css("[data-testid=\"column-date\"]"))
            .await
            .is_err(),
        "the phone column offers no date formats"
    );
    phone
        .find(Locator::Css("[data-testid=\"column-phone\"]"))
        .await
        .expect("the phone column offers phone formats");
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let preview = app.text_of("export-preview").await;
        if preview.contains("Email marketing") && preview.contains("Yes") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the preview shows the consent as Yes: {preview:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.shot("04a-mailing-tool").await;
    app.click("save-export").await;
    let mailing_file = out.path().join("mailchimp.csv");
    let result = run_into(&app, &mailing_file).await;
    assert!(
        result.contains(&mailing_file.display().to_string()),
        "{result}"
    );
    let bytes = std::fs::read(&mailing_file).expect("the CSV for the mailing tool");
    assert!(!bytes.starts_with("\u{feff}".as_bytes()), "no BOM");
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["Email", "Phone", "Name", "Email marketing"]
    );
    let mut records: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    records.sort();
    assert_eq!(
        records,
        [
            vec![
                "x@example.com".to_string(),
                "+447700900123".to_string(),
                format!("'{FORMULA}"),
                "Yes".to_string(),
            ],
            vec![
                "zoe@example.com".to_string(),
                "+5511965958122".to_string(),
                "Zoë Brontë".to_string(),
                "Yes".to_string(),
            ],
        ],
        "only the people who said yes; phones as they are; consent in the words chosen"
    );

    // Both runs are in the history.
    let deadline = std::time::Instant::now() + support::WAIT;
    while app.find_all("export-history-row").await.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "three runs in the history"
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
        ["mailchimp.csv", "mailing.csv", "mailing.xlsx"],
        "the three files and no temporary file left behind"
    );

    // The command line, on the same data folder while the app runs, writes the same file.
    let cli_dir = tempfile::tempdir().expect("a folder for the command line's file");
    let cli_file = cli_dir.path().join("mailchimp.csv");
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
