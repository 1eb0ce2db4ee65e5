//! Hostile and broken inputs, and failures while writing: every case ends in exit 0 or 1
//! with one clear line, never a panic, and never leaves a partial output.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_clean_failure, ckptconv, stderr};

fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn hostile_safetensors_headers() {
    let t = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("header length beyond the file", {
            let mut v = (1u64 << 40).to_le_bytes().to_vec();
            v.extend_from_slice(b"{}");
            v
        }),
        ("header length 2^62", {
            let mut v = (1u64 << 62).to_le_bytes().to_vec();
            v.extend_from_slice(b"{\"a\":1}");
            v
        }),
        (
            "overlapping offsets",
            safetensors_bytes(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                &[0; 12],
            ),
        ),
        (
            "offsets out of range",
            safetensors_bytes(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 4],
            ),
        ),
        (
            "trailing bytes",
            safetensors_bytes(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                &[0; 9],
            ),
        ),
        (
            "shape product overflows",
            safetensors_bytes(
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#,
                &[0; 4],
            ),
        ),
        (
            "size does not match shape",
            safetensors_bytes(
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}}"#,
                &[0; 4],
            ),
        ),
        (
            "unknown dtype",
            safetensors_bytes(
                r#"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#,
                &[0; 1],
            ),
        ),
        ("not JSON", safetensors_bytes("{not json", &[])),
    ];
    for (what, bytes) in cases {
        let p = t.path().join("x.safetensors");
        fs::write(&p, &bytes).unwrap();
        for cmd in ["inspect", "verify"] {
            let o = ckptconv([Path::new(cmd), &p]);
            let all = common::stdout(&o) + &stderr(&o);
            assert!(matches!(o.status.code(), Some(1)), "{what} ({cmd}): {all}");
            assert!(all.contains("x.safetensors"), "{what} ({cmd}): {all}");
            assert!(!all.contains("panicked"), "{what}: {all}");
        }
    }
}

#[test]
fn full_disk_leaves_no_partial_output() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    let bin = env!("CARGO_BIN_EXE_ckptconv");
    // Big tensors go through the copy pipeline, small ones are written: both must fail
    // cleanly. The limit is in KiB.
    let big = t.path().join("big.safetensors");
    common::big_safetensors(&big, 3, 6);
    let cases = [
        (common::testdata().join("keras2/full.h5"), 2),
        (big.clone(), 8 << 10),
    ];
    for ((input, limit), target) in cases
        .iter()
        .flat_map(|c| ["w.safetensors", "w.h5", "w"].map(|t| (c, t)))
    {
        // A file size limit: writes fail with EFBIG (SIGXFSZ ignored), as on a full disk.
        let script = format!(
            "ulimit -f {limit}; trap '' XFSZ; exec '{bin}' convert '{}' -o '{}'",
            input.display(),
            out.join(target).display()
        );
        let o = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{target}: {err}");
        assert!(
            err.contains("cannot write") || err.contains("write"),
            "{target}: {err}"
        );
        assert!(!err.contains("panicked"), "{target}: {err}");
        let left: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{target}: left {left:?}");
    }
}

#[test]
fn unwritable_output_directory() {
    // Root ignores directory permissions (and CI runs as root): make the output's parent
    // a regular file instead, which nobody can create files in.
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("not_a_dir");
    fs::write(&file, b"x").unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("keras2/weights.h5"),
        Path::new("-o"),
        &file.join("w.safetensors"),
    ]);
    assert_clean_failure(&o, &["not_a_dir", "cannot create the output directory"]);
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

fn flip_sweep(fixture: &str, file: &str, cases: usize, seed: u64) {
    let t = tempfile::tempdir().unwrap();
    let src = common::testdata().join(fixture);
    let dir = t.path().join("x");
    if src.is_dir() {
        common::copy_dir(&src, &dir);
    } else {
        fs::create_dir(&dir).unwrap();
        fs::copy(&src, dir.join(file)).unwrap();
    }
    let target: PathBuf = dir.join(file);
    let orig = fs::read(&target).unwrap();
    let mut s = seed;
    for case in 0..cases {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let pos = (s % orig.len() as u64) as usize;
        let bit = (s >> 40) % 8;
        let mut b = orig.clone();
        b[pos] ^= 1 << bit;
        fs::write(&target, &b).unwrap();
        for cmd in ["verify", "inspect"] {
            let o = ckptconv([Path::new(cmd), &target]);
            let all = common::stdout(&o) + &stderr(&o);
            assert!(
                matches!(o.status.code(), Some(0) | Some(1)),
                "{fixture} case {case}: byte {pos} bit {bit}: {cmd}: status {:?}: {all}",
                o.status
            );
            assert!(!all.contains("panicked"), "{fixture} case {case}: {all}");
        }
    }
}

