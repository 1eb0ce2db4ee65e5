//! Bundle header and entry decoding: arbitrary bytes as a checkpoint's `.index` (no data
//! files), then every tensor read (which must fail cleanly: the shards are missing).
#![no_main]
use ckptconv::tensor::TensorSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = ckptconv::formats::tf::Bundle::from_index_bytes(std::path::Path::new("/nonexistent/fuzz"), data) {
        for i in 0..b.tensors().len() {
            let _ = b.read(i);
        }
    }
});
