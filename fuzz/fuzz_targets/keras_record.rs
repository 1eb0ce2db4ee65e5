//! ckptconv's own model record (checkpoint header / safetensors metadata JSON).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let index: std::collections::HashMap<&str, usize> =
        [("a", 0), ("b", 1), ("dense/kernel", 2)].into_iter().collect();
    let _ = ckptconv::keras::record::decode(&String::from_utf8_lossy(data), &index);
});
