//! The reading data set of `make bench`, built through the real store and shared by
//! `read_bench`, `export_bench` and `app_footprint`.
//!
//! Every delivery is signed with `clientele_core::providers::sign`, checked with
//! `providers::verify` (which also gives its dedupe key), stored with `Writer::ingest` in groups
//! as the listener does, and derived with `Writer::derive_all` as it goes.
//!
//! The data set: `CLIENTELE_BENCH_PEOPLE` people (default 200,000) known to one to three of the
//! five providers (Tiquo, ResDiary, Vagaro, Plain, Zupy) — the same email, written as each
//! provider writes it, and the same mobile number, written nationally or internationally, link
//! them — and `CLIENTELE_BENCH_DELIVERIES` deliveries (default 1,000,000): a "created" snapshot
//! per record, then updates (loyalty points, new phone numbers and emails, consent), about 10 %
//! of them arriving after later ones, and 5 % of all deliveries sent twice.
//!
//! `CLIENTELE_BENCH_DATA=DIR` keeps the data set in DIR and reuses it when it was built with the
//! same sizes (building 1,000,000 deliveries takes minutes); a data set of other sizes there is
//! deleted and built again. Without it, each program builds its own in a temporary folder.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{TimeZone, Utc};
use clientele_core::{ConnectionSettings, Inbound, Provider, Sensitive, providers};
use clientele_store::{IngestOutcome, NewConnection, NewDelivery, Store};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PROVIDERS: [Provider; 5] = [
    Provider::Tiquo,
    Provider::Resdiary,
    Provider::Vagaro,
    Provider::Plain,
    Provider::Zupy,
];
const GROUP: usize = 1_000;
const FIRST: &[&str] = &[
    "Ana", "Bruno", "Carla", "Daniel", "Eva", "Filipe", "Grace", "Hugo", "Ines", "Joao", "Karen",
    "Luis", "Maria", "Nuno", "Olivia", "Pedro", "Rita", "Sofia", "Tiago", "Vera", "William",
    "Yara", "Zoe", "Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Leo", "Freya",
    "Arthur", "Lily", "Harry", "Emily", "Jack", "Sophie", "Thomas", "Chloe", "James", "Ella",
    "Lucas", "Grace", "Henry", "Ruby", "Alfie", "Evie", "Charlie", "Poppy", "Mohammed", "Aisha",
    "Chen", "Priya", "Kenji", "Fatima", "Mateo", "Lucia", "Sven", "Ingrid",
];
const LAST: &[&str] = &[
    "Silva",
    "Santos",
    "Ferreira",
    "Pereira",
    "Oliveira",
    "Costa",
    "Rodrigues",
    "Martins",
    "Jesus",
    "Sousa",
    "Fernandes",
    "Goncalves",
    "Gomes",
    "Lopes",
    "Marques",
    "Alves",
    "Almeida",
    "Ribeiro",
    "Pinto",
    "Carvalho",
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mason",
    "Mitchell",
    "Rose",
    "Davis",
    "Rodriguez",
    "Cox",
    "Alexander",
    "Morgan",
    "Moore",
    "Murphy",
    "Kelly",
    "Walsh",
    "Byrne",
    "Ryan",
    "O'Brien",
    "Nakamura",
    "Schmidt",
    "Muller",
    "Novak",
    "Kowalski",
    "Nielsen",
    "Jensen",
    "Larsen",
    "Dubois",
    "Moreau",
    "Laurent",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Garcia",
    "Martinez",
    "Lopez",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "inbox.example.net",
    "example.co.uk",
    "post.example.pt",
];

/// A small deterministic generator (xorshift), so the same sizes give the same data set.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A size from the environment (`1_000_000` and `1000000` both read), else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// One person as the providers know them (values change with updates).
#[derive(Clone)]
struct Person {
    first: &'static str,
    last: &'static str,
    email: String,
    /// The 7-digit subscriber part of a UK mobile number, +44 790 NNNNNNN.
    mobile: u64,
    points: i64,
}

