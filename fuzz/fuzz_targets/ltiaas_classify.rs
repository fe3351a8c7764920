#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passback_fuzz::ltiaas_classify(data));
