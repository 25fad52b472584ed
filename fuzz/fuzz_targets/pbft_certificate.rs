//! Fuzz target `pbft_certificate`: arbitrary bytes into its decoder (see synod_tests::decoders).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    synod_tests::decoders::exercise("pbft_certificate", data);
});
