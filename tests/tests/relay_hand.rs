//! Hand changes through the relay, end to end: the real `clientele relay serve`, desks joined
//! with the real `clientele relay join` that pull with the real `clientele serve` or `clientele
//! relay pull`, real HTTP on 127.0.0.1 and real SQLite files. Every wait is for a condition with
//! a generous deadline; every process is stopped by its guard even when a test fails.

use chrono::{DateTime, Utc};
use clientele_core::hand::{
    Decision, ErasureReason, Forget, HandChange, HandChangeKind, RecordRef, record_hash,
};
use clientele_core::{Provider, providers};
use clientele_tests::relay::{Desk, Relay};
use clientele_tests::{Workspace, agent, findable, post, secret_env, signed, test_secret};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long a desk gets to show what another desk did: generous, for a debug build on a busy
/// two-core machine (the live path takes moments).
const ARRIVE: Duration = Duration::from_secs(90);

/// The providers these tests send as.
const PROVIDERS: [Provider; 2] = [Provider::Tiquo, Provider::Vagaro];

/// A customer as a provider sends them: a sample body with this customer's own name, email and
/// phone in place of the sample's.
struct Customer {
    provider: Provider,
    customer_ref: &'static str,
    email: &'static str,
    first: &'static str,
    last: &'static str,
    phone: &'static str,
}

impl Customer {
    fn body(&self, at: DateTime<Utc>) -> Vec<u8> {
        let sample = providers::sample_body(self.provider, self.customer_ref, self.email, at);
        String::from_utf8(sample)
            .unwrap()
            .replace("\"Test\"", &format!("\"{}\"", self.first))
            .replace("\"Customer\"", &format!("\"{}\"", self.last))
            .replace("+447700900123", self.phone)
            .into_bytes()
    }

    fn record(&self) -> RecordRef {
        RecordRef {
            provider: self.provider,
            connection: "main".into(),
            customer_ref: self.customer_ref.into(),
        }
    }

    /// Sends this customer to the relay as their provider would; panics unless it is taken.
    fn send_to(&self, relay: &Relay) {
        let at = Utc::now();
        let body = self.body(at);
        let headers = signed(self.provider, &test_secret(self.provider), &body, at);
        let (status, text) = post(
            &agent(),
            &format!("{}/hooks/{}/main", relay.url(), self.provider.id()),
            &headers,
            &body,
        );
        assert_eq!(status, 200, "{}: {text}", self.customer_ref);
    }

    /// What of them must not be found in a forgotten person's files.
    fn traces(&self) -> [&'static str; 4] {
        [self.email, self.first, self.last, &self.phone[3..]]
    }
}

/// Zelda, at two providers with the same email (so one person); Bartholomew and Cornelius,
/// unrelated.
const ZELDA_TIQUO: Customer = Customer {
    provider: Provider::Tiquo,
    customer_ref: "tq-zelda",
    email: "zelda.quixote@example.org",
    first: "Zeldaria",
    last: "Quixotesse",
    phone: "+447911123456",
};
const ZELDA_VAGARO: Customer = Customer {
    provider: Provider::Vagaro,
    customer_ref: "vg-zelda",
    email: "zelda.quixote@example.org",
    first: "Zeldaria",
    last: "Quixotesse",
    phone: "+447911123456",
};
const BART: Customer = Customer {
    provider: Provider::Tiquo,
    customer_ref: "tq-bart",
    email: "bart.other@example.org",
    first: "Bartholomew",
    last: "Otherwise",
    phone: "+447911654321",
};
const CORNELIUS: Customer = Customer {
    provider: Provider::Vagaro,
    customer_ref: "vg-cornelius",
    email: "cornelius.third@example.org",
    first: "Cornelius",
    last: "Thirdly",
    phone: "+447911777888",
};

/// An admin desk that added a `main` connection for each of [`PROVIDERS`] to `relay`.
fn admin(relay: &Relay) -> Desk {
    let mut ws = Workspace::new();
    for p in PROVIDERS {
        ws.secrets.push((secret_env(p, "main"), test_secret(p)));
    }
    let desk = Desk::join(ws, &relay.url(), &relay.pair("office", true), &[]);
    for p in PROVIDERS {
        desk.ws.ok(&["connection", "add", p.id(), "main"]);
    }
    desk
}

