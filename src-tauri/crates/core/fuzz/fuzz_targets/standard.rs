//! Standard's verify-and-parse under libFuzzer; see `src/lib.rs` for what an input means.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clientele_core_fuzz::verify_and_parse(clientele_core::Provider::Standard, data);
});
