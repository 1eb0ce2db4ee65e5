//! Output shapes from a model config (`summary`): any text, in both Keras flavours, with
//! every row formatted. Never a panic, never unbounded work.
#![no_main]
use ckptconv::keras::shapes::{format_row, infer, Flavour};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        for f in [Flavour::TfKeras, Flavour::Keras3] {
            if let Some(m) = infer(s, f) {
                for r in &m.rows {
                    let _ = format_row(r, f);
                }
            }
        }
    }
});
