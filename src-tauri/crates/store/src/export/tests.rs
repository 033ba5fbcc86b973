//! Exports against a real SQLite file filled through the real adapters and derivation, read back
//! with a CSV parser (`csv`) and a spreadsheet reader (`calamine`).

use super::*;
use crate::testing::{connect, delivery, temp_store};
use crate::{IngestOutcome, Store, Writer};
use calamine::{Data, Reader as _, Xlsx, open_workbook_from_rs};
use chrono::{Duration, TimeZone};
use clientele_core::Provider;
use clientele_core::export::{ColumnKind, RowKind};
use serde_json::{Value, json};
use std::sync::atomic::AtomicBool;

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 15, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn iso(minute: i64) -> String {
    t(minute).to_rfc3339()
}

fn deliver(w: &mut Writer, connection_id: i64, body: &Value) {
    let body = serde_json::to_vec(body).unwrap();
    let out = w
        .ingest(&[delivery(connection_id, &body_key(&body), &body)], &[])
        .unwrap();
    assert!(matches!(out[0], IngestOutcome::Stored { .. }), "{out:?}");
    w.derive_all().unwrap();
}

fn body_key(body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("{:x}", h.finish())
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    out: tempfile::TempDir,
    tiquo: i64,
}

fn tiquo_created(id: &str, minute: i64, data: Value) -> Value {
    let mut data = data;
    data["id"] = json!(id);
    json!({"id": format!("evt_{id}_{minute}"), "type": "customer.created", "created": iso(minute), "data": data})
}

/// Four customers at three providers:
/// - Zoë Ångström at Tiquo and Zupy (linked by email), Gold, tagged VIP, opted in, with a CPF;
/// - a customer whose name is a formula, with a `00` phone number and negative points;
/// - José Núñez at Vagaro, postal code 01234;
/// - a deleted Tiquo customer.
fn fixture() -> Fixture {
    let (dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let tiquo = connect(&mut w, Provider::Tiquo, "shop");
    let vagaro = connect(&mut w, Provider::Vagaro, "salon");
    let zupy = connect(&mut w, Provider::Zupy, "club");
    deliver(
        &mut w,
        tiquo,
        &tiquo_created(
            "cust_1",
            1,
            json!({"firstName": "Zoë", "lastName": "Ångström", "email": "zoe@example.com",
                   "phone": "+15550001", "loyaltyPoints": 120, "tags": ["VIP"],
                   "marketingConsent": true, "createdAt": "2024-01-10T09:00:00Z"}),
        ),
    );
    deliver(
        &mut w,
        tiquo,
        &tiquo_created(
            "cust_2",
            2,
            json!({"fullName": "=HYPERLINK(\"http://x\",\"click\")", "email": "hyper@example.com",
                   "phone": "00447911123456", "loyaltyPoints": -5, "tags": [],
                   "marketingConsent": false, "createdAt": "2024-02-01"}),
        ),
    );
    deliver(
        &mut w,
        vagaro,
        &json!({"id": "v1", "createdDate": iso(3), "type": "customer", "action": "created",
                "payload": {"customerId": "V1", "customerFirstName": "José",
                            "customerLastName": "Núñez", "email": "jose@example.com",
                            "mobilePhone": "(914) 555-1212", "postalCode": "01234",
                            "countryCode": "US", "businessIds": ["b1"]}}),
    );
    deliver(
        &mut w,
        zupy,
        &json!({"event": "customer.registered", "timestamp": iso(4), "company_id": "c1",
                "customer": {"member_id": "ZP-1", "whatsapp": "+5511965958122",
                             "email": "zoe@example.com", "name": "Zoë Ångström",
                             "cpf": "12345678901", "tier": "Gold", "created_at": iso(4)}}),
    );
    deliver(
        &mut w,
        tiquo,
        &tiquo_created(
            "cust_gone",
            5,
            json!({"firstName": "Gone", "lastName": "Away", "email": "gone@example.com"}),
        ),
    );
    deliver(
        &mut w,
        tiquo,
        &json!({"id": "evt_del", "type": "customer.deleted", "created": iso(6),
                "data": {"id": "cust_gone", "deletedAt": iso(6)}}),
    );
    Fixture {
        _dir: dir,
        store,
        out: tempfile::tempdir().unwrap(),
        tiquo,
    }
}

impl Fixture {
    fn save(&self, profile: Value) -> ExportProfile {
        let p = ExportProfile::from_json(&profile.to_string()).unwrap();
        self.store
            .writer()
            .unwrap()
            .save_export_profile(&p, t(100))
            .unwrap();
        p
    }

    fn run_to(&self, name: &str, out: &Path) -> Result<ExportRun, ExportError> {
        run_export(
            &self.store,
            &ExportRequest {
                profile: name,
                out,
                now: t(200),
                full: false,
            },
            &mut |_| {},
            &AtomicBool::new(false),
        )
    }

    fn run(&self, name: &str, file: &str) -> (ExportRun, Vec<u8>) {
        let path = self.out.path().join(file);
        let run = self.run_to(name, &path).expect("export runs");
        (run, std::fs::read(&path).unwrap())
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn mailing(format: Value) -> Value {
    json!({"name": "mailing", "rows": "people", "format": format,
    "columns": [
        {"header": "Name", "source": "display_name"},
        {"header": "Email", "source": "email"},
        {"header": "Phone", "source": "phone"},
        {"header": "Points", "source": "loyalty_points"},
        {"header": "Postcode", "source": "postal_code"},
        {"header": "Tags", "source": "tags"},
        {"header": "Opted in", "source": "email_marketing_opt_in"},
        {"header": "Customer since", "source": "created_at"},
        {"header": "First seen", "source": "first_seen"}
    ]})
}

fn read_csv(bytes: &[u8], delimiter: u8, header: bool) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .from_reader(bytes);
    let rows: Vec<Vec<String>> = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    if header {
        assert!(!rows.is_empty(), "a header row");
    }
    rows
}

/// The row whose first cell is `first`.
fn by_email_free<'a>(rows: &'a [Vec<String>], first: &str) -> &'a Vec<String> {
    rows.iter()
        .find(|r| r[0] == first)
        .unwrap_or_else(|| panic!("no row for {first}: {rows:?}"))
}

