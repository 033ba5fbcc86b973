//! Compressing what the store keeps: raw bodies, profile states and people's merged profiles.
//!
//! Each kind of value has its own zstd dictionary (see [`Dict`]), shipped in
//! `crates/store/dictionaries/` and prepared once per process. A packed value is one zstd frame
//! that records its decompressed size (so unpacking allocates once) and its dictionary's id.
//!
//! The dictionaries were trained by `train_dictionaries` on the *shapes* of synthetic data only
//! ([`skeleton`]): they hold keys, punctuation and patterns like `"Xxxx"` or `"+00000000000"`,
//! never a value, so forgetting someone never has to touch them (docs/storage.md).
//!
//! **A shipped dictionary is never edited or replaced**: every row packed with it needs it to be
//! read, forever. `tests::shipped_dictionaries_never_change` pins each file's SHA-256. A better
//! dictionary later is a new [`Dict`] variant (or a new codec value in `deliveries.body_codec`),
//! not a new file under an old name.

use crate::StoreError;
use std::cell::RefCell;
use std::sync::LazyLock;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// What is being packed: each has its own dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dict {
    /// Raw delivery bodies.
    Bodies,
    /// Source profiles' folded states (JSON).
    States,
    /// People's merged profiles (JSON).
    Profiles,
}

impl Dict {
    pub const ALL: [Dict; 3] = [Dict::Bodies, Dict::States, Dict::Profiles];

    fn index(self) -> usize {
        match self {
            Dict::Bodies => 0,
            Dict::States => 1,
            Dict::Profiles => 2,
        }
    }

    /// The shipped dictionary's bytes (frozen: see the module's documentation).
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Dict::Bodies => include_bytes!("../dictionaries/bodies.zdict"),
            Dict::States => include_bytes!("../dictionaries/states.zdict"),
            Dict::Profiles => include_bytes!("../dictionaries/profiles.zdict"),
        }
    }
}

/// zstd's level. With these dictionaries, on the bench data set's 95,000 bodies (681 bytes on
/// average; release build, three interleaved runs on a busy 2-core machine): level 1 made 228
/// bytes at 4.1–4.8 µs a body, level 3 225 bytes at 5.6–7.5 µs, level -1 231 bytes at 4.0–6.8 µs
/// (docs/storage.md). 1% smaller is not worth a third more time on the writer thread.
const LEVEL: i32 = 1;

/// The zstd frame's first four bytes: how anything packed can be recognised.
pub const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

static ENCODERS: LazyLock<[EncoderDictionary<'static>; 3]> =
    LazyLock::new(|| Dict::ALL.map(|d| EncoderDictionary::copy(d.bytes(), LEVEL)));
static DECODERS: LazyLock<[DecoderDictionary<'static>; 3]> =
    LazyLock::new(|| Dict::ALL.map(|d| DecoderDictionary::copy(d.bytes())));

type Compressors = [Option<zstd::bulk::Compressor<'static>>; 3];
type Decompressors = [Option<zstd::bulk::Decompressor<'static>>; 3];

thread_local! {
    static COMPRESSORS: RefCell<Compressors> = const { RefCell::new([None, None, None]) };
    static DECOMPRESSORS: RefCell<Decompressors> = const { RefCell::new([None, None, None]) };
}

/// Compresses `raw` with `dict`'s dictionary.
pub fn pack(dict: Dict, raw: &[u8]) -> Vec<u8> {
    COMPRESSORS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = cell[dict.index()].get_or_insert_with(|| {
            let mut c = zstd::bulk::Compressor::with_prepared_dictionary(&ENCODERS[dict.index()])
                .expect("zstd compressor");
            c.include_checksum(false).expect("zstd parameter");
            c.include_contentsize(true).expect("zstd parameter");
            c.include_dictid(true).expect("zstd parameter");
            c
        });
        compressor
            .compress(raw)
            .expect("compressing into a growable buffer cannot fail")
    })
}

/// Decompresses what [`pack`] made with the same `dict`.
pub fn unpack(dict: Dict, packed: &[u8]) -> Result<Vec<u8>, StoreError> {
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .ok()
        .flatten()
        .ok_or_else(|| StoreError::Corrupt("a packed value has no readable size".into()))?;
    // Nothing the store packs comes near this (a body is at most a few MiB); a frame claiming more
    // is damage, not a reason to allocate it.
    if size > 256 * 1024 * 1024 {
        return Err(StoreError::Corrupt(
            "a packed value claims an impossible size".into(),
        ));
    }
    DECOMPRESSORS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = cell[dict.index()].get_or_insert_with(|| {
            zstd::bulk::Decompressor::with_prepared_dictionary(&DECODERS[dict.index()])
                .expect("zstd decompressor")
        });
        decompressor
            .decompress(packed, size as usize)
            .map_err(|e| StoreError::Corrupt(format!("a packed value can't be read: {e}")))
    })
}

