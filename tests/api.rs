//! The public API, used as a library user would: only items at the crate root
//! (`ckptconv::open`, `Source`, `convert`, `ConvertOptions`, `Transform`, `Layout`,
//! `Cancel`, `Error`, `InputErrorKind`), never the `internals` modules.
// Options are set field by field, as users must: `ConvertOptions` is #[non_exhaustive]
// outside the tests' `internals` build.
#![allow(clippy::field_reassign_with_default)]

mod common;

use std::fs;

use ckptconv::{
    Cancel, ConvertOptions, DType, Error, Format, InputErrorKind, Layout, OutputFormat,
    ReadOptions, TensorData, Transform,
};

fn keras_h5() -> std::path::PathBuf {
    common::testdata().join("keras2/weights.h5")
}

/// Every byte of every tensor of `a` equals `b`'s tensor of the same variable name.
fn same_tensors(a: &ckptconv::Source, b: &ckptconv::Source) {
    assert_eq!(a.tensors().len(), b.tensors().len());
    for (i, t) in a.tensors().iter().enumerate() {
        let j = b
            .find(&t.variable)
            .unwrap_or_else(|| panic!("{} missing", t.variable));
        assert_eq!(a.read(i).unwrap(), b.read(j).unwrap(), "{}", t.variable);
        assert_eq!(b.tensors()[j].shape, t.shape);
        assert_eq!(b.tensors()[j].dtype, t.dtype);
    }
}

#[test]
fn open_read_and_convert_round_trip_bit_exact() {
    let t = tempfile::tempdir().unwrap();
    let src = ckptconv::open(keras_h5()).unwrap();
    assert_eq!(src.format(), Format::KerasH5);
    let model = src.model();
    assert!(model.layers.iter().any(|l| l.name == "conv"));
    let mut opts = ConvertOptions::default();
    opts.to = Some(OutputFormat::Ckpt);
    opts.layout = Some(Layout::Tf1);
    let ck = t.path().join("ck/model");
    let r = ckptconv::convert(keras_h5(), &ck, &opts).unwrap();
    assert_eq!(r.format, OutputFormat::Ckpt);
    assert_eq!(r.tensors, src.tensors().len());
    let back = ckptconv::open(&ck).unwrap();
    assert_eq!(back.format(), Format::TfCheckpoint);
    same_tensors(&src, &back);
    assert!(back.verify().is_empty());
    // Out of range is an error, not a panic.
    assert!(matches!(back.read(10_000), Err(Error::Usage(_))));
}

#[test]
fn a_typed_transform_selects_renames_and_casts() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x.safetensors");
    let mut opts = ConvertOptions::default();
    opts.transform = Transform::default()
        .include("conv/*")
        .unwrap()
        .rename("^conv/", "encoder/")
        .unwrap()
        .cast(DType::Float16)
        .unwrap();
    let r = ckptconv::convert(keras_h5(), &out, &opts).unwrap();
    assert_eq!(r.tensors, 2);
    let got = ckptconv::open(&out).unwrap();
    let mut names: Vec<&str> = got.tensors().iter().map(|t| t.variable.as_str()).collect();
    names.sort();
    assert_eq!(names, ["encoder/bias", "encoder/kernel"]);
    assert!(got.tensors().iter().all(|t| t.dtype == DType::Float16));
    // Bad patterns are usage errors, found when the transform is built.
    assert!(matches!(
        Transform::default().include("["),
        Err(Error::Usage(_))
    ));
    assert!(matches!(
        Transform::default().cast(DType::Int32),
        Err(Error::Usage(_))
    ));
}

#[test]
fn a_layout_for_another_format_is_a_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let mut opts = ConvertOptions::default();
    opts.layout = Some(Layout::Tf1);
    let e = ckptconv::convert(keras_h5(), t.path().join("x.h5"), &opts).unwrap_err();
    assert!(matches!(e, Error::Usage(_)), "{e}");
    assert!(e.to_string().contains("tf1"), "{e}");
    assert_eq!(Layout::from_name("keras3"), Some(Layout::Keras3));
    assert_eq!(Layout::Keras3.name(), "keras3");
}

#[test]
fn a_cancelled_token_stops_the_conversion_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x.safetensors");
    let mut opts = ConvertOptions::default();
    let cancel = Cancel::new();
    opts.cancel = cancel.clone();
    cancel.cancel();
    let e = ckptconv::convert(keras_h5(), &out, &opts).unwrap_err();
    assert!(matches!(e, Error::Interrupted), "{e}");
    assert_eq!(
        fs::read_dir(t.path()).unwrap().count(),
        0,
        "no output, no temp"
    );
    // A fresh token converts.
    opts.cancel = Cancel::new();
    ckptconv::convert(keras_h5(), &out, &opts).unwrap();
    assert!(out.exists());
}

