//! OrderedCode slice keys: decoding arbitrary bytes, and re-encoding what decodes.
#![no_main]
use ckptconv::formats::tf::slice::{decode_slice_key, encode_slice_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((name, ext)) = decode_slice_key(data) {
        let again = encode_slice_key(&name, &ext);
        assert_eq!(decode_slice_key(&again), Some((name, ext)));
    }
});
