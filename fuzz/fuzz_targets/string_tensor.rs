//! String tensor decoding: element count and stored crc from the first bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let n = u64::from_le_bytes(data[..8].try_into().unwrap());
    let crc = u32::from_le_bytes(data[8..12].try_into().unwrap());
    let _ = ckptconv::formats::tf::bundle::decode_strings(&data[12..], n, crc);
});
