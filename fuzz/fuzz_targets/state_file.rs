//! The `checkpoint` state file's protobuf text parser (escapes, fields, garbage).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ckptconv::formats::tf::state::parse_checkpoint_state(&String::from_utf8_lossy(data));
});