#[test]
fn bit_flip_sweep_over_a_tensorflow_index() {
    flip_sweep("tf/tf2_object", "ckpt-2.index", 200, 0x5eed_0001);
}

#[test]
fn bit_flip_sweep_over_a_keras_h5() {
    flip_sweep("keras2/weights.h5", "weights.h5", 150, 0x5eed_0002);
}

/// Every file in tests/bad/ fails cleanly in every command.
#[test]
fn bad_inputs_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let t = tempfile::tempdir().unwrap();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let out = t.path().join("o.safetensors");
        for args in [
            vec![PathBuf::from("verify"), p.clone()],
            vec![PathBuf::from("inspect"), p.clone()],
            vec![
                PathBuf::from("convert"),
                p.clone(),
                PathBuf::from("-o"),
                out.clone(),
            ],
        ] {
            // One input makes libhdf5 loop forever: a short probe deadline (the files
            // here are tiny) keeps the test quick.
            let o = Command::new(env!("CARGO_BIN_EXE_ckptconv"))
                .args(&args)
                .env("CKPTCONV_H5_PROBE_SECONDS", "3")
                .output()
                .unwrap();
            let all = common::stdout(&o) + &stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{name} {:?}: {:?} {all}",
                args[0],
                o.status
            );
            assert!(all.contains(&name), "{name}: {all}");
            assert!(!all.contains("panicked"), "{name}: {all}");
            assert!(!out.exists(), "{name}: no output");
        }
    }
}

/// HDF5 hard links can make a group its own descendant. Walking such a file must end, with
/// a clear error, whether the cycle is a single chain (depth limit) or branches (object
/// budget).
#[test]
fn hdf5_link_cycles_end_with_an_error() {
    let t = tempfile::tempdir().unwrap();
    for (name, links) in [("chain.h5", 1), ("branching.h5", 2)] {
        let p = t.path().join(name);
        {
            let f = hdf5::File::create(&p).unwrap();
            let a = f.create_group("a").unwrap();
            a.new_dataset::<f32>().shape([2]).create("w").unwrap();
            for k in 0..links {
                f.link_hard("a", &format!("a/loop{k}")).unwrap();
            }
        }
        for cmd in ["inspect", "verify"] {
            let o = ckptconv([Path::new(cmd), &p]);
            assert_clean_failure(&o, &[name, "link cycle"]);
        }
    }
}

/// A `TensorSource` implemented outside the crate that breaks its contract (fewer
/// strings, fewer bytes than its shape says): writers refuse, they do not read past the
/// end of its buffers.
#[test]
fn a_lying_tensor_source_is_an_error_not_a_crash() {
    use ckptconv::convert::{convert_source, ConvertOptions, Layout, NoProgress, OutputFormat};
    use ckptconv::tensor::TensorSource;
    use ckptconv::{DType, Format, TensorData, TensorInfo};
    struct Liar(Vec<TensorInfo>);
    impl TensorSource for Liar {
        fn format(&self) -> Format {
            Format::Safetensors
        }
        fn path(&self) -> &Path {
            Path::new("liar")
        }
        fn tensors(&self) -> &[TensorInfo] {
            &self.0
        }
        fn read(&self, index: usize) -> ckptconv::Result<TensorData<'_>> {
            Ok(if self.0[index].dtype == DType::String {
                TensorData::Strings(vec![b"one".to_vec()])
            } else {
                TensorData::Bytes(vec![0u8; 4].into())
            })
        }
    }
    let info = |name: &str, dtype, shape: Vec<u64>, byte_len| TensorInfo {
        name: name.into(),
        variable: name.into(),
        dtype,
        shape,
        byte_len,
        shard: None,
        slices: 0,
        object_path: None,
    };
    let t = tempfile::tempdir().unwrap();
    for tensor in [
        info("s", DType::String, vec![1000], 3),
        info("f", DType::Float32, vec![1 << 20], 4 << 20),
    ] {
        let src = Liar(vec![tensor]);
        for (out, layout) in [
            ("x.h5", Some(Layout::Flat)),
            ("x.safetensors", None),
            ("ck", Some(Layout::Tf1)),
        ] {
            let opts = ConvertOptions {
                to: None,
                layout,
                ..Default::default()
            };
            let target = t.path().join(out);
            let r = convert_source(
                &src,
                Path::new("liar"),
                &target,
                &opts,
                &NoProgress,
                std::time::Instant::now(),
            );
            match r {
                Err(_) => assert!(!target.exists(), "{out}: refused but written"),
                // safetensors has no strings: the tensor is skipped, not read.
                Ok(r) => {
                    assert!(src.0[0].dtype == DType::String && out.ends_with(".safetensors"));
                    assert_eq!(r.tensors, 0);
                    fs::remove_file(&target).unwrap();
                }
            }
            let _ = OutputFormat::H5;
        }
    }
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `file` with bit `bit` of byte `at` flipped for each `(at, bit)`, written to `dir`.
fn flipped(dir: &Path, fixture: &str, flips: &[(usize, u8)]) -> PathBuf {
    let src = common::testdata().join(fixture);
    let mut b = fs::read(&src).unwrap();
    for &(at, bit) in flips {
        b[at] ^= 1 << bit;
    }
    let p = dir.join(src.file_name().unwrap());
    fs::write(&p, b).unwrap();
    p
}