#[test]
fn progress_reaches_a_closure() {
    let t = tempfile::tempdir().unwrap();
    let total = std::cell::Cell::new(0u64);
    let r = ckptconv::convert_with(
        keras_h5(),
        t.path().join("x.safetensors"),
        &ConvertOptions::default(),
        &|n: u64| total.set(total.get() + n),
    )
    .unwrap();
    assert_eq!(total.get(), r.bytes);
}

/// Errors say who is at fault, and input errors carry a kind code can match.
#[test]
fn errors_by_fault() {
    let t = tempfile::tempdir().unwrap();
    // A flipped data byte: a checksum error naming the file and the tensor.
    let dir = t.path().join("ck");
    common::copy_dir(&common::testdata().join("tf/tf2_object"), &dir);
    let data = dir.join("ckpt-2.data-00000-of-00001");
    let intact = fs::read(&data).unwrap();
    // A byte of a variable's (the object graph's would stop the checkpoint opening).
    let kernel = {
        let src = ckptconv::open(dir.join("ckpt-2")).unwrap();
        let i = src
            .find("net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE")
            .unwrap();
        match src.read(i).unwrap() {
            ckptconv::TensorData::Bytes(b) => b.into_owned(),
            other => panic!("{other:?}"),
        }
    };
    let at = intact
        .windows(kernel.len())
        .position(|w| w == kernel.as_slice())
        .unwrap();
    let mut bytes = intact.clone();
    bytes[at + kernel.len() - 1] ^= 0x40;
    fs::write(&data, bytes).unwrap();
    let src = ckptconv::open(dir.join("ckpt-2")).unwrap();
    let errors = src.verify();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e.input_kind() == Some(InputErrorKind::Checksum)),
        "{errors:?}"
    );
    let Error::Input { path, tensor, .. } = &errors[0] else {
        panic!("{:?}", errors[0])
    };
    assert_eq!(path, &data);
    assert!(tensor.is_some());
    // The object graph (written last) names every variable: damaged, nothing opens.
    let mut bytes = intact;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&data, bytes).unwrap();
    let Err(e) = ckptconv::open(dir.join("ckpt-2")) else {
        panic!("opened with a damaged object graph")
    };
    assert_eq!(e.input_kind(), Some(InputErrorKind::Checksum), "{e}");
    let Error::Input { path, tensor, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, &data);
    assert_eq!(tensor.as_deref(), Some("_CHECKPOINTABLE_OBJECT_GRAPH"));
    // Nothing there.
    let e = ckptconv::open(t.path().join("nothing.ckpt")).unwrap_err();
    assert_eq!(e.input_kind(), Some(InputErrorKind::NotFound), "{e}");
    // Over the allocation budget: a limit, not a fault of the file.
    let src = ckptconv::open_with(
        keras_h5(),
        ReadOptions::default()
            .with_mmap(false)
            .with_max_alloc(Some(8)),
    )
    .unwrap();
    let i = src.find("conv/kernel").unwrap();
    assert!(matches!(src.read(i), Err(Error::Limit { .. })));
    // An I/O error prints its cause once: in `source()`, not in `Display` as well.
    let file = t.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let e = ckptconv::convert(
        keras_h5(),
        file.join("x.safetensors"),
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    let cause = std::error::Error::source(&e)
        .expect("the OS error")
        .to_string();
    assert!(!e.to_string().contains(&cause), "{e}");
}

#[test]
fn tensor_data_is_borrowed_from_the_map_when_stored_as_is() {
    let src = ckptconv::open(keras_h5()).unwrap();
    let i = src.find("conv/kernel").unwrap();
    match src.read(i).unwrap() {
        TensorData::Bytes(b) => {
            assert!(matches!(b, std::borrow::Cow::Borrowed(_)));
            assert_eq!(b.len() as u64, src.tensors()[i].byte_len);
        }
        other => panic!("{other:?}"),
    }
}

/// A safetensors header larger than ckptconv parses is a limit when the file holds it, and
/// the file's fault when the file is shorter than it claims.
#[test]
fn a_huge_header_is_a_limit_and_a_lying_one_is_corrupt() {
    let t = tempfile::tempdir().unwrap();
    let n: u64 = (16 << 20) + 8;
    let big = t.path().join("big.safetensors");
    let mut bytes = n.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    bytes.resize(8 + n as usize, b' ');
    fs::write(&big, &bytes).unwrap();
    let e = ckptconv::open(&big).unwrap_err();
    assert!(matches!(e, Error::Limit { .. }), "{e:?}");
    let short = t.path().join("short.safetensors");
    let mut bytes = n.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    fs::write(&short, &bytes).unwrap();
    let e = ckptconv::open(&short).unwrap_err();
    assert_eq!(e.input_kind(), Some(InputErrorKind::Malformed), "{e}");
}
