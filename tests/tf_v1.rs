//! TF1 V1 checkpoints (TensorFlow's tensor-slice tables): the fixtures TensorFlow wrote
//! (testdata/tf/v1_*, by testdata/generate_tf_v1.py) read bit-exactly against what
//! TensorFlow read back, through every spelling of their path; and V1 files built by hand
//! — every TensorProto form TensorFlow's reader accepts, and corrupt, lying and hostile
//! ones — which must be read as TensorFlow reads them or refused with exit 1 and a message
//! naming the file, never a panic or an allocation the file does not justify.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ckptconv::formats::tf::coding::get_varint64;
use ckptconv::formats::tf::slice::{encode_slice_key, Extent};
use ckptconv::formats::tf::table::{TableBuilder, TableOptions};
use ckptconv::formats::tf::v1::{self, V1Checkpoint};
use ckptconv::pb::{
    tensor_shape_proto::Dim, tensor_slice_proto::extent::HasLength,
    tensor_slice_proto::Extent as PExtent, SavedSlice, SavedSliceMeta, SavedTensorSliceMeta,
    SavedTensorSlices, TensorProto, TensorShapeProto, TensorSliceProto, VersionDef,
};
use ckptconv::tensor::TensorSource;
use ckptconv::{formats, Format, TensorData};
use prost::Message;
use serde_json::Value;

/// The error opening `path` gives.
fn open_err(path: &Path) -> String {
    match formats::open(path) {
        Ok(_) => panic!("{}: opened", path.display()),
        Err(e) => e.to_string(),
    }
}

fn fixture(name: &str) -> PathBuf {
    common::testdata().join("tf").join(name)
}

fn expected(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap()
}

/// Open `path`, and check every tensor against the fixture's expected.json.
fn check_path(path: &Path, exp: &Value) {
    let ctx = path.display().to_string();
    let src = formats::open(path).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(src.format(), Format::TfCheckpointV1, "{ctx}");
    let vars = exp["variables"].as_array().unwrap();
    let names: Vec<&str> = src.tensors().iter().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, want, "{ctx}: names, in TensorFlow's order");
    for v in vars {
        common::check_tensor(src.as_ref(), v, &ctx);
    }
    let errs = src.verify();
    assert!(errs.is_empty(), "{ctx}: verify: {errs:?}");
}

#[test]
fn every_dtype_tensorflow_saves_in_v1() {
    let dir = fixture("v1_dtypes");
    let exp = expected(&dir);
    for p in [
        dir.clone(),
        dir.join("checkpoint"),
        dir.join("model.ckpt"),
        dir.join("model.ckpt.meta"),
    ] {
        check_path(&p, &exp);
    }
    let src = formats::open(&dir.join("model.ckpt")).unwrap();
    // Its .meta graph is read beside it, and counts among its files.
    assert!(src.tf1_graph().is_some());
    assert!(src.files().contains(&dir.join("model.ckpt.meta")));
    // The dtypes that tf.train.load_checkpoint(...).get_tensor refuses in V1 files were
    // recorded from RestoreV2: the generator says which.
    let restored: Vec<&str> = exp["variables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["reader"] == "RestoreV2")
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        restored,
        [
            "dtypes/complex128",
            "dtypes/complex64",
            "dtypes/float16",
            "dtypes/uint16"
        ]
    );
}

#[test]
fn packed_floats_are_borrowed_from_the_map() {
    let src = formats::open(&fixture("v1_dtypes/model.ckpt")).unwrap();
    for name in ["net/dense/kernel", "dtypes/float64", "dtypes/complex128"] {
        let i = src.find(name).unwrap();
        assert!(src.read(i).unwrap().is_borrowed(), "{name}");
    }
    // Varint fields are decoded.
    let i = src.find("dtypes/int32").unwrap();
    assert!(!src.read(i).unwrap().is_borrowed());
}

#[test]
fn partitioned_variables_are_reassembled() {
    let dir = fixture("v1_partitioned");
    let exp = expected(&dir);
    for p in [dir.clone(), dir.join("checkpoint"), dir.join("model.ckpt")] {
        check_path(&p, &exp);
    }
    let src = formats::open(&dir).unwrap();
    let emb = &src.tensors()[src.find("emb/embeddings").unwrap()];
    assert_eq!(emb.slices, 3);
    assert_eq!(src.tensors()[src.find("plain").unwrap()].slices, 0);
}