fn by_email<'a>(rows: &'a [Vec<String>], email: &str) -> &'a Vec<String> {
    rows.iter()
        .find(|r| r.iter().any(|c| c == email))
        .unwrap_or_else(|| panic!("no row with {email}: {rows:?}"))
}

#[test]
fn excel_csv_preset_has_bom_crlf_accents_and_neutralized_formulas() {
    let f = fixture();
    f.save(mailing(json!({"type": "csv", "preset": "excel"})));
    let (run, bytes) = f.run("mailing", "mailing.csv");
    assert_eq!(run.outcome, RunOutcome::Succeeded);
    assert_eq!(run.rows, 3, "three people; the deleted one is left out");
    assert!(bytes.starts_with(BOM), "Excel preset writes a UTF-8 BOM");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert_eq!(
        text.matches("\r\n").count(),
        text.matches('\n').count(),
        "every line ends with CRLF"
    );
    assert!(text.contains("Zoë Ångström") && text.contains("José Núñez"));
    let rows = read_csv(&bytes[3..], b',', true);
    assert_eq!(
        rows[0],
        vec![
            "Name",
            "Email",
            "Phone",
            "Points",
            "Postcode",
            "Tags",
            "Opted in",
            "Customer since",
            "First seen"
        ]
    );
    assert_eq!(rows.len(), 4);
    let hyper = by_email(&rows, "hyper@example.com");
    assert_eq!(hyper[0], "'=HYPERLINK(\"http://x\",\"click\")");
    assert_eq!(hyper[2], "00447911123456");
    assert_eq!(hyper[3], "-5", "numbers are never neutralized");
    assert_eq!(
        hyper[6], "No",
        "a yes/no in words, for a person reading Excel"
    );
    assert_eq!(
        hyper[7], "2024-02-01T00:00:00Z",
        "Tiquo's date, as the adapter stored it"
    );
    let zoe = by_email(&rows, "zoe@example.com");
    assert_eq!(zoe[0], "Zoë Ångström");
    assert_eq!(
        zoe[2], "'+5511965958122",
        "the latest phone (Zupy's), neutralized"
    );
    assert_eq!(zoe[3], "120");
    assert_eq!(zoe[5], "VIP");
    assert_eq!(zoe[8], "2024-03-15T09:01:00Z");
    let jose = by_email(&rows, "jose@example.com");
    assert_eq!(jose[4], "01234");
}

#[test]
fn other_preset_and_explicit_csv_options() {
    let f = fixture();
    f.save(json!({"name": "plain", "rows": "people",
        "format": {"type": "csv", "preset": "other"},
        "columns": [{"header": "Name", "source": "display_name"}, {"header": "Phone", "source": "phone"}]}));
    let (_, bytes) = f.run("plain", "plain.csv");
    assert!(!bytes.starts_with(BOM));
    assert!(!bytes.contains(&b'\r'), "LF only");
    let rows = read_csv(&bytes, b',', true);
    assert_eq!(rows[0], vec!["Name", "Phone"]);
    assert_eq!(
        by_email_free(&rows, "Zoë Ångström")[1],
        "+5511965958122",
        "for other software a phone number goes as it is (no ' for a mailing tool to keep)"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r[0] == "'=HYPERLINK(\"http://x\",\"click\")")
            .count(),
        1,
        "everything else formula-like is still neutralized: {rows:?}"
    );

    f.save(json!({"name": "semi", "rows": "people",
        "format": {"type": "csv", "delimiter": ";", "header": false, "bom": false,
                   "line_ending": "lf", "neutralize_formulas": false},
        "columns": [{"header": "Name", "source": "display_name"}, {"header": "Email", "source": "email"}]}));
    let (_, bytes) = f.run("semi", "semi.csv");
    let rows = read_csv(&bytes, b';', false);
    assert_eq!(rows.len(), 3, "no header row");
    assert!(
        rows.iter()
            .any(|r| r[0] == "=HYPERLINK(\"http://x\",\"click\")"),
        "neutralization turned off explicitly: {rows:?}"
    );

    f.save(json!({"name": "tabs", "rows": "people",
        "format": {"type": "csv", "delimiter": "tab"},
        "columns": [{"header": "Name", "source": "display_name"}, {"header": "Email", "source": "email"}]}));
    let (_, bytes) = f.run("tabs", "tabs.tsv");
    let rows = read_csv(&bytes[3..], b'\t', true);
    assert_eq!(rows[0], vec!["Name", "Email"]);
    assert_eq!(rows.len(), 4);
}

fn sheet(bytes: Vec<u8>, name: &str) -> (calamine::Range<Data>, calamine::Range<String>) {
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), vec![name.to_string()]);
    let range = wb.worksheet_range(name).unwrap();
    let formulas = wb.worksheet_formula(name).unwrap();
    (range, formulas)
}

fn row_of<'a>(range: &'a calamine::Range<Data>, email: &str) -> Vec<&'a Data> {
    range
        .rows()
        .find(|r| r.iter().any(|c| *c == Data::String(email.into())))
        .unwrap_or_else(|| panic!("no row with {email}"))
        .iter()
        .collect()
}

