//! Compressing what the store keeps: raw bodies, profile states and people's merged profiles.
//!
//! Each kind of value has its own zstd dictionary (see [`Dict`]). A packed value is one zstd
//! frame that records its decompressed size, so unpacking allocates once.

use crate::StoreError;
use std::cell::RefCell;

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

const LEVEL: i32 = 3;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `raw`.
pub fn pack(_dict: Dict, raw: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = cell.get_or_insert_with(|| {
            let mut c = zstd::bulk::Compressor::new(LEVEL).expect("zstd compressor");
            c.include_checksum(false).expect("zstd parameter");
            c.include_contentsize(true).expect("zstd parameter");
            c
        });
        compressor
            .compress(raw)
            .expect("compressing into a growable buffer cannot fail")
    })
}

/// Decompresses what [`pack`] made.
pub fn unpack(_dict: Dict, packed: &[u8]) -> Result<Vec<u8>, StoreError> {
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .ok()
        .flatten()
        .ok_or_else(|| StoreError::Corrupt("a packed value has no readable size".into()))?;
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor =
            cell.get_or_insert_with(|| zstd::bulk::Decompressor::new().expect("zstd decompressor"));
        decompressor
            .decompress(packed, size as usize)
            .map_err(|e| StoreError::Corrupt(format!("a packed value can't be read: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_byte_for_byte() {
        for raw in [
            &b""[..],
            b"{}",
            br#"{"email":"ana@example.com","first_name":"Ana"}"#,
        ] {
            let packed = pack(Dict::Bodies, raw);
            assert_eq!(unpack(Dict::Bodies, &packed).unwrap(), raw);
        }
        assert!(unpack(Dict::States, b"not zstd").is_err());
    }
}
