#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passback_fuzz::import_proxy(data));
