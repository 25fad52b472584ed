//! Fuzz target `pow_message`: arbitrary bytes into its decoder (see synod_tests::decoders).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    synod_tests::decoders::exercise("pow_message", data);
});
