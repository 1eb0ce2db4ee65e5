//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's testdata directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Run the built binary with `args`.
pub fn ckptconv<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_ckptconv"))
        .args(args)
        .output()
        .expect("run ckptconv")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Decode a hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Copy a directory tree (fixtures are small).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Assert that a failed run exited 1 with a one-line error (no panic) containing all
/// of `needles`.
pub fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let out = stdout(o) + &stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; output:\n{out}");
    assert!(!out.contains("panicked"), "panic:\n{out}");
    assert!(!out.contains("RUST_BACKTRACE"), "panic:\n{out}");
    for n in needles {
        assert!(out.contains(n), "expected {n:?} in:\n{out}");
    }
}

/// Check one tensor of `src` against an expected-values entry written by the fixture
/// generators: `{"name", "dtype", "shape", "hex" | "strings"}`. Returns its index.
pub fn check_tensor(
    src: &dyn ckptconv::tensor::TensorSource,
    v: &serde_json::Value,
    ctx: &str,
) -> usize {
    let name = v["name"].as_str().unwrap();
    let i = src
        .find(name)
        .unwrap_or_else(|| panic!("{ctx}/{name}: missing"));
    let info = &src.tensors()[i];
    assert_eq!(
        info.dtype.name(),
        v["dtype"].as_str().unwrap(),
        "{ctx}/{name}: dtype"
    );
    let shape: Vec<u64> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect();
    assert_eq!(info.shape, shape, "{ctx}/{name}: shape");
    match src.read(i).unwrap_or_else(|e| panic!("{ctx}/{name}: {e}")) {
        ckptconv::TensorData::Bytes(b) => {
            let want = unhex(v["hex"].as_str().unwrap());
            assert_eq!(b.len() as u64, info.byte_len, "{ctx}/{name}: byte_len");
            assert!(b.as_ref() == want.as_slice(), "{ctx}/{name}: bytes differ");
        }
        ckptconv::TensorData::Strings(s) => {
            let want: Vec<Vec<u8>> = v["strings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| unhex(h.as_str().unwrap()))
                .collect();
            assert_eq!(s, want, "{ctx}/{name}: strings");
        }
    }
    i
}

/// A safetensors file of `n` float32 tensors `t0000`, `t0001`, … of `mib` MiB each,
/// written directly; tensor `i`'s bytes are `i + 1` repeated, except that byte `k` of each
/// is `k % 251`, so that every tensor differs from the others and from a constant.
pub fn big_safetensors(path: &Path, n: usize, mib: usize) {
    use std::io::Write;
    let len = mib << 20;
    let mut header = String::from("{");
    for i in 0..n {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"t{i:04}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            len / 4,
            i * len,
            (i + 1) * len
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    // A MiB at a time: the tests that measure memory keep their own small too (a child's
    // peak RSS counts its parent's, see tests/memory.rs).
    let mut block = vec![0u8; 1 << 20];
    for i in 0..n {
        for start in (0..len).step_by(block.len()) {
            block.fill((i + 1) as u8);
            for k in (start.div_ceil(4093) * 4093..start + block.len()).step_by(4093) {
                block[k - start] = (k % 251) as u8;
            }
            f.write_all(&block).unwrap();
        }
    }
    f.flush().unwrap();
}
