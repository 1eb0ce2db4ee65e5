//! A TF1 `.meta` graph's variable collections and node names.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ckptconv::formats::tf::meta::parse(std::path::Path::new("fuzz.meta"), data);
});