#[test]
fn sharded_checkpoint_through_every_spelling() {
    let dir = fixture("v1_sharded");
    let exp = expected(&dir);
    let mut paths = vec![
        dir.clone(),
        dir.join("checkpoint"),
        dir.join("model.ckpt"),
        dir.join("model.ckpt-?????-of-00002"),
        dir.join("model.ckpt-*"),
    ];
    for f in exp["files"].as_array().unwrap() {
        paths.push(dir.join(f.as_str().unwrap()));
    }
    for p in &paths {
        check_path(p, &exp);
    }
    let src = formats::open(&dir).unwrap();
    assert_eq!(src.files().len(), 2);
    let spread = &src.tensors()[src.find("spread/emb").unwrap()];
    assert_eq!(spread.slices, 3);
    assert_eq!(spread.shard, None, "its slices lie in both shards");
    // The CLI says which format it read.
    let o = common::ckptconv([Path::new("inspect"), Path::new("--json"), &dir]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let doc: Value = serde_json::from_str(&common::stdout(&o)).unwrap();
    assert_eq!(doc["format"], "tf-checkpoint-v1");
}

#[test]
fn copied_directories_and_serving_style_names() {
    let t = tempfile::tempdir().unwrap();
    // A copied run directory: its state file names the original's absolute pattern, and
    // the copy reads its own shards.
    let copy = t.path().join("copy");
    common::copy_dir(&fixture("v1_sharded"), &copy);
    let exp = expected(&copy);
    check_path(&copy, &exp);
    let src = formats::open(&copy).unwrap();
    assert!(src.files().iter().all(|f| f.starts_with(&copy)));
    // No state file: the directory's one V1 checkpoint.
    fs::remove_file(copy.join("checkpoint")).unwrap();
    check_path(&copy, &exp);
    // TensorFlow Serving's export-00000-of-00001 naming: by common name and pattern.
    let serving = t.path().join("serving");
    fs::create_dir(&serving).unwrap();
    for k in 0..2 {
        fs::copy(
            copy.join(format!("model.ckpt-{k:05}-of-00002")),
            serving.join(format!("export-{k:05}-of-00002")),
        )
        .unwrap();
    }
    for p in [
        "export",
        "export-?????-of-00002",
        "export-00001-of-00002",
        "",
    ] {
        check_path(&serving.join(p), &exp);
    }
    // A state file naming a V1 single file, relative.
    let single = t.path().join("single");
    fs::create_dir(&single).unwrap();
    fs::copy(fixture("v1_dtypes/model.ckpt"), single.join("v1.ckpt")).unwrap();
    fs::write(
        single.join("checkpoint"),
        "model_checkpoint_path: \"v1.ckpt\"\nall_model_checkpoint_paths: \"v1.ckpt\"\n",
    )
    .unwrap();
    check_path(&single, &expected(&fixture("v1_dtypes")));
}

/// `model.ckpt.index` (or a `.data-…` shard name) typed by V2 habit, when no such file
/// exists but the V1 checkpoint `model.ckpt` is right beside it, reads that checkpoint;
/// and a `.meta` whose checkpoint is absent says that it looked for both forms.
#[test]
fn v2_spellings_of_a_v1_checkpoint() {
    for (fixture_name, v2) in [
        ("v1_partitioned", "model.ckpt.index"),
        ("v1_dtypes", "model.ckpt.index"),
        ("v1_dtypes", "model.ckpt.data-00000-of-00001"),
        ("v1_sharded", "model.ckpt.index"),
    ] {
        let dir = fixture(fixture_name);
        assert!(!dir.join(v2).exists());
        check_path(&dir.join(v2), &expected(&dir));
    }
    let t = tempfile::tempdir().unwrap();
    let meta = t.path().join("model.ckpt.meta");
    fs::copy(fixture("v1_dtypes/model.ckpt.meta"), &meta).unwrap();
    let o = common::ckptconv([Path::new("inspect"), &meta]);
    let err = common::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let v1 = t.path().join("model.ckpt");
    for needle in [
        format!("{}.index", v1.display()),
        format!("a V1 checkpoint {}", v1.display()),
    ] {
        assert!(err.contains(&needle), "{needle:?} in {err}");
    }
    // Neither form there: both named.
    let e = open_err(&t.path().join("gone.ckpt.index"));
    assert!(
        e.contains("gone.ckpt.index") && e.contains("a V1 checkpoint") && e.contains("gone.ckpt "),
        "{e}"
    );
}

#[test]
fn incomplete_and_ambiguous_checkpoints_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    fs::copy(
        fixture("v1_sharded/model.ckpt-00000-of-00002"),
        dir.join("m-00000-of-00002"),
    )
    .unwrap();
    // One shard of two: every spelling says which is missing.
    for p in ["m", "m-00000-of-00002", "m-?????-of-00002", ""] {
        let e = open_err(&dir.join(p));
        assert!(
            e.contains("m-00001-of-00002") && e.contains("does not exist"),
            "{p}: {e}"
        );
    }
    // Two checkpoints in one directory and no state file to choose.
    fs::copy(
        fixture("v1_sharded/model.ckpt-00001-of-00002"),
        dir.join("m-00001-of-00002"),
    )
    .unwrap();
    fs::copy(fixture("v1_dtypes/model.ckpt"), dir.join("other.ckpt")).unwrap();
    let e = open_err(dir);
    assert!(e.contains("2 V1 checkpoints"), "{e}");
    // A state file naming something that exists in neither format.
    fs::write(dir.join("checkpoint"), "model_checkpoint_path: \"gone\"\n").unwrap();
    let e = open_err(dir);
    assert!(e.contains("neither") && e.contains("gone.index"), "{e}");
}