impl Person {
    fn new(k: usize, rng: &mut Rng) -> Person {
        let first = FIRST[rng.below(FIRST.len())];
        let last = LAST[rng.below(LAST.len())];
        let local: String = format!("{first}.{last}")
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        Person {
            first,
            last,
            email: format!("{local}{k}@{}", DOMAINS[k % DOMAINS.len()]),
            mobile: 1_000_000 + (k as u64 * 7_919) % 8_999_999,
            points: 0,
        }
    }
    fn e164(&self) -> String {
        format!("+44790{:07}", self.mobile)
    }
    fn national(&self) -> String {
        format!(
            "0790 {:03} {:04}",
            self.mobile / 10_000,
            self.mobile % 10_000
        )
    }
    fn full_name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

/// One delivery to make: which record, which of its events, when it happened and arrives.
#[derive(Clone, Copy)]
struct Planned {
    person: u32,
    provider: u8,
    /// 0 = created; later ones are updates.
    seq: u16,
    at: i64,
    arrives: i64,
    duplicate: bool,
}

fn provider_ref(p: Provider, person: u32) -> String {
    match p {
        Provider::Tiquo => format!("cus_{person:07}"),
        Provider::Resdiary => format!("{}", 4_000_000 + person),
        Provider::Vagaro => format!("VG{person:08}"),
        Provider::Plain => format!("c_01PLAIN{person:09}"),
        Provider::Zupy => format!("ZP-{person:07}"),
        Provider::Standard => format!("std_{person}"),
    }
}

/// The body `plan` describes: the adapter's own sample, filled in with the person's details.
fn body(plan: &Planned, p: Provider, person: &Person, before: &Person, serial: u64) -> Vec<u8> {
    let at = Utc.timestamp_opt(plan.at, 0).single().expect("time");
    let customer = provider_ref(p, plan.person);
    let created = plan.seq == 0;
    let sample = providers::sample_body(p, &customer, &person.email, at);
    let mut v: Value = serde_json::from_slice(&sample).expect("samples are JSON");
    match p {
        Provider::Tiquo => {
            v["id"] = json!(format!("evt_{serial:012}"));
            let data = &mut v["data"];
            data["firstName"] = json!(person.first);
            data["lastName"] = json!(person.last);
            data["phone"] = json!(person.e164());
            data["loyaltyPoints"] = json!(person.points);
            if !created {
                v["type"] = json!("customer.updated");
                v["data"]["updatedAt"] = v["created"].clone();
                v["previousAttributes"] = json!({
                    "loyaltyPoints": before.points,
                    "email": before.email,
                    "phone": before.e164(),
                });
            }
        }
        Provider::Resdiary => {
            let c = &mut v["Customer"];
            c["FirstName"] = json!(person.first);
            c["Surname"] = json!(person.last);
            c["MobileNumber"] = json!(person.national());
            // ResDiary writes emails as they were typed.
            c["Email"] = json!(person.email.to_uppercase());
            c["ReceiveRestaurantEmailMarketing"] = json!(plan.seq % 2 == 1);
        }
        Provider::Vagaro => {
            v["id"] = json!(format!("0B1C2D3E-0000-4000-8000-{serial:012}"));
            if !created {
                v["action"] = json!("updated");
            }
            let c = &mut v["payload"];
            c["customerFirstName"] = json!(person.first);
            c["customerLastName"] = json!(person.last);
            c["mobilePhone"] = json!(format!("+44 {}", &person.national()[1..]));
        }
        Provider::Plain => {
            v["id"] = json!(format!("pEv_{serial:012}"));
            v["webhookMetadata"]["webhookDeliveryAttemptId"] =
                json!(format!("whAttempt_{serial:012}"));
            let c = &mut v["payload"]["customer"];
            c["fullName"] = json!(person.full_name());
            c["shortName"] = json!(person.first);
            if !created {
                let mut previous = c.clone();
                previous["email"]["email"] = json!(before.email);
                previous["fullName"] = json!(before.full_name());
                v["type"] = json!("customer.customer_updated");
                v["payload"]["eventType"] = json!("customer.customer_updated");
                v["payload"]["previousCustomer"] = previous;
            }
        }
        Provider::Zupy => {
            if created {
                let c = &mut v["customer"];
                c["name"] = json!(person.full_name());
                c["whatsapp"] = json!(person.e164());
            } else {
                v = json!({
                    "event": "points.earned",
                    "webhook_id": format!("wh_{serial:016}"),
                    "timestamp": v["timestamp"],
                    "data": {
                        "customer_id": customer,
                        "points_added": person.points - before.points,
                        "new_balance": person.points,
                        "source": "purchase",
                        "reference_id": format!("sale_{serial}"),
                    }
                });
            }
        }
        Provider::Standard => {}
    }
    serde_json::to_vec(&v).expect("serialize")
}

/// Plans every delivery: records per person, events per record, times and arrival order.
fn plan(people: usize, deliveries: usize, rng: &mut Rng) -> Vec<Planned> {
    let originals = deliveries * 95 / 100;
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
        .timestamp();
    let year = 365 * 24 * 3600;
    // Records: one to three providers per person (60/30/10 %).
    let mut records: Vec<(u32, u8)> = Vec::new();
    for person in 0..people as u32 {
        let count = match rng.below(10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let first = rng.below(PROVIDERS.len());
        for i in 0..count {
            records.push((person, ((first + i * 2) % PROVIDERS.len()) as u8));
        }
    }
    // Events: one "created" each, the rest spread at random over the records.
    let mut events = vec![1u16; records.len()];
    for _ in records.len()..originals.max(records.len()) {
        let r = rng.below(records.len());
        events[r] = events[r].saturating_add(1);
    }
    let mut planned = Vec::with_capacity(deliveries);
    for ((person, provider), count) in records.into_iter().zip(events) {
        let mut at = start + rng.below(year as usize / 2) as i64;
        for seq in 0..count {
            // Most arrive a few seconds after they happen; one in ten hours later.
            let delay = if seq > 0 && rng.chance(10) {
                3600 * (1 + rng.below(48) as i64)
            } else {
                1 + rng.below(30) as i64
            };
            planned.push(Planned {
                person,
                provider,
                seq,
                at,
                arrives: at + delay,
                duplicate: false,
            });
            at += 60 + rng.below(20 * 24 * 3600) as i64;
        }
    }
    // 5 % of all deliveries are a second copy, arriving a little after the first.
    let copies = deliveries.saturating_sub(planned.len());
    for _ in 0..copies {
        let original = planned[rng.below(planned.len())];
        planned.push(Planned {
            arrives: original.arrives + 1 + rng.below(600) as i64,
            duplicate: true,
            ..original
        });
    }
    planned.sort_by_key(|p| (p.arrives, p.duplicate));
    planned
}

/// A delivery ready for `Writer::ingest`, made and checked on the generating thread.
fn prepare(
    plan: &Planned,
    secrets: &[Sensitive<String>],
    connection_ids: &[i64],
    people: &mut [Person],
    serial: u64,
) -> NewDelivery {
    let p = PROVIDERS[plan.provider as usize];
    let person = &mut people[plan.person as usize];
    let before = person.clone();
    if plan.seq > 0 {
        // What changes in an update: points mostly, sometimes a new number or email.
        let n = serial.wrapping_mul(2_654_435_761);
        person.points += 10 + (n % 200) as i64;
        if n % 100 < 4 {
            person.mobile = 1_000_000 + (n / 7) % 8_999_999;
        } else if n % 100 < 6 {
            person.email = format!("new.{}", person.email);
        }
    }
    let bytes = body(plan, p, person, &before, serial);
    let at = Utc.timestamp_opt(plan.at, 0).single().expect("time");
    let arrives = Utc.timestamp_opt(plan.arrives, 0).single().expect("time");
    let secret = &secrets[plan.provider as usize];
    let signed = providers::sign(p, secret, &bytes, at);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in &signed {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    let inbound = Inbound {
        headers: &headers,
        body: &bytes,
        remote_ip: None,
    };
    let verified = providers::verify(
        p,
        &ConnectionSettings::default(),
        Some(secret),
        &inbound,
        at,
    )
    .unwrap_or_else(|r| panic!("{p}: a signed sample must verify: {r}"));
    NewDelivery {
        connection_id: connection_ids[plan.provider as usize],
        received_at: arrives,
        dedupe_key: verified.dedupe_key,
        headers: providers::kept_headers(&headers),
        body: bytes,
        verification: verified.check,
        is_test: false,
    }
}

/// What building the data set took.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    pub deliveries: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub seconds: f64,
}

/// Builds the data set into `store` (empty); `program` names the caller in progress messages.
pub fn build(program: &str, store: &Store, people_n: usize, deliveries_n: usize) -> Built {
    let started = Instant::now();
    let mut writer = store.writer().expect("writer");
    writer.set_default_country("GB").expect("country");
    let now = Utc::now();
    let mut connection_ids = Vec::new();
    let mut secrets = Vec::new();
    for p in PROVIDERS {
        let c = writer
            .add_connection(
                &NewConnection {
                    provider: p,
                    name: "main".into(),
                    settings: ConnectionSettings::default(),
                    requires_secret: true,
                },
                now,
            )
            .expect("add connection");
        connection_ids.push(c.id);
        secrets.push(Sensitive::new(format!("read-bench-{}-secret", p.id())));
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let planned = plan(people_n, deliveries_n, &mut rng);
    let total = planned.len();
    // Making, signing and checking bodies happens on another thread, as the listener's HTTP
    // workers do; this thread stores and derives, as the ingest thread does.
    let (tx, rx) = mpsc::sync_channel::<Vec<NewDelivery>>(4);
    let maker = std::thread::spawn(move || {
        let mut people: Vec<Person> = (0..people_n)
            .map(|k| Person::new(k, &mut Rng(k as u64 * 0x2545_F491 + 1)))
            .collect();
        // A duplicate repeats its original's exact bytes: keep the originals that will be sent
        // again, by (record, seq).
        let copied: std::collections::HashSet<(u32, u8, u16)> = planned
            .iter()
            .filter(|p| p.duplicate)
            .map(|p| (p.person, p.provider, p.seq))
            .collect();
        let mut sent: std::collections::HashMap<(u32, u8, u16), NewDelivery> =
            std::collections::HashMap::new();
        let mut group = Vec::with_capacity(GROUP);
        for (serial, p) in planned.iter().enumerate() {
            let key = (p.person, p.provider, p.seq);
            let d = if p.duplicate {
                match sent.get(&key) {
                    Some(original) => original.clone(),
                    None => continue,
                }
            } else {
                let d = prepare(p, &secrets, &connection_ids, &mut people, serial as u64);
                if copied.contains(&key) {
                    sent.insert(key, d.clone());
                }
                d
            };
            group.push(d);
            if group.len() == GROUP && tx.send(std::mem::take(&mut group)).is_err() {
                return;
            }
        }
        let _ = tx.send(group);
    });
    let (mut stored, mut duplicates, mut done) = (0, 0, 0);
    let mut last_report = Instant::now();
    for group in rx {
        for outcome in writer.ingest(&group, &[]).expect("ingest") {
            match outcome {
                IngestOutcome::Stored { .. } => stored += 1,
                IngestOutcome::Duplicate { .. } | IngestOutcome::Withheld { .. } => duplicates += 1,
            }
        }
        writer.derive_all().expect("derive");
        done += group.len();
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "{program}: {done} of {total} deliveries in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    maker.join().expect("generator thread");
    Built {
        deliveries: done,
        stored,
        duplicates,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The data set's sizes, from `CLIENTELE_BENCH_PEOPLE` and `CLIENTELE_BENCH_DELIVERIES`.
pub fn sizes() -> (usize, usize) {
    (
        env_usize("CLIENTELE_BENCH_PEOPLE", 200_000),
        env_usize("CLIENTELE_BENCH_DELIVERIES", 1_000_000),
    )
}

/// The data set, open.
#[derive(Debug)]
pub struct DataSet {
    pub store: Store,
    /// Its data folder (a Clientele data folder: `clientele --data-dir` and the app open it).
    pub dir: PathBuf,
    pub people: usize,
    pub deliveries: usize,
    /// Removes a temporary data folder on drop.
    _temp: Option<tempfile::TempDir>,
}

impl DataSet {
    /// Opens the data set of [`sizes`] in `CLIENTELE_BENCH_DATA` (else a temporary folder),
    /// building it first if it isn't there; `program` names the caller in progress messages.
    /// Building prints `bench: generate deliveries=… stored=… duplicates=… people=… profiles=…
    /// seconds=… deliveries_per_s=…`.
    pub fn open_or_build(program: &str) -> DataSet {
        let (people_n, deliveries_n) = sizes();
        let (temp, dir) = match std::env::var_os("CLIENTELE_BENCH_DATA") {
            Some(dir) => (None, PathBuf::from(dir)),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let marker = marker(&dir, people_n, deliveries_n);
        if !marker.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let store = Store::open_dir(&dir).expect("open store");
        if marker.exists() {
            eprintln!("{program}: reusing the data set in {}", dir.display());
        } else {
            eprintln!(
                "{program}: building {deliveries_n} deliveries over {people_n} people in {}",
                dir.display()
            );
            let built = build(program, &store, people_n, deliveries_n);
            let raw = rusqlite::Connection::open(store.path()).expect("open");
            let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).expect("count") };
            let profiles = count("SELECT COUNT(*) FROM source_profiles");
            let people = count("SELECT COUNT(*) FROM people");
            println!(
                "bench: generate deliveries={} stored={} duplicates={} people={people} profiles={profiles} seconds={:.1} deliveries_per_s={:.0}",
                built.deliveries,
                built.stored,
                built.duplicates,
                built.seconds,
                built.deliveries as f64 / built.seconds
            );
            std::fs::write(&marker, b"").expect("write the data set's marker");
        }
        DataSet {
            store,
            dir,
            people: people_n,
            deliveries: deliveries_n,
            _temp: temp,
        }
    }
}

/// The file that says the data set in `dir` is complete, and of which sizes.
fn marker(dir: &Path, people: usize, deliveries: usize) -> PathBuf {
    dir.join(format!("read-bench-{people}-{deliveries}.done"))
}