#[test]
fn xlsx_has_real_types_leading_zeros_and_formulas_as_text() {
    let f = fixture();
    let mut profile = mailing(json!({"type": "xlsx"}));
    profile["columns"]
        .as_array_mut()
        .unwrap()
        .push(json!({"header": "Seen (UK)", "source": "first_seen",
                     "transform": {"date": {"format": "%d/%m/%Y %H:%M", "time_zone": "Europe/London"}}}));
    f.save(profile);
    let (run, bytes) = f.run("mailing", "mailing.xlsx");
    assert_eq!(run.rows, 3);
    let (range, formulas) = sheet(bytes, "mailing");
    assert!(
        formulas.used_cells().next().is_none(),
        "no cell is a formula"
    );
    assert_eq!(range.get_value((0, 0)), Some(&Data::String("Name".into())));
    assert_eq!(range.height(), 4);

    let hyper = row_of(&range, "hyper@example.com");
    assert_eq!(
        hyper[0],
        &Data::String("=HYPERLINK(\"http://x\",\"click\")".into()),
        "arrives as text, not a formula"
    );
    assert_eq!(
        hyper[2],
        &Data::String("00447911123456".into()),
        "phone kept as text with its zeros"
    );
    assert!(
        matches!(hyper[3], Data::Float(v) if *v == -5.0) || hyper[3] == &Data::Int(-5),
        "points are a number: {:?}",
        hyper[3]
    );
    assert_eq!(hyper[6], &Data::String("No".into()), "a yes/no in words");
    match hyper[7] {
        Data::DateTime(d) => {
            assert_eq!(d.as_datetime().unwrap().to_string(), "2024-02-01 00:00:00")
        }
        other => panic!("created_at must be a date cell, got {other:?}"),
    }

    let jose = row_of(&range, "jose@example.com");
    assert_eq!(
        jose[4],
        &Data::String("01234".into()),
        "postal code keeps its zero"
    );
    assert_eq!(jose[2], &Data::String("(914) 555-1212".into()));

    let zoe = row_of(&range, "zoe@example.com");
    assert_eq!(zoe[0], &Data::String("Zoë Ångström".into()));
    assert_eq!(zoe[2], &Data::String("+5511965958122".into()));
    match zoe[8] {
        Data::DateTime(d) => assert_eq!(
            d.as_datetime().unwrap().to_string(),
            "2024-03-15 09:01:00",
            "UTC by default"
        ),
        other => panic!("first_seen must be a date cell, got {other:?}"),
    }
    match zoe[9] {
        Data::DateTime(d) => assert_eq!(
            d.as_datetime().unwrap().to_string(),
            "2024-03-15 09:01:00",
            "London is on GMT in March"
        ),
        other => panic!("a formatted date is still a date cell, got {other:?}"),
    }
    assert_eq!(zoe[5], &Data::String("VIP".into()));
}

#[test]
fn incremental_runs_contain_only_what_changed() {
    let f = fixture();
    f.save(json!({"name": "sync", "rows": "people", "incremental": true,
        "format": {"type": "csv", "preset": "other"},
        "columns": [{"header": "Email", "source": "email"}, {"header": "Name", "source": "display_name"}]}));
    let rows_of = |file: &str| {
        let (run, bytes) = f.run("sync", file);
        let rows = read_csv(&bytes, b',', true);
        assert_eq!(run.rows as usize, rows.len() - 1);
        rows[1..].to_vec()
    };
    assert_eq!(rows_of("1.csv").len(), 3, "the first run writes everyone");
    assert_eq!(rows_of("2.csv").len(), 0, "nothing changed");

    let mut w = f.store.writer().unwrap();
    // A change to an exported column, a change to a column the profile doesn't write, and a
    // new customer.
    deliver(
        &mut w,
        f.tiquo,
        &json!({"id": "evt_u1", "type": "customer.updated", "created": iso(20),
                "data": {"id": "cust_2", "email": "hyper.new@example.com"},
                "previousAttributes": {"email": "hyper@example.com"}}),
    );
    deliver(
        &mut w,
        f.tiquo,
        &json!({"id": "evt_u2", "type": "customer.updated", "created": iso(21),
                "data": {"id": "cust_1", "loyaltyPoints": 500},
                "previousAttributes": {"loyaltyPoints": 120}}),
    );
    deliver(
        &mut w,
        f.tiquo,
        &tiquo_created(
            "cust_3",
            22,
            json!({"firstName": "New", "email": "new@example.com"}),
        ),
    );

    // A failed run (missing folder) must not move the baseline.
    let err = f
        .run_to("sync", &f.out.path().join("missing").join("x.csv"))
        .unwrap_err();
    assert!(matches!(err, ExportError::FolderMissing(_)), "{err}");

    let rows = rows_of("3.csv");
    let emails: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        emails.len(),
        2,
        "only the changed and the new customer: {rows:?}"
    );
    assert!(emails.contains(&"hyper.new@example.com"));
    assert!(emails.contains(&"new@example.com"));
    assert_eq!(rows_of("4.csv").len(), 0, "and then nothing again");

    // `full` writes everyone and keeps the baseline.
    let path = f.out.path().join("full.csv");
    let run = run_export(
        &f.store,
        &ExportRequest {
            profile: "sync",
            out: &path,
            now: t(300),
            full: true,
        },
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(run.rows, 4);
    assert_eq!(rows_of("5.csv").len(), 0);
}