// ------------------------------------------------------------------ V1 files by hand

fn extents(ext: &[(i64, i64)]) -> Vec<Extent> {
    ext.iter()
        .map(|&(start, length)| Extent { start, length })
        .collect()
}

fn slice_proto(ext: &[(i64, i64)]) -> TensorSliceProto {
    TensorSliceProto {
        extent: ext
            .iter()
            .map(|&(start, len)| PExtent {
                start,
                has_length: (len >= 0).then_some(HasLength::Length(len)),
            })
            .collect(),
    }
}

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

/// A V1 file under construction: the meta, and the data entries by key.
#[derive(Default)]
struct V1File {
    meta: Vec<SavedSliceMeta>,
    versions: Option<VersionDef>,
    data: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl V1File {
    /// A tensor with its slices (`(start, length)` per dimension, length −1 = full) and
    /// each slice's TensorProto.
    fn tensor(
        mut self,
        name: &str,
        dtype: i32,
        dims: &[i64],
        slices: Vec<(&[(i64, i64)], TensorProto)>,
    ) -> Self {
        let mut meta = SavedSliceMeta {
            name: name.into(),
            shape: Some(shape(dims)),
            r#type: dtype,
            slice: vec![],
        };
        for (ext, tp) in slices {
            meta.slice.push(slice_proto(ext));
            let value = SavedTensorSlices {
                meta: None,
                data: Some(SavedSlice {
                    name: name.into(),
                    slice: Some(slice_proto(ext)),
                    data: Some(tp),
                }),
            };
            self.data.insert(
                encode_slice_key(name.as_bytes(), &extents(ext)),
                value.encode_to_vec(),
            );
        }
        self.meta.push(meta);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let meta = SavedTensorSlices {
            meta: Some(SavedTensorSliceMeta {
                tensor: self.meta.clone(),
                versions: self.versions.clone().or(Some(VersionDef {
                    producer: 1,
                    min_consumer: 0,
                    bad_consumers: vec![],
                })),
            }),
            data: None,
        };
        let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
        b.add(b"", &meta.encode_to_vec()).unwrap();
        for (k, v) in &self.data {
            b.add(k, v).unwrap();
        }
        b.finish().unwrap()
    }

    fn write(&self, path: &Path) -> PathBuf {
        fs::write(path, self.bytes()).unwrap();
        path.to_path_buf()
    }
}

const FULL: &[(i64, i64)] = &[(0, -1)];
const FULL2: &[(i64, i64)] = &[(0, -1), (0, -1)];

fn floats(v: &[f32]) -> TensorProto {
    TensorProto {
        float_val: v.to_vec(),
        ..Default::default()
    }
}

fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

fn read_bytes(src: &dyn TensorSource, name: &str) -> ckptconv::Result<Vec<u8>> {
    let i = src
        .find(name)
        .unwrap_or_else(|| panic!("{name} not listed"));
    match src.read(i)? {
        TensorData::Bytes(b) => Ok(b.into_owned()),
        TensorData::Strings(_) => panic!("{name}: strings"),
    }
}

#[test]
fn every_tensorproto_form_is_read_as_tensorflow_reads_it() {
    let t = tempfile::tempdir().unwrap();
    let path = V1File::default()
        // uint32 / uint64: read by TensorFlow's V1 reader (uint32_val, uint64_val), never
        // written by it.
        .tensor(
            "u32",
            22,
            &[2],
            vec![(
                FULL,
                TensorProto {
                    uint32_val: vec![7, u32::MAX],
                    ..Default::default()
                },
            )],
        )
        .tensor(
            "u64",
            23,
            &[1],
            vec![(
                FULL,
                TensorProto {
                    uint64_val: vec![u64::MAX - 1],
                    ..Default::default()
                },
            )],
        )
        // int_val narrowed as TensorFlow's cast does: 300 as uint8 is 44, -1 as uint16 is 65535.
        .tensor(
            "u8",
            4,
            &[2],
            vec![(
                FULL,
                TensorProto {
                    int_val: vec![300, -1],
                    ..Default::default()
                },
            )],
        )
        .tensor(
            "u16",
            17,
            &[1],
            vec![(
                FULL,
                TensorProto {
                    int_val: vec![-1],
                    ..Default::default()
                },
            )],
        )
        // half_val: the low 16 bits of each int32.
        .tensor(
            "f16",
            19,
            &[2],
            vec![(
                FULL,
                TensorProto {
                    half_val: vec![0x3c00, 0x1_bc00],
                    ..Default::default()
                },
            )],
        )
        // tensor_content, the typed field being empty (TensorFlow's reader ignores it).
        .tensor(
            "raw",
            1,
            &[2],
            vec![(
                FULL,
                TensorProto {
                    tensor_content: le(&[1.5f32, -0.0], f32::to_le_bytes),
                    ..Default::default()
                },
            )],
        )
        // A string tensor sliced in two, and a scalar.
        .tensor(
            "s",
            7,
            &[3],
            vec![
                (
                    &[(0, 1)],
                    TensorProto {
                        string_val: vec![b"\xff".to_vec()],
                        ..Default::default()
                    },
                ),
                (
                    &[(1, 2)],
                    TensorProto {
                        string_val: vec![vec![], b"two".to_vec()],
                        ..Default::default()
                    },
                ),
            ],
        )
        .tensor("scalar", 1, &[], vec![(&[], floats(&[2.5]))])
        // A [2, 3] in column slices, one in tensor_content.
        .tensor(
            "cols",
            1,
            &[2, 3],
            vec![
                (&[(0, -1), (0, 1)], floats(&[1., 4.])),
                (
                    &[(0, -1), (1, 2)],
                    TensorProto {
                        tensor_content: le(&[2f32, 3., 5., 6.], f32::to_le_bytes),
                        ..Default::default()
                    },
                ),
            ],
        )
        .write(&t.path().join("forms.ckpt"));
    let src = formats::open(&path).unwrap();
    assert!(src.verify().is_empty(), "{:?}", src.verify());
    assert_eq!(
        read_bytes(src.as_ref(), "u32").unwrap(),
        le(&[7u32, u32::MAX], u32::to_le_bytes)
    );
    assert_eq!(
        read_bytes(src.as_ref(), "u64").unwrap(),
        (u64::MAX - 1).to_le_bytes()
    );
    assert_eq!(read_bytes(src.as_ref(), "u8").unwrap(), [44, 255]);
    assert_eq!(read_bytes(src.as_ref(), "u16").unwrap(), [255, 255]);
    assert_eq!(
        read_bytes(src.as_ref(), "f16").unwrap(),
        [0x00, 0x3c, 0x00, 0xbc]
    );
    assert_eq!(
        read_bytes(src.as_ref(), "raw").unwrap(),
        le(&[1.5f32, -0.0], f32::to_le_bytes)
    );
    assert!(src.read(src.find("raw").unwrap()).unwrap().is_borrowed());
    assert_eq!(
        read_bytes(src.as_ref(), "scalar").unwrap(),
        2.5f32.to_le_bytes()
    );
    assert_eq!(
        read_bytes(src.as_ref(), "cols").unwrap(),
        le(&[1f32, 2., 3., 4., 5., 6.], f32::to_le_bytes)
    );
    match src.read(src.find("s").unwrap()).unwrap() {
        TensorData::Strings(s) => assert_eq!(s, vec![b"\xff".to_vec(), vec![], b"two".to_vec()]),
        other => panic!("{other:?}"),
    }
}

/// `verify`, `inspect` and `convert` of `path`: each either succeeds or exits 1 with one
/// line that names the file, never a panic or a signal, and never leaves an output behind
/// after a failure. Returns whether `verify` failed.
fn cli_fails_cleanly(path: &Path, needles: &[&str]) -> bool {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o.safetensors");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut verify_failed = false;
    for args in [
        vec![PathBuf::from("verify"), path.to_path_buf()],
        vec![PathBuf::from("inspect"), path.to_path_buf()],
        vec![
            PathBuf::from("convert"),
            path.to_path_buf(),
            PathBuf::from("-o"),
            out.clone(),
        ],
    ] {
        let o = common::ckptconv(&args);
        let all = common::stdout(&o) + &common::stderr(&o);
        assert!(!all.contains("panicked"), "{name} {:?}: {all}", args[0]);
        match o.status.code() {
            Some(0) => assert!(
                args[0] != Path::new("verify") || needles.is_empty(),
                "{name}: verify passed: {all}"
            ),
            Some(1) => {
                assert!(all.contains(&name), "{name}: {all}");
                if args[0] == Path::new("verify") {
                    verify_failed = true;
                    for n in needles {
                        assert!(all.contains(n), "{name}: want {n:?} in {all}");
                    }
                }
                if args[0] == Path::new("convert") {
                    assert!(!out.exists(), "{name}: output left behind");
                }
            }
            other => panic!("{name} {:?}: exit {other:?}: {all}", args[0]),
        }
    }
    verify_failed
}

fn one_float_tensor() -> V1File {
    V1File::default().tensor("w", 1, &[2, 2], vec![(FULL2, floats(&[1., 2., 3., 4.]))])
}

#[test]
fn hostile_files_fail_cleanly_naming_file_and_field() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        // Two slices sharing rows 1..2.
        (
            V1File::default()
                .tensor(
                    "w",
                    1,
                    &[3],
                    vec![
                        (&[(0, 2)], floats(&[1., 2.])),
                        (&[(1, 2)], floats(&[3., 4.])),
                    ],
                )
                .write(&p("overlap.ckpt")),
            vec!["\"w\"", "slices [0,2] and [1,2] overlap"],
        ),
        // Slices that leave a gap.
        (
            V1File::default()
                .tensor("w", 1, &[4], vec![(&[(0, 2)], floats(&[1., 2.]))])
                .write(&p("gap.ckpt")),
            vec!["slices hold 2 elements"],
        ),
        // A slice outside its tensor.
        (
            V1File::default()
                .tensor("w", 1, &[2], vec![(&[(1, 2)], floats(&[1., 2.]))])
                .write(&p("outside.ckpt")),
            vec!["outside dimension 0"],
        ),
        // A meta claiming a 2^40-element tensor whose data holds two floats: refused
        // when read, by the count, before anything is allocated.
        (
            V1File::default()
                .tensor("w", 1, &[1 << 40], vec![(FULL, floats(&[1., 2.]))])
                .write(&p("huge.ckpt")),
            vec!["2 values in float_val where the slice has 1099511627776 elements"],
        ),
        // The same, sliced: the full tensor is never allocated.
        (
            V1File::default()
                .tensor(
                    "w",
                    1,
                    &[1 << 40],
                    vec![
                        (&[(0, 1)], floats(&[1.])),
                        (&[(1, (1 << 40) - 1)], floats(&[2.])),
                    ],
                )
                .write(&p("huge_sliced.ckpt")),
            vec!["1 values in float_val where the slice has 1099511627775 elements"],
        ),
        // Shape dimensions that overflow.
        (
            V1File::default()
                .tensor("w", 1, &[1 << 62, 1 << 62], vec![(FULL2, floats(&[]))])
                .write(&p("overflow.ckpt")),
            vec!["slice element count overflows"],
        ),
        // Fewer values than elements: no fill-with-the-last-value in V1 files.
        (
            V1File::default()
                .tensor("w", 1, &[3], vec![(FULL, floats(&[1.]))])
                .write(&p("short.ckpt")),
            vec!["1 values in float_val where the slice has 3 elements"],
        ),
        // tensor_content of the wrong size.
        (
            V1File::default()
                .tensor(
                    "w",
                    9,
                    &[2],
                    vec![(
                        FULL,
                        TensorProto {
                            tensor_content: vec![0; 15],
                            ..Default::default()
                        },
                    )],
                )
                .write(&p("content.ckpt")),
            vec!["tensor_content holds 15 bytes"],
        ),
        // A slice listed in the meta with no entry.
        (
            {
                let mut f = one_float_tensor();
                f.data.clear();
                f.write(&p("no_entry.ckpt"))
            },
            vec!["no entry"],
        ),
        // A data entry whose SavedSlice length runs past its value.
        (
            {
                let mut f = one_float_tensor();
                let k = f.data.keys().next().unwrap().clone();
                f.data.insert(k, vec![0x12, 0x40, 0x1a, 0x02, 0x2a]);
                f.write(&p("lying_length.ckpt"))
            },
            vec!["field 2 of 64 bytes runs past the end"],
        ),
        // A packed float_val whose length is no whole number of floats.
        (
            {
                let mut f = one_float_tensor();
                let k = f.data.keys().next().unwrap().clone();
                f.data
                    .insert(k, vec![0x12, 0x05, 0x1a, 0x03, 0x2a, 0x01, 0x00]);
                f.write(&p("ragged.ckpt"))
            },
            vec!["not a whole number of 4-byte values"],
        ),
        // dtypes without a V1 encoding, and unknown ones.
        (
            V1File::default()
                .tensor("w", 14, &[1], vec![(FULL, TensorProto::default())])
                .write(&p("bf16.ckpt")),
            vec!["unsupported", "bfloat16"],
        ),
        (
            V1File::default()
                .tensor("w", 77, &[1], vec![(FULL, TensorProto::default())])
                .write(&p("dtype77.ckpt")),
            vec!["unknown dtype 77"],
        ),
        // A file that needs a newer reader.
        (
            {
                let mut f = one_float_tensor();
                f.versions = Some(VersionDef {
                    producer: 3,
                    min_consumer: 2,
                    bad_consumers: vec![],
                });
                f.write(&p("newer.ckpt"))
            },
            vec!["needs a reader of version 2"],
        ),
        // A V2 index without its .index name.
        (
            {
                let dst = p("v2_index_renamed");
                fs::copy(fixture("tf1_saver/model.ckpt.index"), &dst).unwrap();
                dst
            },
            vec!["V2 checkpoint", "BundleHeaderProto"],
        ),
        // A table whose first key is not "".
        (
            {
                let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
                b.add(b"a", b"").unwrap();
                fs::write(p("no_meta.ckpt"), b.finish().unwrap()).unwrap();
                p("no_meta.ckpt")
            },
            vec!["not \"\""],
        ),
    ];
    for (path, needles) in &cases {
        assert!(
            cli_fails_cleanly(path, needles),
            "{}: verify passed",
            path.display()
        );
    }
}

