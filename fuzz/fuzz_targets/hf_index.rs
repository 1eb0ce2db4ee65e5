//! transformers' `tf_model.h5.index.json`: JSON, weight names, shard names that would
//! leave the index's directory, and where each weight sits in its shard.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("tf_model.h5.index.json");
    if let Ok(index) = ckptconv::formats::h5::parse_hf_index(path, data) {
        for (w, shard) in &index.weights {
            let d = ckptconv::naming::hf_shard_dataset(w);
            assert!(w.ends_with(d));
            assert!(!shard.contains('/') && shard.ends_with(".h5"));
            assert!(index.shards.contains(shard));
        }
    }
});