/// A relay with its admin desk (`office`), which received `customers`' deliveries.
fn relay_with(customers: &[&Customer]) -> (Relay, Desk) {
    let relay = Relay::start(&[]);
    let office = admin(&relay);
    for c in customers {
        c.send_to(&relay);
    }
    (relay, office)
}

fn desk(relay: &Relay, name: &str) -> Desk {
    Desk::join(
        Workspace::new(),
        &relay.url(),
        &relay.pair(name, false),
        &[],
    )
}

/// A call to the relay's API as `desk`: the status and the answer.
fn api(
    relay: &Relay,
    desk: &Desk,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let url = format!("{}{path}", relay.url());
    let auth = format!("Bearer {}", desk.token());
    let answer = match (method, body) {
        ("GET", _) => agent().get(&url).header("authorization", &auth).call(),
        ("PUT", Some(body)) => agent()
            .put(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes()),
        ("POST", Some(body)) => agent()
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes()),
        other => panic!("no such call in these tests: {other:?}"),
    };
    match answer {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

fn change(uid: &str, what: HandChangeKind) -> Value {
    serde_json::to_value(HandChange {
        uid: uid.into(),
        at: Utc::now(),
        by: "office".into(),
        what,
    })
    .unwrap()
}

fn forget(uid: &str, customers: &[&Customer], keep_forgetting: bool) -> Value {
    let salt = [0x5a; 16];
    change(
        uid,
        HandChangeKind::Forget {
            forget: Forget {
                salt: hex::encode(salt),
                records: customers
                    .iter()
                    .map(|c| hex::encode(record_hash(&salt, &c.record())))
                    .collect(),
                keep_forgetting,
                reason: ErasureReason::Request,
            },
        },
    )
}

/// The customers list of `desk`, as `customers list --json` prints it.
fn people(desk: &Desk) -> Vec<Value> {
    desk.ws
        .json(&["customers", "list"])
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until `check` holds; panics with `what` after [`ARRIVE`].
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + ARRIVE;
    while !check() {
        assert!(Instant::now() < until, "waited {ARRIVE:?} for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_forget_is_carried_out_on_the_relay_s_copy_before_it_answers() {
    let (relay, office) = relay_with(&[&ZELDA_TIQUO, &ZELDA_VAGARO, &BART, &CORNELIUS]);
    let dir = relay.ws.path();
    assert!(
        !findable(dir, &ZELDA_TIQUO.traces()).is_empty(),
        "the relay holds Zelda before the forget (else the grep proves nothing)"
    );

    let (status, body) = api(
        &relay,
        &office,
        "POST",
        "/v1/changes",
        Some(&forget("f-zelda", &[&ZELDA_TIQUO, &ZELDA_VAGARO], false)),
    );
    assert_eq!(status, 200, "{body}");
    // Answered: the relay's files hold nothing of her, byte for byte, while it still runs.
    let hits = findable(dir, &ZELDA_TIQUO.traces());
    assert!(hits.is_empty(), "still on the relay: {hits:?}");
    assert!(
        !findable(dir, &BART.traces()).is_empty() && !findable(dir, &CORNELIUS.traces()).is_empty(),
        "the others are untouched"
    );
    // Sent again (a desk that didn't hear the answer): the same place, nothing else.
    let (status, again) = api(
        &relay,
        &office,
        "POST",
        "/v1/changes",
        Some(&forget("f-zelda", &[&ZELDA_TIQUO, &ZELDA_VAGARO], false)),
    );
    assert_eq!((status, &again), (200, &body));

    // A desk joining afterwards never receives her: erased deliveries aren't in the feed.
    let late = desk(&relay, "late");
    let pulled = late.ws.json(&["relay", "pull"]);
    assert_eq!(pulled["pulled"], 2, "{pulled}");
    assert_eq!(people(&late).len(), 2);

    // Refused: what isn't a change, and a forget naming customers in plain words.
    let mut plain = forget("f-plain", &[&BART], false);
    plain["forget"]["records"] = serde_json::json!(["tiquo/main/tq-bart"]);
    let (status, said) = api(&relay, &office, "POST", "/v1/changes", Some(&plain));
    assert_eq!(status, 400, "{said}");
    assert!(!findable(dir, &BART.traces()).is_empty());

    // Keep forgetting: the relay forgets Bartholomew, and withholds what comes about him later.
    let (status, body) = api(
        &relay,
        &office,
        "POST",
        "/v1/changes",
        Some(&forget("f-bart", &[&BART], true)),
    );
    assert_eq!(status, 200, "{body}");
    assert!(findable(dir, &BART.traces()).is_empty());
    BART.send_to(&relay);
    let hits = findable(dir, &BART.traces());
    assert!(
        hits.is_empty(),
        "a new delivery about him was kept: {hits:?}"
    );
    assert!(!findable(dir, &CORNELIUS.traces()).is_empty());
}

#[test]
fn a_merge_shared_by_one_desk_shows_on_another_after_its_next_pull() {
    let (relay, office) = relay_with(&[&BART, &CORNELIUS]);
    let front = desk(&relay, "front");
    let _serving = front.ws.serve();
    wait_for("the front desk to have both customers", || {
        people(&front).len() == 2
    });

    let merge = change(
        "m-bart-cornelius",
        HandChangeKind::Decide {
            decision: Decision::Merge {
                records: [BART.record(), CORNELIUS.record()],
            },
        },
    );
    let (status, body) = api(&relay, &office, "POST", "/v1/changes", Some(&merge));
    assert_eq!(status, 200, "{body}");
    // The running desk applies it without a new delivery (the relay wakes its waiting pull).
    wait_for("the merge to reach the front desk", || {
        people(&front).len() == 1
    });
    let (status, listed) = api(&relay, &front, "GET", "/v1/changes?after=0", None);
    assert_eq!(status, 200, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["changes"][0]["change"]["uid"], "m-bart-cornelius");

    // A desk that was off gets it when it pulls, before the deliveries.
    let back = desk(&relay, "back");
    back.ws.json(&["relay", "pull"]);
    assert_eq!(people(&back).len(), 1, "{:?}", people(&back));

    // Undone on one desk, undone everywhere.
    let undo = change(
        "u-bart-cornelius",
        HandChangeKind::Undo {
            decision: "m-bart-cornelius".into(),
        },
    );
    let (status, body) = api(&relay, &office, "POST", "/v1/changes", Some(&undo));
    assert_eq!(status, 200, "{body}");
    wait_for("the undo to reach the front desk", || {
        people(&front).len() == 2
    });
    back.ws.json(&["relay", "pull"]);
    assert_eq!(people(&back).len(), 2);
}

#[test]
fn the_retention_policy_is_set_on_an_admin_desk_and_reaches_every_desk() {
    let relay = Relay::start(&[]);
    let office = admin(&relay);
    let front = desk(&relay, "front");
    let _serving = front.ws.serve();

    let policy =
        serde_json::json!({"retention_inactive_months": 24, "retention_rejections_days": 30});
    let (status, said) = api(&relay, &front, "PUT", "/v1/policy", Some(&policy));
    assert_eq!(status, 403, "only an admin desk sets it: {said}");
    let (status, said) = api(&relay, &office, "PUT", "/v1/policy", Some(&policy));
    assert_eq!(status, 200, "{said}");
    let (status, read) = api(&relay, &front, "GET", "/v1/policy", None);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&read).unwrap(), policy);

    let setting = |key: &str| -> Option<String> {
        let db = rusqlite::Connection::open(front.ws.path().join("clientele.db")).unwrap();
        db.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .ok()
    };
    wait_for("the policy to reach the front desk", || {
        setting("retention_inactive_months").as_deref() == Some("24")
    });
    assert_eq!(setting("retention_rejections_days").as_deref(), Some("30"));
    assert_eq!(setting("retention_held_by_relay").as_deref(), Some("1"));

    // The same from the command line: the front desk reads the relay's settings and may not
    // change them; the admin desk changes them for everyone.
    let shown = front.ws.json(&["settings", "retention"]);
    assert_eq!(shown["inactive_months"], 24);
    assert_eq!(
        (&shown["held_by_relay"], &shown["can_change"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    let refused = front
        .ws
        .run(&["settings", "retention", "--inactive-months", "12"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("desk that manages the relay"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let set = office.ws.json(&[
        "settings",
        "retention",
        "--inactive-months",
        "12",
        "--rejections-days",
        "off",
    ]);
    assert_eq!(set["inactive_months"], 12);
    assert_eq!(set["rejections_days"], Value::Null);
    wait_for("the admin desk's change to reach the front desk", || {
        setting("retention_inactive_months").as_deref() == Some("12")
    });
    assert_eq!(setting("retention_rejections_days"), None);
}

/// Stops `relay` (as a server that goes down), runs `meanwhile`, and starts it again on the same
/// address and data folder.
fn with_relay_down(relay: Relay, meanwhile: impl FnOnce()) -> Relay {
    let Relay { ws, server, args } = relay;
    let bind = server.addr.clone();
    server.stop();
    meanwhile();
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    Relay::start_in(ws, &bind, &extra)
}

#[test]
fn merge_and_undo_on_the_command_line_travel_and_wait_in_the_outbox_while_the_relay_is_down() {
    let (relay, office) = relay_with(&[&BART, &CORNELIUS]);
    let front = desk(&relay, "front");
    let _serving = front.ws.serve();
    office.ws.json(&["relay", "pull"]);
    let ids: Vec<String> = people(&office)
        .iter()
        .map(|p| p["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");

    let merged = office.ws.json(&["customers", "merge", &ids[0], &ids[1]]);
    assert_eq!(merged["relay"]["state"], "shared", "{merged}");
    wait_for("the merge to reach the front desk", || {
        people(&front).len() == 1
    });
    let decision = merged["decision"]["id"].to_string();

    // The relay goes down; the undo is made here at once and waits in the outbox.
    let mut undone = Value::Null;
    let relay = with_relay_down(relay, || {
        undone = office.ws.json(&["customers", "undo", &decision]);
    });
    assert_eq!(undone["relay"]["state"], "pending", "{undone}");
    let said = undone["relay"]["message"].as_str().unwrap_or_default();
    assert!(said.contains("couldn't be reached"), "{said}");
    assert_eq!(people(&office).len(), 2, "undone here at once");
    assert_eq!(people(&front).len(), 1, "the other desk hasn't heard");

    // The relay is back: the office's next pull sends its outbox, and the front desk follows.
    office.ws.json(&["relay", "pull"]);
    wait_for("the undo to reach the front desk", || {
        people(&front).len() == 2
    });
    let db = rusqlite::Connection::open(office.ws.path().join("clientele.db")).unwrap();
    let waiting: i64 = db
        .query_row("SELECT COUNT(*) FROM relay_outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(waiting, 0, "the outbox is empty once the relay has it");
    drop(relay);
}

/// The id of the person on `desk` whose emails include `email`.
fn person_with(desk: &Desk, email: &str) -> Option<i64> {
    people(desk)
        .iter()
        .find(|p| p["emails"].to_string().contains(email))
        .and_then(|p| p["id"].as_i64())
}

#[test]
fn a_forget_reaches_the_relay_first_then_every_desk_including_one_that_was_stopped() {
    let (relay, office) = relay_with(&[&ZELDA_TIQUO, &ZELDA_VAGARO, &BART]);
    let front = desk(&relay, "front");
    let serving = front.ws.serve();
    // Off during the forget: it pulled Zelda before, and isn't running when she is forgotten.
    let stopped = desk(&relay, "stopped");
    stopped.ws.json(&["relay", "pull"]);
    assert!(person_with(&stopped, ZELDA_TIQUO.email).is_some());
    office.ws.json(&["relay", "pull"]);
    wait_for("the front desk to have everyone", || {
        people(&front).len() == 2
    });
    let zelda = person_with(&office, ZELDA_TIQUO.email).expect("Zelda on the office desk");

    let forgot = office
        .ws
        .json(&["customers", "forget", &zelda.to_string(), "--yes"]);
    assert_eq!(forgot["relay"]["state"], "shared", "{forgot}");
    // The command reported success: the relay's files hold nothing of her already.
    let hits = findable(relay.ws.path(), &ZELDA_TIQUO.traces());
    assert!(hits.is_empty(), "still on the relay: {hits:?}");
    assert!(!findable(relay.ws.path(), &BART.traces()).is_empty());

    // The running desk forgets on its next pull, from its files too.
    wait_for("the front desk to forget her", || {
        person_with(&front, ZELDA_TIQUO.email).is_none()
    });
    assert_eq!(people(&front).len(), 1);
    wait_for("the front desk's files to hold nothing of her", || {
        findable(front.ws.path(), &ZELDA_TIQUO.traces()).is_empty()
    });
    drop(serving);

    // The desk that was stopped forgets as it starts, before it lists anyone.
    let _started = stopped.ws.serve();
    assert_eq!(
        person_with(&stopped, ZELDA_TIQUO.email),
        None,
        "listed before the forget was applied"
    );
    assert_eq!(people(&stopped).len(), 1);
    let hits = findable(stopped.ws.path(), &ZELDA_TIQUO.traces());
    assert!(
        hits.is_empty(),
        "still on the desk that was stopped: {hits:?}"
    );
    let log = stopped.ws.json(&["customers", "erasures"]);
    assert_eq!(log[0]["computer"], "office", "{log}");
}

#[test]
fn a_forget_while_the_relay_is_down_is_done_here_at_once_and_on_the_relay_when_it_is_back() {
    let (relay, office) = relay_with(&[&ZELDA_TIQUO, &ZELDA_VAGARO, &BART]);
    office.ws.json(&["relay", "pull"]);
    let zelda = person_with(&office, ZELDA_TIQUO.email).expect("Zelda on the office desk");

    let mut forgot = Value::Null;
    let relay = with_relay_down(relay, || {
        forgot = office
            .ws
            .json(&["customers", "forget", &zelda.to_string(), "--yes"]);
    });
    assert_eq!(forgot["relay"]["state"], "pending", "{forgot}");
    let said = forgot["relay"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("its copy is forgotten when it is back"),
        "{said}"
    );
    assert_eq!(
        person_with(&office, ZELDA_TIQUO.email),
        None,
        "forgotten here at once"
    );
    assert!(
        !findable(relay.ws.path(), &ZELDA_TIQUO.traces()).is_empty(),
        "the relay was down: it still has her (else this proves nothing)"
    );

    // Back: the desk's next pull sends the outbox first, and the relay forgets before answering.
    office.ws.json(&["relay", "pull"]);
    let hits = findable(relay.ws.path(), &ZELDA_TIQUO.traces());
    assert!(hits.is_empty(), "still on the relay: {hits:?}");
    let hits = findable(office.ws.path(), &ZELDA_TIQUO.traces());
    assert!(hits.is_empty(), "still on the desk: {hits:?}");
}

#[test]
fn a_desk_whose_access_was_removed_still_corrects_and_forgets_here_and_says_the_relay_refused() {
    let (relay, office) = relay_with(&[&ZELDA_TIQUO, &BART]);
    let front = desk(&relay, "front");
    front.ws.json(&["relay", "pull"]);
    assert_eq!(people(&front).len(), 2);
    relay.ws.ok(&["relay", "revoke", "front"]);

    // A merge: made here, and the relay's refusal said as a note, not as a failure.
    let ids: Vec<String> = people(&front).iter().map(|p| p["id"].to_string()).collect();
    let merged = front.ws.json(&["customers", "merge", &ids[0], &ids[1]]);
    assert_eq!(merged["relay"]["state"], "refused", "{merged}");
    assert!(
        merged["relay"]["message"]
            .as_str()
            .unwrap()
            .contains("made on this computer only"),
        "{merged}"
    );
    assert_eq!(people(&front).len(), 1, "the merge stands here");

    // Forgetting: done here, whatever the relay says.
    let zelda = person_with(&front, ZELDA_TIQUO.email).expect("Zelda on the front desk");
    let forgot = front
        .ws
        .json(&["customers", "forget", &zelda.to_string(), "--yes"]);
    assert_eq!(forgot["relay"]["state"], "refused", "{forgot}");
    assert!(
        forgot["relay"]["message"]
            .as_str()
            .unwrap()
            .contains("forgotten on this computer, but the relay's copy"),
        "{forgot}"
    );
    let hits = findable(front.ws.path(), &ZELDA_TIQUO.traces());
    assert!(hits.is_empty(), "still on this desk: {hits:?}");
    let db = rusqlite::Connection::open(front.ws.path().join("clientele.db")).unwrap();
    let waiting: i64 = db
        .query_row("SELECT COUNT(*) FROM relay_outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(waiting, 0, "a refused change isn't kept to send again");
    drop(office);
}