#[test]
fn shards_must_agree_on_shape_and_dtype() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    V1File::default()
        .tensor("w", 1, &[4], vec![(&[(0, 2)], floats(&[1., 2.]))])
        .write(&dir.join("m-00000-of-00002"));
    V1File::default()
        .tensor("w", 1, &[5], vec![(&[(2, 2)], floats(&[3., 4.]))])
        .write(&dir.join("m-00001-of-00002"));
    let e = open_err(&dir.join("m"));
    assert!(e.contains("shape [5] here but [4] in"), "{e}");
    V1File::default()
        .tensor(
            "w",
            2,
            &[4],
            vec![(
                &[(2, 2)],
                TensorProto {
                    double_val: vec![3., 4.],
                    ..Default::default()
                },
            )],
        )
        .write(&dir.join("m-00001-of-00002"));
    let e = open_err(&dir.join("m"));
    assert!(e.contains("dtype 2 here but 1 in"), "{e}");
    // Agreeing shards: a tensor assembled from both.
    V1File::default()
        .tensor("w", 1, &[4], vec![(&[(2, 2)], floats(&[3., 4.]))])
        .write(&dir.join("m-00001-of-00002"));
    let src = formats::open(&dir.join("m")).unwrap();
    assert_eq!(
        read_bytes(src.as_ref(), "w").unwrap(),
        le(&[1f32, 2., 3., 4.], f32::to_le_bytes)
    );
}