#[test]
fn cancelled_and_failed_exports_leave_no_file() {
    let f = fixture();
    f.save(mailing(json!({"type": "xlsx"})));
    f.save(
        json!({"name": "csv", "rows": "people", "format": {"type": "csv"},
                  "columns": [{"header": "Email", "source": "email"}]}),
    );
    let out = f.out.path().join("mailing.xlsx");
    std::fs::write(&out, b"previous export").unwrap();
    for name in ["mailing", "csv"] {
        let cancel = AtomicBool::new(false);
        let err = run_export(
            &f.store,
            &ExportRequest {
                profile: name,
                out: &out,
                now: t(200),
                full: false,
            },
            // Cancel as soon as the run reports it has started.
            &mut |_| cancel.store(true, Ordering::Relaxed),
            &cancel,
        )
        .unwrap_err();
        assert!(matches!(err, ExportError::Cancelled), "{err}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            b"previous export",
            "an existing file is untouched"
        );
        assert_eq!(
            f.leftovers(),
            vec!["mailing.xlsx"],
            "no temporary file left"
        );
    }

    let missing = f.out.path().join("nope").join("x.csv");
    let err = f.run_to("csv", &missing).unwrap_err();
    assert!(matches!(err, ExportError::FolderMissing(_)), "{err}");
    assert!(err.to_string().contains("doesn't exist"), "{err}");
    assert!(!missing.exists());

    let err = f.run_to("csv", f.out.path()).unwrap_err();
    assert!(matches!(err, ExportError::IsAFolder(_)), "{err}");

    // A folder that can't be written (only meaningful when not running as root).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = f.out.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(locked.join("probe"), b"x").is_err() {
            let err = f.run_to("csv", &locked.join("x.csv")).unwrap_err();
            assert!(
                matches!(err, ExportError::FolderNotWritable { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("can't write"), "{err}");
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let history = f.store.reader().unwrap().export_runs(None, None).unwrap();
    let outcomes: Vec<RunOutcome> = history.iter().map(|r| r.outcome).collect();
    assert!(outcomes.contains(&RunOutcome::Cancelled));
    assert!(outcomes.contains(&RunOutcome::Failed));
    assert!(!outcomes.contains(&RunOutcome::Running));
    assert!(history.iter().all(|r| r.rows == 0));
    assert!(
        history
            .iter()
            .filter(|r| r.outcome == RunOutcome::Failed)
            .filter_map(|r| r.error.as_deref())
            .any(|e| e.contains("doesn't exist")),
        "the history says why: {history:#?}"
    );
}

#[test]
fn sensitive_fields_are_exported_only_when_a_column_names_them() {
    let f = fixture();
    let everything: Vec<Value> = clientele_core::fields::CANONICAL
        .iter()
        .map(|c| json!({"header": c, "source": c}))
        .chain(
            clientele_core::export::source::PERSON_FACTS
                .iter()
                .map(|(n, _, _)| json!({"header": n, "source": n})),
        )
        .collect();
    f.save(
        json!({"name": "all", "rows": "people", "format": {"type": "csv"}, "columns": everything}),
    );
    let mut events: Vec<Value> = clientele_core::export::source::EVENT_FACTS
        .iter()
        .map(|(n, _, _)| json!({"header": n, "source": n}))
        .collect();
    events.push(json!({"header": "Details", "source": "details.welcome_reward"}));
    f.save(
        json!({"name": "timeline", "rows": "events", "format": {"type": "csv"}, "columns": events}),
    );
    for name in ["all", "timeline"] {
        let (_, bytes) = f.run(name, &format!("{name}.csv"));
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.contains("12345678901"),
            "{name}: the CPF must not appear unless named:\n{text}"
        );
    }
    let (_, bytes) = f.run("timeline", "timeline.csv");
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains("CPF (tax ID) changed")
    );
    f.save(json!({"name": "cpf", "rows": "people", "format": {"type": "csv"},
                  "columns": [{"header": "Email", "source": "email"}, {"header": "CPF", "source": "zupy.cpf"}]}));
    let (_, bytes) = f.run("cpf", "cpf.csv");
    let rows = read_csv(&bytes[3..], b',', true);
    assert_eq!(by_email(&rows, "zoe@example.com")[1], "12345678901");
}

#[test]
fn filters_choose_the_rows() {
    let f = fixture();
    let emails = |filters: Value| -> Vec<String> {
        f.save(
            json!({"name": "f", "rows": "people", "format": {"type": "csv", "preset": "other"},
                      "filters": filters, "columns": [{"header": "Email", "source": "email"}]}),
        );
        let (_, bytes) = f.run("f", "f.csv");
        let mut e: Vec<String> = read_csv(&bytes, b',', true)[1..]
            .iter()
            .map(|r| r[0].clone())
            .collect();
        e.sort();
        e
    };
    assert_eq!(
        emails(json!({"providers": ["vagaro"]})),
        vec!["jose@example.com"]
    );
    assert_eq!(
        emails(json!({"connections": ["zupy/club"]})),
        vec!["zoe@example.com"]
    );
    assert_eq!(
        emails(json!({"providers": ["tiquo"], "connections": ["zupy/club"]})),
        vec!["zoe@example.com"],
        "both must hold"
    );
    assert_eq!(emails(json!({"tiers": ["gold"]})), vec!["zoe@example.com"]);
    assert_eq!(emails(json!({"tags": ["vip"]})), vec!["zoe@example.com"]);
    assert_eq!(
        emails(json!({"email_marketing_opt_in": false})),
        vec!["hyper@example.com", "jose@example.com"]
    );
    assert_eq!(
        emails(json!({"event_time": {"from": iso(2), "to": iso(4)}})),
        vec!["hyper@example.com", "jose@example.com"]
    );
    assert_eq!(
        emails(json!({"include_deleted": true})),
        vec![
            "gone@example.com",
            "hyper@example.com",
            "jose@example.com",
            "zoe@example.com"
        ]
    );
    assert_eq!(
        emails(json!({"event_kinds": ["deleted"], "include_deleted": true})),
        vec!["gone@example.com"]
    );
}