/// A delivery's body as received, from its stored `blob` and `deliveries.body_codec`: 0 the bytes
/// as received, 1 [`pack`]ed with [`Dict::Bodies`]. An erased body is empty under either.
pub fn stored_body(codec: i64, blob: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    match codec {
        _ if blob.is_empty() => Ok(blob),
        BODY_AS_RECEIVED => Ok(blob),
        BODY_PACKED => unpack(Dict::Bodies, &blob),
        other => Err(StoreError::Corrupt(format!(
            "a delivery's body is stored in a way this version of Clientele doesn't know ({other}); was it written by a newer version?"
        ))),
    }
}

/// `deliveries.body_codec`: the body as received.
pub const BODY_AS_RECEIVED: i64 = 0;
/// `deliveries.body_codec`: the body [`pack`]ed with [`Dict::Bodies`].
pub const BODY_PACKED: i64 = 1;

/// How to store `body`: packed when that is smaller, else as received.
pub fn store_body(body: &[u8]) -> (i64, std::borrow::Cow<'_, [u8]>) {
    if body.is_empty() {
        return (BODY_AS_RECEIVED, body.into());
    }
    let packed = pack(Dict::Bodies, body);
    if packed.len() < body.len() {
        (BODY_PACKED, packed.into())
    } else {
        (BODY_AS_RECEIVED, body.into())
    }
}

/// Every packed value found anywhere in `bytes` (a file, a page, a column), unpacked: each frame
/// starting with [`MAGIC`] that one of the dictionaries reads. What the forgetting tests search
/// besides the bytes themselves, so that compression can't hide a value from them. (A frame split
/// across SQLite overflow pages isn't contiguous in a file; [`packed_values_in_database`] reads
/// those through SQLite.)
pub fn unpacked_frames_in(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = bytes[at..].windows(4).position(|w| w == MAGIC) {
        let start = at + offset;
        let rest = &bytes[start..];
        if let Ok(len) = zstd::zstd_safe::find_frame_compressed_size(rest) {
            let frame = &rest[..len.min(rest.len())];
            if let Some(value) = unpack_with_any(frame) {
                found.push(value);
            }
        }
        at = start + 1;
    }
    found
}

/// `frame` unpacked with whichever dictionary reads it.
pub fn unpack_with_any(frame: &[u8]) -> Option<Vec<u8>> {
    Dict::ALL.into_iter().find_map(|d| unpack(d, frame).ok())
}

/// Every packed value (a BLOB starting with [`MAGIC`]) in every column of every table of the
/// SQLite database at `path`, unpacked, read through SQLite (the WAL included) without writing.
/// With [`unpacked_frames_in`], what the forgetting tests search.
pub fn packed_values_in_database(path: &std::path::Path) -> Result<Vec<Vec<u8>>, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut found = Vec::new();
    for table in tables {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([&table], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for column in columns {
            let sql = format!(
                "SELECT \"{column}\" FROM \"{table}\"
                 WHERE typeof(\"{column}\") = 'blob' AND substr(\"{column}\", 1, 4) = x'28B52FFD'"
            );
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let blob: Vec<u8> = row.get(0)?;
                match unpack_with_any(&blob) {
                    Some(value) => found.push(value),
                    None => {
                        return Err(StoreError::Corrupt(format!(
                            "a packed value in {table}.{column} can't be read"
                        )));
                    }
                }
            }
        }
    }
    Ok(found)
}

