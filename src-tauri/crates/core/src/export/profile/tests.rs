use super::*;
use chrono::TimeZone;

const ISSUE_EXAMPLE: &str = r#"{"name": "mailing", "rows": "people",
    "columns": [{"header": "Email", "source": "email"},
                {"header": "Name", "source": "full_name", "transform": {"case": "upper"}},
                {"header": "Phone", "source": "phone"}],
    "format": {"type": "csv", "preset": "excel"}}"#;

fn err(json: &str) -> ProfileError {
    ExportProfile::from_json(json).expect_err("must be refused")
}

fn with(patch: &str) -> String {
    // The issue's example with one more top-level key.
    let base = ISSUE_EXAMPLE.trim_end();
    format!("{}, {patch}}}", &base[..base.len() - 1])
}

#[test]
fn the_issue_example_is_accepted_and_round_trips() {
    let p = ExportProfile::from_json(ISSUE_EXAMPLE).unwrap();
    assert_eq!(p.rows, RowKind::People);
    assert_eq!(p.columns.len(), 3);
    assert_eq!(p.columns[1].transform.case, Some(Case::Upper));
    let Format::Csv(csv) = &p.format else {
        panic!("csv")
    };
    assert_eq!(
        csv.settings(),
        CsvSettings {
            delimiter: b',',
            header: true,
            bom: true,
            crlf: true,
            neutralize: true
        }
    );
    let again = ExportProfile::from_json(&p.to_json_pretty()).unwrap();
    assert_eq!(
        again, p,
        "show --json output must import as the same profile"
    );
    assert!(
        !p.to_json_pretty().contains("null"),
        "unset options are left out"
    );
}

#[test]
fn presets_and_overrides() {
    let other: CsvFormat = serde_json::from_str(r#"{"preset": "other"}"#).unwrap();
    assert_eq!(
        other.settings(),
        CsvSettings {
            delimiter: b',',
            header: true,
            bom: false,
            crlf: false,
            neutralize: true
        }
    );
    let custom: CsvFormat = serde_json::from_str(
        r#"{"preset": "excel", "delimiter": "tab", "header": false, "bom": false, "line_ending": "lf", "neutralize_formulas": false}"#,
    )
    .unwrap();
    assert_eq!(
        custom.settings(),
        CsvSettings {
            delimiter: b'\t',
            header: false,
            bom: false,
            crlf: false,
            neutralize: false
        }
    );
    let semi: CsvFormat = serde_json::from_str(r#"{"delimiter": ";"}"#).unwrap();
    assert_eq!(semi.settings().delimiter, b';');
}

#[test]
fn errors_name_the_bad_key_in_plain_words() {
    let e = err(&ISSUE_EXAMPLE.replace("\"upper\"", "\"title\""));
    assert_eq!(e.key, "columns[1].transform.case", "{e}");
    assert!(e.message.contains("title"), "{e}");

    let e = err(&ISSUE_EXAMPLE.replace("\"source\": \"email\"", "\"source\": \"emial\""));
    assert_eq!(e.key, "columns[0].source", "{e}");
    assert!(e.message.contains("emial"), "{e}");

    let e = err(&ISSUE_EXAMPLE.replace("\"columns\"", "\"colums\""));
    assert!(e.to_string().contains("colums"), "{e}");

    let e = err(&ISSUE_EXAMPLE.replace("\"csv\"", "\"pdf\""));
    assert!(e.to_string().contains("pdf"), "{e}");
    assert!(e.key.starts_with("format"), "{e}");

    let e = err(&ISSUE_EXAMPLE.replace("\"people\"", "\"customers\""));
    assert_eq!(e.key, "rows", "{e}");

    let e = err(&with(r#""time_zone": "Mars/Olympus""#));
    assert_eq!(e.key, "time_zone", "{e}");

    let e = err(&with(r#""filters": {"event_kinds": ["birthday"]}"#));
    assert_eq!(e.key, "filters.event_kinds[0]", "{e}");

    let e = err(&with(r#""filters": {"connections": ["main"]}"#));
    assert_eq!(e.key, "filters.connections[0]", "{e}");

    let e = err(&with(r#""file_name": "{customer}.csv""#));
    assert_eq!(e.key, "file_name", "{e}");

    let e = err(&ISSUE_EXAMPLE.replace(
        "\"source\": \"phone\"",
        "\"source\": \"phone\", \"transform\": {\"date\": {\"format\": \"%Q\"}}",
    ));
    assert_eq!(e.key, "columns[2].transform.date.format", "{e}");

    let e = err(r#"{"name": "x", "rows": "people", "columns": [], "format": {"type": "csv"}}"#);
    assert_eq!(e.key, "columns", "{e}");

    let e = err("{not json");
    assert!(e.message.contains("not valid JSON"), "{e}");

    // An event fact in a people profile.
    let e = err(&ISSUE_EXAMPLE.replace("\"source\": \"phone\"", "\"source\": \"summary\""));
    assert_eq!(e.key, "columns[2].source", "{e}");
    assert!(e.message.contains("event"), "{e}");

    // A CSV-only option on XLSX.
    let e = err(&ISSUE_EXAMPLE.replace(
        r#"{"type": "csv", "preset": "excel"}"#,
        r#"{"type": "xlsx", "delimiter": ";"}"#,
    ));
    assert!(e.to_string().contains("delimiter"), "{e}");
}

#[test]
fn file_names_use_the_template_date_and_zone() {
    let mut p = ExportProfile::from_json(ISSUE_EXAMPLE).unwrap();
    let late = Utc.with_ymd_and_hms(2024, 3, 15, 23, 30, 0).unwrap();
    assert_eq!(p.file_name_at(late), "mailing-2024-03-15.csv");
    p.time_zone = Some("Asia/Tokyo".into());
    assert_eq!(
        p.file_name_at(late),
        "mailing-2024-03-16.csv",
        "the date is the date where the business is"
    );
    p.file_name = Some("list {date} {time}".into());
    p.format = Format::Xlsx(XlsxFormat::default());
    assert_eq!(p.file_name_at(late), "list 2024-03-16 083000.xlsx");
    p.name = "a/b".into();
    p.file_name = None;
    assert_eq!(p.file_name_at(late), "a_b-2024-03-16.xlsx");
}
