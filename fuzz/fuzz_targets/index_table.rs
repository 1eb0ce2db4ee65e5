//! The `.index` sorted-table parser on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ckptconv::formats::tf::table::Table::parse(data);
});
