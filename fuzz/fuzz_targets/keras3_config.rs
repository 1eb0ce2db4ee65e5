//! Keras 2 model configs (a full-model `.h5`'s `model_config`, a SavedModel's
//! `keras_metadata.pb`) translated to Keras 3's `config.json`: any JSON, any shape.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = ckptconv::keras::config3::from_keras2(&v);
    }
});
