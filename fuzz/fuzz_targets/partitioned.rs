//! Partitioned-variable reassembly: an `.index` and a data shard from the input (the
//! first 4 bytes give the index's length), opened and every tensor read, so that slice
//! bounds, overlaps, coverage and sizes are checked against a real data file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let rest = &data[4..];
    let (index, shard) = rest.split_at(n.min(rest.len()));
    let dir = std::env::temp_dir().join(format!("ckptconv-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    if std::fs::write(dir.join("ck.data-00000-of-00001"), shard).is_err() {
        return;
    }
    use ckptconv::tensor::TensorSource;
    if let Ok(b) = ckptconv::formats::tf::bundle::Bundle::from_index_bytes(&dir.join("ck"), index) {
        let _ = b.verify();
    }
});
