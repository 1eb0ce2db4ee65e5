//! The TF2 object graph decoder (paths, cycles, bad node ids).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ckptconv::formats::tf::object_graph::ObjectGraph::decode(data);
});
