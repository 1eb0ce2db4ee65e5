//! A Keras 3 sharded weights map (`.weights.json`): JSON, part names, names that would
//! leave the map's directory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ckptconv::formats::h5::parse_weight_map(std::path::Path::new("x.weights.json"), data);
});