#[test]
fn timeline_rows_in_event_order_with_changes_and_person_columns() {
    let f = fixture();
    let mut w = f.store.writer().unwrap();
    deliver(
        &mut w,
        f.tiquo,
        &json!({"id": "evt_u1", "type": "customer.updated", "created": iso(30),
                "data": {"id": "cust_2", "email": "hyper.new@example.com"},
                "previousAttributes": {"email": "hyper@example.com"}}),
    );
    // Arrives late, happened first.
    deliver(
        &mut w,
        f.tiquo,
        &tiquo_created("cust_early", -30, json!({"email": "early@example.com"})),
    );
    f.save(json!({"name": "timeline", "rows": "events",
    "format": {"type": "csv", "preset": "other"},
    "filters": {"providers": ["tiquo"], "event_kinds": ["created", "updated"]},
    "columns": [
        {"header": "When", "source": "occurred_at", "transform": {"date": {"format": "%H:%M"}}},
        {"header": "Kind", "source": "kind"},
        {"header": "Provider", "source": "provider"},
        {"header": "Old email", "source": "change.email.old"},
        {"header": "New email", "source": "change.email.new"},
        {"header": "Email now", "source": "email"}
    ]}));
    let (run, bytes) = f.run("timeline", "timeline.csv");
    let rows = read_csv(&bytes, b',', true);
    assert_eq!(run.rows as usize, rows.len() - 1);
    let times: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        times,
        vec!["08:30", "09:01", "09:02", "09:05", "09:30"],
        "time order, the late event first"
    );
    let update = rows.last().unwrap();
    assert_eq!(
        update,
        &vec![
            "09:30",
            "updated",
            "Tiquo",
            "hyper@example.com",
            "hyper.new@example.com",
            "hyper.new@example.com"
        ]
    );
}

