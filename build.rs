//! Compiles `proto/*.proto` into Rust with prost-build, fed by protox so that no system
//! `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/types.proto",
        "proto/tensor_shape.proto",
        "proto/tensor_slice.proto",
        "proto/versions.proto",
        "proto/tensor_bundle.proto",
        "proto/tensor.proto",
        "proto/saved_tensor_slice.proto",
        "proto/trackable_object_graph.proto",
        "proto/meta_graph.proto",
        "proto/keras_metadata.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
