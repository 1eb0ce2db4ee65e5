//! Any bytes as a frozen GraphDef: protobuf classification (GraphDef, SavedModel,
//! MetaGraphDef, ONNX), the Const nodes' attrs, TensorProto decoding with TensorFlow's
//! splat rules, and a read of every tensor of at most 16 MiB (larger splats decode the
//! same way, only slower; their ceiling is checked when the graph is opened).
#![no_main]
use ckptconv::formats::tf::graphdef::{classify, GraphDef};
use ckptconv::tensor::TensorSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    if let Ok(g) = GraphDef::from_vec(std::path::Path::new("fuzz.pb"), data.to_vec()) {
        for (i, t) in g.tensors().iter().enumerate() {
            if t.byte_len <= 16 << 20 {
                let _ = g.read(i);
            }
        }
    }
});
