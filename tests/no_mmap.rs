//! Reading without memory maps (`--no-mmap`, `ReadOptions::with_mmap(false)`) and the
//! allocation budget (`--max-alloc`): the same tensors as through maps, for every format;
//! an input truncated mid-read is an error, not SIGBUS; a tensor over the budget is a
//! clean refusal naming the limit.

mod common;

use std::path::{Path, PathBuf};

use ckptconv::formats::{open_with, ReadOptions};
use ckptconv::TensorData;
use common::{assert_clean_failure, ckptconv, copy_dir, stderr, testdata};

/// Every input of testdata/ that ckptconv reads.
fn inputs() -> Vec<PathBuf> {
    let td = testdata();
    let mut v: Vec<PathBuf> = std::fs::read_dir(td.join("tf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        // A frozen graph's directory holds a graph.pb, not a checkpoint.
        .map(|p| match p.join("graph.pb") {
            g if g.is_file() => g,
            _ => p,
        })
        .collect();
    for f in [
        "keras2/full.h5",
        "keras2/weights.h5",
        "keras2/long_names.h5",
        "keras2/tf_format",
        "keras3/legacy.h5",
        "keras3/model.keras",
        "keras3/model.weights.h5",
        "keras3/sharded.weights.json",
        "h5/mixed.h5",
    ] {
        v.push(td.join(f));
    }
    v.sort();
    v
}

fn bytes_of(d: TensorData<'_>) -> Vec<Vec<u8>> {
    match d {
        TensorData::Bytes(b) => vec![b.into_owned()],
        TensorData::Strings(s) => s,
    }
}

#[test]
fn every_fixture_reads_the_same_with_and_without_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("full.safetensors");
    let o = ckptconv([
        "convert".as_ref(),
        testdata().join("keras2/full.h5").as_os_str(),
        "-o".as_ref(),
        st.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut all = inputs();
    all.push(st);
    let mut tensors = 0;
    for input in &all {
        let mapped = open_with(input, ReadOptions::default()).unwrap();
        let plain = open_with(input, ReadOptions::default().with_mmap(false))
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        assert_eq!(mapped.tensors(), plain.tensors(), "{}", input.display());
        for i in 0..mapped.tensors().len() {
            let a = bytes_of(mapped.read(i).unwrap());
            let b = bytes_of(plain.read(i).unwrap());
            assert!(a == b, "{} tensor {i}: bytes differ", input.display());
            tensors += 1;
        }
        assert!(plain.verify().is_empty(), "{}", input.display());
    }
    assert!(tensors > 100, "only {tensors} tensors compared");
}

fn convert(args: &[&Path]) -> std::process::Output {
    ckptconv(args.iter().map(|p| p.as_os_str()))
}

#[test]
fn cli_no_mmap_writes_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for (input, name) in [
        (testdata().join("keras2/full.h5"), "a.safetensors"),
        (testdata().join("tf/partitioned"), "b.safetensors"),
        (testdata().join("keras2/full.h5"), "d.h5"),
        (testdata().join("keras3/model.keras"), "c.weights.h5"),
    ] {
        let (x, y) = (
            tmp.path().join("x").join(name),
            tmp.path().join("y").join(name),
        );
        let o = convert(&["convert".as_ref(), &input, "-o".as_ref(), &x]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = convert(&[
            "--no-mmap".as_ref(),
            "convert".as_ref(),
            &input,
            "-o".as_ref(),
            &y,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        if name.ends_with(".safetensors") {
            assert_eq!(
                std::fs::read(&x).unwrap(),
                std::fs::read(&y).unwrap(),
                "{name}"
            );
        }
        // HDF5 files carry no timestamps from us, but compare what was read instead of
        // trusting that: both outputs hold the same tensors.
        let (a, b) = (
            open_with(&x, ReadOptions::default()).unwrap(),
            open_with(&y, ReadOptions::default()).unwrap(),
        );
        assert_eq!(a.tensors(), b.tensors());
        for i in 0..a.tensors().len() {
            assert!(bytes_of(a.read(i).unwrap()) == bytes_of(b.read(i).unwrap()));
        }
        let o = ckptconv(
            ["verify", "--no-mmap"]
                .iter()
                .map(|s| s.as_ref())
                .chain([y.as_os_str()]),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

#[test]
fn a_data_file_truncated_mid_read_is_an_error_not_sigbus() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&testdata().join("tf/multi_shard"), &dir);
    let src = open_with(&dir, ReadOptions::default().with_mmap(false)).unwrap();
    // Read one tensor of every shard, so that every data file is open.
    let n = src.tensors().len();
    for i in 0..n {
        src.read(i).unwrap();
    }
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains(".data-") {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(0)
                .unwrap();
        }
    }
    let mut errors = 0;
    for i in 0..n {
        if src.tensors()[i].byte_len == 0 {
            continue;
        }
        let e = src
            .read(i)
            .err()
            .unwrap_or_else(|| panic!("tensor {i} read"));
        let msg = e.to_string();
        // Numeric tensors come through FileBytes, strings through their own reader.
        assert!(
            msg.contains("shorter than when it was opened") || msg.contains("truncated"),
            "{msg}"
        );
        assert!(msg.contains(&src.tensors()[i].name), "{msg}");
        errors += 1;
    }
    assert!(errors > 0);
}

#[test]
fn max_alloc_refuses_a_tensor_over_the_budget_and_passes_one_under_it() {
    let tmp = tempfile::tempdir().unwrap();
    let part = testdata().join("tf/partitioned");
    let out = tmp.path().join("p.safetensors");
    // proj/kernel is 240 bytes, reassembled from two slices.
    let o = convert(&[
        "convert".as_ref(),
        &part,
        "-o".as_ref(),
        &out,
        "--max-alloc".as_ref(),
        "200".as_ref(),
    ]);
    assert_clean_failure(
        &o,
        &[
            "proj/kernel",
            "240 bytes",
            "allocation limit of 200",
            "--max-alloc",
        ],
    );
    assert!(!out.exists());
    let o = convert(&[
        "convert".as_ref(),
        &part,
        "-o".as_ref(),
        &out,
        "--max-alloc".as_ref(),
        "1KiB".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Under --no-mmap every tensor read whole counts, not only reassembled ones.
    let o = ckptconv([
        "--no-mmap".as_ref(),
        "--max-alloc".as_ref(),
        "100".as_ref(),
        "verify".as_ref(),
        testdata().join("keras2/full.h5").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("allocation limit of 100")
            || common::stdout(&o).contains("allocation limit of 100")
    );
    // A budget of nothing is a usage error.
    let o = ckptconv(["verify", "--max-alloc", "0", part.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