/// A value's *shape*, which is all a shipped dictionary is ever trained on: in JSON, every string
/// value becomes its pattern (each digit `0`, each lower-case letter `x`, each upper-case letter
/// `X`, anything else kept — `"Ana.B@ex.com"` becomes `"Xxx.X@xx.xxx"`), every number `0`;
/// keys, `true`, `false`, `null`, punctuation and whitespace are kept (a key's digits become `0`
/// too, in case a sender keys objects by an id). Outside JSON strings a letter that isn't part of
/// `true`, `false` or `null` becomes `x`, so a body that isn't JSON keeps nothing either.
pub fn skeleton(value: &[u8]) -> Vec<u8> {
    fn shape(b: u8) -> u8 {
        match b {
            b'0'..=b'9' => b'0',
            b'a'..=b'z' => b'x',
            b'A'..=b'Z' => b'X',
            // Bytes of multi-byte UTF-8 characters: a letter of some alphabet.
            0x80.. => b'x',
            _ => b,
        }
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'"' {
            // A string: find its end, honouring escapes.
            let start = i + 1;
            let mut end = start;
            while end < value.len() && value[end] != b'"' {
                end += if value[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(value.len());
            let mut after = end + 1;
            while after < value.len() && value[after].is_ascii_whitespace() {
                after += 1;
            }
            let is_key = value.get(after) == Some(&b':');
            out.push(b'"');
            for &c in &value[start..end] {
                out.push(match c {
                    b'0'..=b'9' => b'0',
                    _ if is_key && c.is_ascii() => c,
                    _ => shape(c),
                });
            }
            if end < value.len() {
                out.push(b'"');
            }
            i = end + 1;
        } else if b == b'-' || b.is_ascii_digit() {
            // A number, with its fraction and exponent: one `0`.
            out.push(b'0');
            i += 1;
            while i < value.len()
                && (value[i].is_ascii_digit()
                    || matches!(value[i], b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                i += 1;
            }
        } else if b.is_ascii_alphabetic() {
            let word_end = value[i..]
                .iter()
                .position(|c| !c.is_ascii_alphabetic())
                .map_or(value.len(), |n| i + n);
            let word = &value[i..word_end];
            if matches!(word, b"true" | b"false" | b"null") {
                out.extend_from_slice(word);
            } else {
                out.extend(word.iter().map(|&c| shape(c)));
            }
            i = word_end;
        } else {
            out.push(shape(b));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn round_trips_byte_for_byte() {
        for dict in Dict::ALL {
            for raw in [
                &b""[..],
                b"{}",
                br#"{"email":"ana@example.com","first_name":"Ana"}"#,
                b"{ \"x\": \"\xc3\xa9\" }\r\n\0\xff",
            ] {
                let packed = pack(dict, raw);
                assert!(packed.starts_with(&MAGIC));
                assert_eq!(unpack(dict, &packed).unwrap(), raw);
            }
        }
        assert!(unpack(Dict::States, b"not zstd").is_err());
    }

    #[test]
    fn a_value_reads_only_with_its_own_dictionary() {
        let raw = br#"{"email":"ana@example.com","first_name":"Ana"}"#;
        let packed = pack(Dict::Bodies, raw);
        assert!(unpack(Dict::States, &packed).is_err());
        assert!(unpack(Dict::Profiles, &packed).is_err());
        assert_eq!(unpack_with_any(&packed).unwrap(), raw);
    }

    /// Every row packed with a dictionary needs it to be read, forever: a shipped file is never
    /// edited or replaced. If this fails, put the file back and add a new `Dict` (or body codec)
    /// for the new one instead.
    #[test]
    fn shipped_dictionaries_never_change() {
        let pinned = [
            (
                Dict::Bodies,
                "ab3d4a011328df616977688ac4affa1705e37967bbf0bc5feae4a07d2d6dddc3",
            ),
            (
                Dict::States,
                "4b014324c179bca483f752fe58aa2d4999febedf0337b123e1425c4f0de4f380",
            ),
            (
                Dict::Profiles,
                "316bcfc2ba98d18c9898917ab6320cc0441d0ea8bb39368349c30784e742a87e",
            ),
        ];
        for (dict, sha) in pinned {
            assert_eq!(hex::encode(Sha256::digest(dict.bytes())), sha, "{dict:?}");
        }
        let ids: std::collections::HashSet<_> = Dict::ALL
            .iter()
            .map(|d| zstd::zstd_safe::get_dict_id_from_dict(d.bytes()).expect("a dictionary id"))
            .collect();
        assert_eq!(ids.len(), 3, "each dictionary has its own id");
    }

    /// A zstd dictionary's content: what follows its header (magic, id, entropy tables) and the
    /// three starting repeat offsets zstd's trainer writes last, 1, 4 and 8.
    fn content(dictionary: &[u8]) -> &[u8] {
        const REPEATS: [u8; 12] = [1, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0];
        let at = dictionary
            .windows(REPEATS.len())
            .position(|w| w == REPEATS)
            .expect("a trained dictionary's repeat offsets");
        &dictionary[at + REPEATS.len()..]
    }

    /// Whether `content` shows a value: a digit other than `0`, or an `@` followed by a lower-case
    /// letter other than `x` — a phone number, a date, an email address.
    fn a_value_in(content: &[u8]) -> Option<String> {
        content.iter().enumerate().find_map(|(i, &b)| {
            let next = content.get(i + 1).copied().unwrap_or(b' ');
            if (b'1'..=b'9').contains(&b) {
                Some(format!("the digit {} at {i}", b as char))
            } else if b == b'@' && next.is_ascii_lowercase() && next != b'x' {
                Some(format!("'@{}' at {i}", next as char))
            } else {
                None
            }
        })
    }

    /// The dictionaries hold shapes only (see `skeleton`), never a value.
    #[test]
    fn shipped_dictionaries_hold_no_value() {
        for dict in Dict::ALL {
            let content = content(dict.bytes());
            assert!(content.len() > 8 * 1024, "{dict:?}: {}", content.len());
            assert_eq!(a_value_in(content), None, "{dict:?}");
        }
    }

    #[test]
    fn the_check_would_catch_a_value() {
        // Trained on values, a dictionary holds them, and the check says so; trained on their
        // skeletons, it doesn't.
        let samples: Vec<Vec<u8>> = (0..2000)
            .map(|i| {
                format!(
                    r#"{{"email":"ana{i}@example.com","phone":"+4479111{i:05}","first_name":"Ana"}}"#
                )
                .into_bytes()
            })
            .collect();
        let trained = zstd::dict::from_samples(&samples, 4096).unwrap();
        assert!(a_value_in(content(&trained)).is_some());
        let shapes: Vec<Vec<u8>> = samples.iter().map(|s| skeleton(s)).collect();
        let trained = zstd::dict::from_samples(&shapes, 4096).unwrap();
        assert_eq!(a_value_in(content(&trained)), None);
    }

    #[test]
    fn a_skeleton_keeps_keys_and_shapes_and_no_value() {
        let body = r#"{"id": "cus_8F2k", "email":"Ana.B@ex.com","n":-12.5e3,"ok":true,"x":null,"a":[1, "\"7\""],"k9":"é"} tail 42"#.as_bytes();
        assert_eq!(
            String::from_utf8(skeleton(body)).unwrap(),
            r#"{"id": "xxx_0X0x", "email":"Xxx.X@xx.xxx","n":0,"ok":true,"x":null,"a":[0, "\"0\""],"k0":"xx"} xxxx 0"#
        );
    }

    #[test]
    fn stored_bodies_read_back_under_each_codec() {
        let body = br#"{"id":"evt_1","data":{"email":"ana@example.com","first_name":"Ana"}}"#;
        let (codec, blob) = store_body(body);
        assert_eq!(codec, BODY_PACKED);
        assert!(blob.len() < body.len());
        assert_eq!(stored_body(codec, blob.into_owned()).unwrap(), body);
        let tiny = b"{}";
        let (codec, blob) = store_body(tiny);
        assert_eq!((codec, &*blob), (BODY_AS_RECEIVED, &tiny[..]));
        assert_eq!(stored_body(codec, blob.into_owned()).unwrap(), tiny);
        assert_eq!(stored_body(BODY_PACKED, Vec::new()).unwrap(), b"");
        assert!(matches!(
            stored_body(7, b"x".to_vec()),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn packed_values_are_found_in_any_bytes() {
        let a = pack(Dict::Bodies, b"{\"name\":\"Quixotic\"}");
        let b = pack(Dict::Profiles, b"{\"email\":\"zelda@example.org\"}");
        let mut file = b"SQLite format 3\0 junk \x28\xb5\x2f\xfd broken".to_vec();
        file.extend_from_slice(&a);
        file.extend_from_slice(b"between");
        file.extend_from_slice(&b);
        file.extend_from_slice(&[0; 64]);
        assert_eq!(
            unpacked_frames_in(&file),
            vec![
                b"{\"name\":\"Quixotic\"}".to_vec(),
                b"{\"email\":\"zelda@example.org\"}".to_vec()
            ]
        );
    }
}