#[test]
fn truncations_and_bit_flips_never_panic() {
    let good = fs::read(fixture("v1_dtypes/model.ckpt")).unwrap();
    let name = Path::new("model.ckpt");
    // Every single-bit flip, in memory: a problem is found (at open or by verify) or the
    // file still reads; never a panic. Only the footer (its padding, and handle bits that
    // still point at a valid block) and the metaindex block, which TensorFlow does not
    // read either (an empty block: one restart, the restart count, a 5-byte trailer), may
    // change unnoticed.
    let footer = good.len() - 48;
    let metaindex = get_varint64(&good[footer..]).unwrap().0 as usize;
    let unread = |pos: usize| pos >= footer || (metaindex..metaindex + 13).contains(&pos);
    for pos in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[pos] ^= 1 << bit;
            let found = match V1Checkpoint::from_bytes(name, bad) {
                Err(_) => true,
                Ok(c) => !c.verify().is_empty(),
            };
            assert!(found || unread(pos), "flip of bit {bit} at {pos} unnoticed");
        }
    }
    for len in 0..good.len() {
        let _ = V1Checkpoint::from_bytes(name, good[..len].to_vec()).map(|c| c.verify());
    }
    // Through the CLI: truncated copies, and flips in data blocks, exit 1.
    let t = tempfile::tempdir().unwrap();
    for (i, len) in [0, 1, 47, 48, 100, good.len() / 2, good.len() - 1]
        .into_iter()
        .enumerate()
    {
        let p = t.path().join(format!("truncated{i}.ckpt"));
        fs::write(&p, &good[..len]).unwrap();
        assert!(cli_fails_cleanly(&p, &[]), "{}", p.display());
    }
    for (i, pos) in [3, 40, 400, 1500, good.len() - 200].into_iter().enumerate() {
        let mut bad = good.clone();
        bad[pos] ^= 0x10;
        let p = t.path().join(format!("flipped{i}.ckpt"));
        fs::write(&p, &bad).unwrap();
        assert!(cli_fails_cleanly(&p, &[]), "{}", p.display());
    }
}