/// Events read their person with them and keep the last few people read (two in tests): with
/// three people's events interleaved, people are dropped and read again, and every row still
/// shows its own person.
#[test]
fn timeline_rows_show_their_own_person_when_people_are_read_again() {
    let f = fixture();
    let mut w = f.store.writer().unwrap();
    deliver(
        &mut w,
        f.tiquo,
        &tiquo_created(
            "cust_3",
            7,
            json!({"firstName": "Ines", "lastName": "Third", "email": "ines@example.com"}),
        ),
    );
    let customers = [
        "cust_1", "cust_2", "cust_3", "cust_1", "cust_3", "cust_2", "cust_2", "cust_1",
    ];
    for (i, id) in customers.iter().enumerate() {
        deliver(
            &mut w,
            f.tiquo,
            &json!({"id": format!("evt_p{i}"), "type": "customer.updated", "created": iso(10 + i as i64),
                    "data": {"id": id, "loyaltyPoints": i}, "previousAttributes": {"loyaltyPoints": 0}}),
        );
    }
    f.save(
        json!({"name": "who", "rows": "events", "format": {"type": "csv", "preset": "other"},
        "filters": {"providers": ["tiquo"], "event_kinds": ["updated"]},
        "columns": [
            {"header": "Ref", "source": "customer_ref"},
            {"header": "Email", "source": "email"},
            {"header": "Name", "source": "display_name"},
            {"header": "Emails", "source": "emails"}
        ]}),
    );
    let (run, bytes) = f.run("who", "who.csv");
    let rows = read_csv(&bytes, b',', true);
    assert_eq!(run.rows as usize, customers.len());
    let expected = |id: &str| match id {
        "cust_1" => ["zoe@example.com", "Zoë Ångström"],
        "cust_2" => ["hyper@example.com", "'=HYPERLINK(\"http://x\",\"click\")"],
        _ => ["ines@example.com", "Ines Third"],
    };
    let got: Vec<Vec<&str>> = rows[1..]
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let want: Vec<Vec<&str>> = customers
        .iter()
        .map(|id| {
            let [email, name] = expected(id);
            vec![*id, email, name, email]
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn preview_shows_the_first_rows_exactly_as_written() {
    let f = fixture();
    let p = f.save(mailing(json!({"type": "csv", "preset": "other"})));
    let preview = preview_export(&f.store, &p, 50, t(200)).unwrap();
    let (_, bytes) = f.run("mailing", "m.csv");
    let rows = read_csv(&bytes, b',', true);
    assert_eq!(preview.headers, rows[0]);
    let texts: Vec<Vec<String>> = preview
        .rows
        .iter()
        .map(|r| r.iter().map(|c| c.text.clone()).collect())
        .collect();
    assert_eq!(texts, rows[1..].to_vec());
    assert_eq!(preview.total, 3);
    assert_eq!(
        preview.matching,
        Some(3),
        "no filter on the profile: every row read"
    );
    assert_eq!(preview.file_name, "mailing-2024-03-15.csv");
    let hyper = preview
        .rows
        .iter()
        .find(|r| r[1].text == "hyper@example.com")
        .unwrap();
    assert_eq!(hyper[3].kind, "number");
    assert_eq!(hyper[2].kind, "text");
    assert_eq!(hyper[7].kind, "date");
    let one = preview_export(&f.store, &p, 1, t(200)).unwrap();
    assert_eq!(one.rows.len(), 1);

    // XLSX preview shows what a spreadsheet shows: the text itself, typed.
    let mut x = p.clone();
    x.format = clientele_core::export::Format::Xlsx(Default::default());
    let preview = preview_export(&f.store, &x, 50, t(200)).unwrap();
    assert!(
        preview
            .rows
            .iter()
            .any(|r| r[0].text == "=HYPERLINK(\"http://x\",\"click\")" && r[0].kind == "text")
    );
}

#[test]
fn profiles_are_created_replaced_listed_shown_and_deleted_with_history_kept() {
    let f = fixture();
    let mut w = f.store.writer().unwrap();
    let p = ExportProfile::from_json(&mailing(json!({"type": "csv"})).to_string()).unwrap();
    assert_eq!(w.save_export_profile(&p, t(1)).unwrap(), Saved::Created);
    let mut changed = p.clone();
    changed.columns.truncate(1);
    assert_eq!(
        w.save_export_profile(&changed, t(2)).unwrap(),
        Saved::Replaced
    );
    let r = f.store.reader().unwrap();
    let listed = r.export_profiles().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].profile, changed);
    assert_eq!(listed[0].created_at, t(1));
    assert_eq!(listed[0].updated_at, t(2));
    let (run, _) = f.run("mailing", "m.csv");
    assert_eq!(run.profile, "mailing");
    assert!(run.file.ends_with("m.csv"));
    assert_eq!(run.format, "csv");
    assert_eq!(run.started_at, t(200));
    assert!(run.finished_at.is_some() && run.duration_ms.is_some());
    w.delete_export_profile("mailing").unwrap();
    assert!(matches!(
        r.export_profile("mailing"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(r.export_runs(Some("mailing"), None).unwrap().len(), 1);
    let mut bad = p.clone();
    bad.columns[0].source = "nope".into();
    assert!(w.save_export_profile(&bad, t(3)).is_err());
    let err = f.run_to("nope", &f.out.path().join("x.csv")).unwrap_err();
    assert!(
        matches!(err, ExportError::Store(StoreError::NotFound(_))),
        "{err}"
    );
}

#[test]
fn streaming_queries_never_sort_the_whole_result() {
    let f = fixture();
    let conn = f.store.reader().unwrap();
    for (rows, filters) in [
        ("people", json!({})),
        (
            "people",
            json!({"providers": ["tiquo"], "event_time": {"from": "2024-01-01"}, "event_kinds": ["created"]}),
        ),
        ("events", json!({})),
        (
            "events",
            json!({"providers": ["tiquo"], "connections": ["tiquo/shop"], "event_time": {"from": "2024-01-01", "to": "2025-01-01"}, "event_kinds": ["created"]}),
        ),
    ] {
        let p = ExportProfile::from_json(
            &json!({"name": "q", "rows": rows, "format": {"type": "csv"}, "filters": filters,
                    "columns": [{"header": "E", "source": "email"}, {"header": "C", "source": "providers"}]})
            .to_string(),
        )
        .unwrap();
        let compiled = CompiledProfile::new(p, None).unwrap();
        let (sql, params) = rows::stream_sql(&compiled);
        let plan: Vec<String> = conn
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !plan.iter().any(|l| l.contains("TEMP B-TREE")),
            "{rows} {filters}: the query must stream in index order, plan: {plan:#?}"
        );
    }
}

#[test]
fn source_options_list_every_source_with_samples_but_never_sample_sensitive_ones() {
    let f = fixture();
    let people = source_options(&f.store, RowKind::People, 3, t(200)).unwrap();
    let find = |opts: &[SourceOption], s: &str| {
        opts.iter()
            .find(|o| o.source == s)
            .unwrap_or_else(|| panic!("no {s}"))
            .clone()
    };
    let email = find(&people, "email");
    assert_eq!(email.label, "Email");
    assert_eq!(email.group, "customer");
    assert_eq!(email.kind, ColumnKind::Text);
    assert_eq!(find(&people, "phone").kind, ColumnKind::Phone);
    assert_eq!(
        find(&people, "email_marketing_opt_in").kind,
        ColumnKind::YesNo
    );
    assert_eq!(find(&people, "first_seen").kind, ColumnKind::Date);
    assert!(
        email.samples.contains(&"zoe@example.com".to_string()),
        "{email:?}"
    );
    let cpf = find(&people, "zupy.cpf");
    assert!(cpf.sensitive && cpf.samples.is_empty(), "{cpf:?}");
    assert_eq!(cpf.group, "provider");
    let hyper = find(&people, "full_name");
    assert!(
        hyper.samples.iter().any(|s| s.starts_with("=HYPERLINK")),
        "samples show the customer's value, not the quoted cell: {hyper:?}"
    );
    assert!(!people.iter().any(|o| o.source == "summary"));
    let events = source_options(&f.store, RowKind::Events, 2, t(200)).unwrap();
    assert!(find(&events, "summary").samples.len() <= 2);
    find(&events, "change.email.old");
    // Every option is a source a profile accepts.
    for o in people.iter().chain(&events) {
        let rows = if people.contains(o) {
            RowKind::People
        } else {
            RowKind::Events
        };
        clientele_core::export::Source::parse(&o.source, rows).unwrap();
    }
}

#[test]
fn a_preview_counts_who_matches_the_filters() {
    let f = fixture();
    let mut p = f.save(mailing(json!({"type": "csv", "preset": "other"})));
    p.filters.email_marketing_opt_in = Some(true);
    let preview = preview_export(&f.store, &p, 50, t(200)).unwrap();
    assert_eq!(preview.total, 3, "people read");
    assert_eq!(
        preview.matching,
        Some(1),
        "Zoë is the only one who said yes"
    );
    assert_eq!(preview.rows.len(), 1);
    // Counted even when fewer rows are shown than match.
    p.filters.email_marketing_opt_in = Some(false);
    let preview = preview_export(&f.store, &p, 1, t(200)).unwrap();
    assert_eq!((preview.rows.len(), preview.matching), (1, Some(2)));
    p.filters.tags = vec!["nobody".into()];
    let preview = preview_export(&f.store, &p, 50, t(200)).unwrap();
    assert_eq!((preview.rows.len(), preview.matching), (0, Some(0)));
}

#[test]
fn consent_and_yes_no_words_follow_the_column_and_the_file() {
    let f = fixture();
    let profile = |format: Value, yes_no: Option<&str>| {
        let mut transform = json!({});
        if let Some(w) = yes_no {
            transform["yes_no"] = json!(w);
        }
        json!({"name": "consent", "rows": "people", "format": format,
            "columns": [{"header": "Email", "source": "email"},
                        {"header": "Email marketing", "source": "email_marketing_opt_in", "transform": transform},
                        {"header": "SMS marketing", "source": "sms_marketing_opt_in"}]})
    };
    let answers = |format: Value, yes_no: Option<&str>| -> Vec<Vec<String>> {
        f.save(profile(format, yes_no));
        let (_, bytes) = f.run("consent", "consent.csv");
        let start = if bytes.starts_with(BOM) { 3 } else { 0 };
        let mut rows = read_csv(&bytes[start..], b',', true)[1..].to_vec();
        rows.sort();
        rows
    };
    let row = |e: &str, a: &str| vec![e.to_string(), a.to_string(), String::new()];
    assert_eq!(
        answers(json!({"type": "csv"}), None),
        [
            row("hyper@example.com", "No"),
            row("jose@example.com", ""),
            row("zoe@example.com", "Yes")
        ],
        "CSV for Excel: Yes/No; never asked stays empty"
    );
    assert_eq!(
        answers(json!({"type": "csv", "preset": "other"}), None),
        [
            row("hyper@example.com", "false"),
            row("jose@example.com", ""),
            row("zoe@example.com", "true")
        ],
        "CSV for other software: true/false"
    );
    assert_eq!(
        answers(json!({"type": "csv", "preset": "other"}), Some("one_zero")),
        [
            row("hyper@example.com", "0"),
            row("jose@example.com", ""),
            row("zoe@example.com", "1")
        ]
    );
    // An Excel workbook: Yes/No words by default, a real TRUE/FALSE cell when asked.
    f.save(profile(json!({"type": "xlsx"}), Some("true_false")));
    let (_, bytes) = f.run("consent", "consent.xlsx");
    let (range, _) = sheet(bytes, "consent");
    assert_eq!(row_of(&range, "zoe@example.com")[1], &Data::Bool(true));
}

/// Farah is one person at two providers, linked by her phone number: Tiquo has her old email
/// and her "yes" to email marketing (given for that address); Vagaro, later, has her new email
/// and never asked. Ana, at Tiquo only, said yes with the address she still has.
fn farah_fixture() -> Fixture {
    let (dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let tiquo = connect(&mut w, Provider::Tiquo, "shop");
    let vagaro = connect(&mut w, Provider::Vagaro, "uptown");
    deliver(
        &mut w,
        tiquo,
        &tiquo_created(
            "cust_farah",
            1,
            json!({"firstName": "Farah", "lastName": "Haddad", "email": "farah@old.example",
                   "phone": "+447911123456", "marketingConsent": true}),
        ),
    );
    deliver(
        &mut w,
        tiquo,
        &tiquo_created(
            "cust_ana",
            2,
            json!({"firstName": "Ana", "lastName": "Silva", "email": "ana@example.com",
                   "phone": "+447911654321", "marketingConsent": true}),
        ),
    );
    deliver(
        &mut w,
        vagaro,
        &json!({"id": "v1", "createdDate": iso(10), "type": "customer", "action": "created",
                "payload": {"customerId": "V-FARAH", "customerFirstName": "Farah",
                            "customerLastName": "Haddad", "email": "farah@new.example",
                            "mobilePhone": "+44 7911 123456", "businessIds": ["b1"]}}),
    );
    Fixture {
        _dir: dir,
        store,
        out: tempfile::tempdir().unwrap(),
        tiquo,
    }
}

#[test]
fn the_consent_exported_is_the_one_given_for_the_address_exported() {
    let f = farah_fixture();
    // One person, Vagaro's (newer) email, Tiquo's consent on her profile.
    let people: i64 = f
        .store
        .reader()
        .unwrap()
        .conn
        .query_row("SELECT COUNT(*) FROM people", [], |r| r.get(0))
        .unwrap();
    assert_eq!(people, 2, "Farah's two records are one person");
    f.save(
        json!({"name": "all", "rows": "people", "format": {"type": "csv", "preset": "other"},
        "columns": [{"header": "Email", "source": "email"},
                    {"header": "Email marketing", "source": "email_marketing_opt_in"},
                    {"header": "Providers", "source": "providers"}]}),
    );
    let (_, bytes) = f.run("all", "all.csv");
    let rows = read_csv(&bytes, b',', true);
    assert_eq!(
        by_email(&rows, "farah@new.example"),
        &vec!["farah@new.example", "", "Tiquo, Vagaro"],
        "her yes was for farah@old.example, not for the address in the file"
    );
    assert_eq!(
        by_email(&rows, "ana@example.com")[1],
        "true",
        "one record: its own answer"
    );

    // A mailing list of people who said yes has Ana, and not Farah's new address.
    f.save(
        json!({"name": "mailing", "rows": "people", "format": {"type": "csv", "preset": "other"},
        "filters": {"email_marketing_opt_in": true},
        "columns": [{"header": "Email", "source": "email"}]}),
    );
    let (run, bytes) = f.run("mailing", "mailing.csv");
    assert_eq!(
        read_csv(&bytes, b',', true),
        [vec!["Email"], vec!["ana@example.com"]]
    );
    assert_eq!(run.rows, 1);
    let p = f
        .store
        .reader()
        .unwrap()
        .export_profile("mailing")
        .unwrap()
        .profile;
    let preview = preview_export(&f.store, &p, 50, t(200)).unwrap();
    assert_eq!(preview.matching, Some(1), "the count agrees with the file");

    // Timeline rows read the same person the same way.
    f.save(
        json!({"name": "tl", "rows": "events", "format": {"type": "csv", "preset": "other"},
        "filters": {"providers": ["vagaro"]},
        "columns": [{"header": "Email", "source": "email"},
                    {"header": "Email marketing", "source": "email_marketing_opt_in"}]}),
    );
    let (_, bytes) = f.run("tl", "tl.csv");
    assert_eq!(
        read_csv(&bytes, b',', true)[1],
        vec!["farah@new.example", ""]
    );

    // Once Tiquo has her new address too, her yes is for it.
    let mut w = f.store.writer().unwrap();
    deliver(
        &mut w,
        f.tiquo,
        &json!({"id": "evt_farah_u", "type": "customer.updated", "created": iso(20),
                "data": {"id": "cust_farah", "email": "farah@new.example"},
                "previousAttributes": {"email": "farah@old.example"}}),
    );
    let (_, bytes) = f.run("mailing", "mailing.csv");
    let mut emails = read_csv(&bytes, b',', true)[1..].to_vec();
    emails.sort();
    assert_eq!(emails, [vec!["ana@example.com"], vec!["farah@new.example"]]);
}

#[test]
fn filter_pickers_offer_the_tiers_and_tags_customers_have() {
    let f = fixture();
    let mut w = f.store.writer().unwrap();
    deliver(
        &mut w,
        f.tiquo,
        &tiquo_created(
            "cust_3",
            7,
            json!({"firstName": "Tag", "email": "tag@example.com", "tags": ["vip", "Lapsed "],
                   "loyaltyTier": "Silver"}),
        ),
    );
    deliver(
        &mut w,
        f.tiquo,
        &tiquo_created(
            "cust_4",
            8,
            json!({"firstName": "Tig", "email": "tig@example.com", "tags": ["VIP"]}),
        ),
    );
    let (tiers, tags) = filter_values(&f.store, 50).unwrap();
    assert_eq!(tiers, ["Gold", "Silver"]);
    assert_eq!(tags, ["Lapsed", "VIP"], "one spelling each, the commonest");
    let (_, tags) = filter_values(&f.store, 1).unwrap();
    assert_eq!(tags, ["Lapsed"]);
}

/// A profile that reads only people's email and name takes them from `people.plain_fields`
/// (schema 8) instead of unpacking each merged profile: the same values, kept current by every
/// write of a person, and a person whose plain fields were never written is read from the
/// profile.
#[test]
fn email_and_name_come_from_the_plain_fields_exactly_as_from_the_profile() {
    let f = fixture();
    let mut w = f.store.writer().unwrap();
    // A new email for one; a person with an email and no name; one with neither.
    deliver(
        &mut w,
        f.tiquo,
        &json!({"id": "evt_u1", "type": "customer.updated", "created": iso(30),
                "data": {"id": "cust_2", "email": "Hyper.NEW@Example.com"},
                "previousAttributes": {"email": "hyper@example.com"}}),
    );
    deliver(
        &mut w,
        f.tiquo,
        &tiquo_created("cust_early", -30, json!({"email": "early@example.com"})),
    );
    deliver(
        &mut w,
        f.tiquo,
        &tiquo_created("cust_bare", 40, json!({"phone": "+447911000111"})),
    );
    drop(w);
    let columns = json!([
        {"header": "When", "source": "occurred_at"},
        {"header": "Who", "source": "display_name"},
        {"header": "Email", "source": "email"},
        {"header": "Name", "source": "full_name"}
    ]);
    f.save(
        json!({"name": "plain", "rows": "events", "format": {"type": "csv"},
                  "columns": columns}),
    );
    // The same columns and one more field: read from the whole profile.
    let mut more = columns.as_array().unwrap().clone();
    more.push(json!({"header": "Phone", "source": "phone"}));
    f.save(
        json!({"name": "whole", "rows": "events", "format": {"type": "csv"},
                  "columns": more}),
    );
    f.save(json!({"name": "people", "rows": "people", "format": {"type": "csv"},
                  "filters": {"include_deleted": true}, "columns": columns.as_array().unwrap()[1..]}));
    let compiled = |name: &str| {
        let reader = f.store.reader().unwrap();
        compile(&reader, reader.export_profile(name).unwrap().profile).unwrap()
    };
    assert!(rows::reads_plain_fields_only(&compiled("plain")));
    assert!(!rows::reads_plain_fields_only(&compiled("whole")));

    // What is stored is what the profile holds.
    let conn = rusqlite::Connection::open(f.store.path()).unwrap();
    let stored: Vec<(i64, Vec<u8>, String)> = conn
        .prepare("SELECT id, profile, plain_fields FROM people ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), 6);
    for (id, profile, plain) in &stored {
        let profile: std::collections::BTreeMap<String, Value> =
            serde_json::from_slice(&crate::stored::profile_json(profile).unwrap()).unwrap();
        assert_eq!(
            plain,
            &crate::stored::plain_fields(&profile).unwrap(),
            "person {id}"
        );
    }
    assert!(
        stored.iter().any(|(_, _, p)| p == "{}"),
        "a person with neither"
    );

    let (_, plain) = f.run("plain", "plain.csv");
    let (_, whole) = f.run("whole", "whole.csv");
    let plain = read_csv(&plain, b',', true);
    let whole = read_csv(&whole, b',', true);
    assert_eq!(plain.len(), 10, "a header and nine events");
    let first_four: Vec<Vec<String>> = whole.iter().map(|r| r[..4].to_vec()).collect();
    assert_eq!(plain, first_four, "the same cells from either");
    assert!(
        plain
            .iter()
            .any(|r| r[2] == "Hyper.NEW@Example.com" && r[3].starts_with("'=HYPERLINK")),
        "the current email as the provider wrote it, the name neutralized: {plain:?}"
    );
    assert!(
        plain
            .iter()
            .any(|r| r[1] == "early@example.com" && r[2] == "early@example.com" && r[3].is_empty()),
        "no name: empty, not the display name: {plain:?}"
    );
    let (_, people_before) = f.run("people", "people.csv");

    // Read from there: what the column says is what is written...
    conn.execute(
        "UPDATE people SET plain_fields = '{\"email\":\"marker@example.com\"}'
         WHERE id = (SELECT MIN(id) FROM people)",
        [],
    )
    .unwrap();
    let (_, marked) = f.run("plain", "marked.csv");
    assert!(
        read_csv(&marked, b',', true)
            .iter()
            .any(|r| r[2] == "marker@example.com")
    );
    // ... and a person whose plain fields were never written is read from their profile.
    conn.execute("UPDATE people SET plain_fields = NULL", [])
        .unwrap();
    let (_, unwritten) = f.run("plain", "unwritten.csv");
    assert_eq!(read_csv(&unwritten, b',', true), plain);
    let (_, people_after) = f.run("people", "people-unwritten.csv");
    assert_eq!(people_after, people_before);
}
