//! V1 checkpoints (TensorFlow's tensor-slice tables): arbitrary bytes as one V1 file, opened
//! from memory — the table's footer and index, the `""` meta, tensor registration and
//! slice geometry — then every tensor read (table lookups, TensorProto decoding, the
//! count checks, reassembly of sliced tensors) and the whole table walked as `verify`
//! walks it.
#![no_main]
use ckptconv::TensorSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.ckpt");
    if let Ok(c) = ckptconv::formats::tf::v1::V1Checkpoint::from_bytes(path, data.to_vec()) {
        for i in 0..c.tensors().len() {
            let _ = c.read(i);
            let _ = c.stored_at(i);
        }
        let _ = ckptconv::formats::tf::table::walk(data, |_, _| Ok(()));
    }
});
