//! A safetensors file from arbitrary bytes: header validation, dtype mapping, reads.
#![no_main]
use ckptconv::tensor::TensorSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = ckptconv::formats::safetensors::SafetensorsSource::from_bytes(data.to_vec()) {
        for i in 0..src.tensors().len() {
            let _ = src.read(i);
        }
    }
});