#[test]
fn converted_to_every_format_and_back_bit_exactly() {
    let t = tempfile::tempdir().unwrap();
    for fx in ["v1_dtypes", "v1_partitioned", "v1_sharded"] {
        let dir = fixture(fx);
        let exp = expected(&dir);
        // (A Keras .h5 needs Keras layers, which a V1 checkpoint does not record.)
        for (out, layout) in [
            ("ck/model", "keep"),
            ("x.safetensors", ""),
            ("x.h5", "flat"),
        ] {
            let out = t.path().join(fx).join(out);
            let mut args = vec![
                PathBuf::from("convert"),
                dir.clone(),
                "-o".into(),
                out.clone(),
                "--no-progress".into(),
                "--json".into(),
            ];
            if !layout.is_empty() {
                args.extend(["--layout".into(), layout.into()]);
            }
            let o = common::ckptconv(&args);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{fx} -> {}: {}",
                out.display(),
                common::stderr(&o)
            );
            // What the format cannot hold is skipped, and said so: strings and complex128
            // in safetensors, strings with NUL bytes in HDF5.
            let doc: Value =
                serde_json::from_str(common::stdout(&o).lines().last().unwrap()).unwrap();
            let skipped: Vec<&str> = doc["skipped"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap())
                .collect();
            let back = formats::open(&out).unwrap();
            for v in exp["variables"].as_array().unwrap() {
                let name = v["name"].as_str().unwrap();
                if skipped.contains(&name) {
                    assert!(
                        !out.ends_with("model"),
                        "{fx}: {name} skipped in a checkpoint"
                    );
                    continue;
                }
                let i = back
                    .tensors()
                    .iter()
                    .position(|t| t.variable == name || t.name == name);
                let Some(i) = i else {
                    panic!("{fx} -> {}: {name} missing", out.display())
                };
                let vv = serde_json::json!({
                    "name": back.tensors()[i].name, "dtype": v["dtype"], "shape": v["shape"],
                    "hex": v["hex"], "strings": v["strings"],
                });
                let vv: Value = serde_json::from_value(vv).unwrap();
                let mut vv = vv.as_object().unwrap().clone();
                vv.retain(|_, x| !x.is_null());
                common::check_tensor(back.as_ref(), &Value::Object(vv), fx);
            }
        }
    }
}