/// One bit flipped in a dataset's object header (its dataspace message's type) leaves
/// libhdf5 seeing a named datatype there: the dataset must not vanish from the tensors
/// with `verify` saying ok, but fail naming the object (found by an independent tester's
/// bit-flip sweep; before the fix, 45 tensors became 44 and every command exited 0).
#[test]
fn a_dataset_that_reads_as_a_named_datatype_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    for (fixture, at, bit, object) in [
        (
            "keras2/full.h5",
            71416,
            2,
            "/optimizer_weights/Adam/v/out/kernel:0",
        ),
        ("keras3/model.weights.h5", 55704, 6, "/optimizer/vars/18"),
    ] {
        let p = flipped(t.path(), fixture, &[(at, bit)]);
        for cmd in ["verify", "inspect"] {
            let o = ckptconv([Path::new(cmd), &p]);
            assert_clean_failure(&o, &[object, "named (committed) datatype"]);
        }
        let out = t.path().join("o.safetensors");
        let o = ckptconv([Path::new("convert"), &p, Path::new("-o"), &out]);
        assert_clean_failure(&o, &[object]);
        assert!(!out.exists());
    }
}

/// A dataspace whose dimension exceeds its maximum (libhdf5 1.14 refuses it: "dataspace
/// dim 0 size of 140 is greater than maxdim size of 12"; 1.10 reads it, past the
/// dataset's bytes), and one whose dimensions and maxima both grew past what the
/// contiguous storage holds: both are errors naming the dataset, not a larger tensor.
#[test]
fn a_shape_larger_than_its_storage_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    // The tester's eight flips of testdata/keras2/weights.h5 (one of them turns
    // embeddings' first dimension 12 into 140).
    let p = flipped(
        t.path(),
        "keras2/weights.h5",
        &[
            (24778, 4),
            (5202, 5),
            (29377, 4),
            (29657, 7),
            (4704, 4),
            (16456, 7),
            (6826, 4),
            (20180, 3),
        ],
    );
    for cmd in ["verify", "inspect"] {
        let o = ckptconv([Path::new(cmd), &p]);
        assert_clean_failure(&o, &["embed/embed/embeddings:0", "at most 12"]);
    }
    // Dimensions and maxima both 12 → 140, over contiguous storage of 12 × 4 floats.
    let p = t.path().join("grown.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        let data: Vec<f32> = (0..48).map(|x| x as f32).collect();
        f.new_dataset::<f32>()
            .shape([12, 4])
            .create("w")
            .unwrap()
            .write_raw(&data)
            .unwrap();
        f.new_dataset::<f32>()
            .shape([1024])
            .create("after")
            .unwrap()
            .write_raw(&vec![7.0f32; 1024])
            .unwrap();
    }
    let mut b = fs::read(&p).unwrap();
    let dims: Vec<u8> = [12u64, 4].iter().flat_map(|d| d.to_le_bytes()).collect();
    let grown: Vec<u8> = [140u64, 4].iter().flat_map(|d| d.to_le_bytes()).collect();
    let mut patched = 0;
    let mut i = 0;
    while i + dims.len() <= b.len() {
        if b[i..i + dims.len()] == dims[..] {
            b[i..i + dims.len()].copy_from_slice(&grown);
            patched += 1;
            i += dims.len();
        } else {
            i += 1;
        }
    }
    assert_eq!(patched, 2, "dims and maxdims of /w");
    fs::write(&p, &b).unwrap();
    for cmd in ["verify", "inspect"] {
        let o = ckptconv([Path::new(cmd), &p]);
        assert_clean_failure(&o, &["grown.h5", "\"w\"", "the file stores 192"]);
    }
}
