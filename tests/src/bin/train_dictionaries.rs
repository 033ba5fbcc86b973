//! `train_dictionaries`: makes the zstd dictionaries `clientele_store::pack` ships, one per
//! [`Dict`], from *shapes only*.
//!
//! It builds a synthetic data set with the benchmarks' generator (`bench_data::build`: made-up
//! people, never anyone's data), derives it through the real store, and turns every raw body,
//! source profile state and merged profile into its skeleton (`pack::skeleton`: each string value
//! reduced to its pattern of `0`, `x` and `X`, each number to `0`, keys and punctuation kept).
//! The dictionaries are trained on those skeletons, so none can hold a customer's value — not the
//! generator's, let alone a real one — and forgetting someone never has to touch them.
//!
//! A shipped dictionary is never replaced (old rows need it to be read): this tool is for making
//! the dictionary of a *new* `Dict` or codec. Usage:
//!
//! ```text
//! cargo run -p clientele-tests --bin train_dictionaries -- OUT_DIR
//! ```
//!
//! writes `OUT_DIR/{bodies,states,profiles}.zdict` and prints, per dictionary, the average size
//! of the real (synthetic) values it was not trained on: raw, packed without a dictionary, and
//! packed with it. `CLIENTELE_TRAIN_PEOPLE` (default 4,000) and `CLIENTELE_TRAIN_DELIVERIES`
//! (default 20,000) set the data set's size; `CLIENTELE_TRAIN_DICT_BYTES` (default 16,384) the
//! dictionaries' size.

use clientele_store::Store;
use clientele_store::pack::{Dict, MAGIC, skeleton, unpack};
use clientele_tests::bench_data::{build, env_usize};
use std::path::PathBuf;

/// A stored value: what the store wrote, unpacked if it is a packed one.
fn readable(dict: Dict, value: Vec<u8>) -> Vec<u8> {
    if value.starts_with(&MAGIC) {
        unpack(dict, &value).expect("a packed value reads back")
    } else {
        value
    }
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: train_dictionaries OUT_DIR"),
    );
    let people = env_usize("CLIENTELE_TRAIN_PEOPLE", 4_000);
    let deliveries = env_usize("CLIENTELE_TRAIN_DELIVERIES", 20_000);
    let dict_bytes = env_usize("CLIENTELE_TRAIN_DICT_BYTES", 16 * 1024);
    std::fs::create_dir_all(&out).expect("the output folder");

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_dir(dir.path()).expect("open store");
    build("train_dictionaries", &store, people, deliveries);
    let raw = rusqlite::Connection::open(store.path()).expect("open");
    let values = |sql: &str, dict: Dict| -> Vec<Vec<u8>> {
        let mut stmt = raw.prepare(sql).expect("prepare");
        let rows = stmt
            .query_map([], |r| {
                Ok(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                        b.to_vec()
                    }
                    _ => Vec::new(),
                })
            })
            .expect("query");
        rows.map(|r| readable(dict, r.expect("row"))).collect()
    };
    // Bodies through the store's own reader, so a packed body is read as received.
    let reader = store.reader().expect("reader");
    let ids: Vec<i64> = raw
        .prepare("SELECT id FROM deliveries ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("ids");
    let bodies: Vec<Vec<u8>> = ids
        .iter()
        .map(|&id| reader.delivery(id).expect("delivery").body)
        .collect();
    let kinds = [
        ("bodies", Dict::Bodies, bodies),
        (
            "states",
            Dict::States,
            values(
                "SELECT state FROM source_profiles ORDER BY id",
                Dict::States,
            ),
        ),
        (
            "profiles",
            Dict::Profiles,
            values("SELECT profile FROM people ORDER BY id", Dict::Profiles),
        ),
    ];
    for (name, _dict, all) in kinds {
        // Every other value trains, the rest measure: a dictionary is judged on values it has not
        // seen.
        let (train, held): (Vec<_>, Vec<_>) =
            all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let samples: Vec<Vec<u8>> = train.iter().map(|(_, v)| skeleton(v)).collect();
        let dictionary =
            zstd::dict::from_samples(&samples, dict_bytes).expect("training a dictionary");
        let file = out.join(format!("{name}.zdict"));
        std::fs::write(&file, &dictionary).expect("write the dictionary");

        let held: Vec<Vec<u8>> = held.into_iter().map(|(_, v)| v).collect();
        let n = held.len().max(1) as f64;
        let raw_avg = held.iter().map(Vec::len).sum::<usize>() as f64 / n;
        let mut plain = zstd::bulk::Compressor::new(3).expect("compressor");
        let mut with = zstd::bulk::Compressor::with_dictionary(3, &dictionary).expect("compressor");
        let plain_avg = held
            .iter()
            .map(|v| plain.compress(v).expect("compress").len())
            .sum::<usize>() as f64
            / n;
        let with_avg = held
            .iter()
            .map(|v| with.compress(v).expect("compress").len())
            .sum::<usize>() as f64
            / n;
        println!(
            "train: {name} samples={} dict_bytes={} held_out={} raw_avg={raw_avg:.0} zstd3_avg={plain_avg:.0} zstd3_dict_avg={with_avg:.0} file={}",
            samples.len(),
            dictionary.len(),
            held.len(),
            file.display()
        );
    }
}