#[test]
fn resolve_names_the_files() {
    let dir = fixture("v1_sharded");
    let want = v1::V1Files {
        name: dir.join("model.ckpt"),
        files: vec![
            dir.join("model.ckpt-00000-of-00002"),
            dir.join("model.ckpt-00001-of-00002"),
        ],
    };
    for p in ["", "checkpoint", "model.ckpt", "model.ckpt-00001-of-00002"] {
        assert_eq!(
            v1::resolve(&dir.join(p)).unwrap().as_ref(),
            Some(&want),
            "{p}"
        );
    }
    // Not V1 checkpoints: V2 ones, and files of other kinds.
    for p in [
        "tf/tf1_saver/model.ckpt",
        "tf/tf1_saver",
        "keras2/weights.h5",
    ] {
        assert_eq!(
            v1::resolve(&common::testdata().join(p)).unwrap(),
            None,
            "{p}"
        );
    }
}

/// Writes the V1 inputs of tests/bad/ (replayed by tests/hostile.rs `bad_inputs_replay`):
/// `cargo test --test tf_v1 -- --ignored write_bad_inputs`.
#[test]
#[ignore]
fn write_bad_inputs() {
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    V1File::default()
        .tensor(
            "w",
            1,
            &[3],
            vec![
                (&[(0, 2)], floats(&[1., 2.])),
                (&[(1, 2)], floats(&[3., 4.])),
            ],
        )
        .write(&bad.join("v1_overlapping_slices.ckpt"));
    V1File::default()
        .tensor("w", 1, &[1 << 62, 1 << 62], vec![(FULL2, floats(&[]))])
        .write(&bad.join("v1_overflowing_shape.ckpt"));
    let good = fs::read(fixture("v1_partitioned/model.ckpt")).unwrap();
    fs::write(bad.join("v1_truncated.ckpt"), &good[..good.len() / 2]).unwrap();
    let mut flipped = good.clone();
    flipped[20] ^= 0x04;
    fs::write(bad.join("v1_block_checksum.ckpt"), &flipped).unwrap();
}

#[test]
fn shards_given_one_by_one_are_one_input() {
    // As a shell glob gives them: converted once, named after the checkpoint.
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("in");
    fs::create_dir(&dir).unwrap();
    for k in 0..2 {
        fs::copy(
            fixture(&format!("v1_sharded/model.ckpt-{k:05}-of-00002")),
            dir.join(format!("export-{k:05}-of-00002")),
        )
        .unwrap();
    }
    let out = t.path().join("out");
    let o = common::ckptconv([
        Path::new("convert"),
        &dir.join("export-00000-of-00002"),
        &dir.join("export-00001-of-00002"),
        Path::new("--out-dir"),
        &out,
        Path::new("--to"),
        Path::new("safetensors"),
        Path::new("--no-progress"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let made: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(made, ["export.safetensors"]);
}
