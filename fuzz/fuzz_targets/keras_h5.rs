//! The Keras layout logic on arbitrary HDF5 files: the bytes are written to a file in
//! /dev/shm (memory) and opened through libhdf5 like any input, then every tensor read.
#![no_main]
use ckptconv::tensor::TensorSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let Ok(mut f) = tempfile::Builder::new().suffix(".h5").tempfile_in(dir) else { return };
    if std::io::Write::write_all(&mut f, data).is_err() {
        return;
    }
    if let Ok(src) = ckptconv::formats::h5::H5Source::open(f.path()) {
        for i in 0..src.tensors().len() {
            let _ = src.read(i);
        }
        let _ = ckptconv::summary::summarize(&src);
    }
});
