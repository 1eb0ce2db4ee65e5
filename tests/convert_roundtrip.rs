//! Conversions between every format, on every fixture, are bit-exact; a TF checkpoint
//! rewritten with its own keys is byte-identical to TensorFlow's files; outputs are safe.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use ckptconv::convert::{convert, ConvertOptions, OutputFormat};
use ckptconv::formats::tf::object_graph::OBJECT_GRAPH_KEY;
use ckptconv::tensor::TensorSource;
use ckptconv::{formats, DType, TensorData};
use common::{assert_clean_failure, ckptconv};

const FIXTURES: &[&str] = &[
    "tf/tf1_saver",
    "tf/partitioned",
    "tf/multi_shard",
    "tf/tf2_object",
    "tf/saved_model",
    "keras2/weights.h5",
    "keras2/full.h5",
    "keras2/tf_format/weights",
    "keras3/model.weights.h5",
    "keras3/legacy.h5",
    "keras3/model.keras",
    "keras3/sharded.weights.json",
    "h5/mixed.h5",
];

/// Variable name → (dtype, shape, data) of every tensor.
fn contents(src: &dyn TensorSource) -> HashMap<String, (DType, Vec<u64>, TensorData<'static>)> {
    let mut m = HashMap::new();
    for (i, t) in src.tensors().iter().enumerate() {
        let d = match src.read(i).unwrap() {
            TensorData::Bytes(b) => TensorData::Bytes(b.into_owned().into()),
            TensorData::Strings(s) => TensorData::Strings(s),
        };
        m.insert(t.variable.clone(), (t.dtype, t.shape.clone(), d));
    }
    m
}

fn opts(to: OutputFormat, layout: Option<&str>) -> ConvertOptions {
    ConvertOptions {
        to: Some(to),
        layout: layout.map(|l| ckptconv::Layout::from_name(l).expect("a layout name")),
        ..Default::default()
    }
}

#[test]
fn any_to_any_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (OutputFormat::Safetensors, None, "st.safetensors"),
        (OutputFormat::H5, None, "k.h5"),
        (OutputFormat::H5, Some("flat"), "flat.h5"),
        (OutputFormat::Ckpt, Some("tf1"), "tf1/model"),
        (OutputFormat::Ckpt, Some("object"), "obj/model"),
    ];
    for fx in FIXTURES {
        let input = common::testdata().join(fx);
        let src = formats::open(&input).unwrap();
        let want = contents(src.as_ref());
        for (k, (to, layout, name)) in cases.iter().enumerate() {
            let out = dir
                .path()
                .join(format!("{}-{k}", fx.replace('/', "_")))
                .join(name);
            let r = match convert(&input, &out, &opts(*to, *layout)) {
                Ok(r) => r,
                // A Keras layout the source cannot be laid out in right is refused,
                // pointing to the layout that works; nothing is written.
                Err(e @ ckptconv::Error::Unsupported { .. })
                    if (name.ends_with("k.h5") || name.starts_with("obj/"))
                        && e.to_string().contains("--layout") =>
                {
                    assert!(!out.exists(), "{fx} -> {name}: refused but written");
                    continue;
                }
                Err(e) => panic!("{fx} -> {name}: {e}"),
            };
            let back =
                formats::open(&out).unwrap_or_else(|e| panic!("{fx} -> {name}: reopen: {e}"));
            assert!(back.verify().is_empty(), "{fx} -> {name}: verify");
            let got = contents(back.as_ref());
            let skipped: Vec<&str> = r.skipped.iter().map(|s| s.name.as_str()).collect();
            for (var, (dtype, shape, data)) in &want {
                if skipped.contains(&var.as_str()) || var == OBJECT_GRAPH_KEY {
                    continue;
                }
                let (d2, s2, x2) = got.get(var).unwrap_or_else(|| {
                    panic!(
                        "{fx} -> {name}: {var} missing; have {:?}",
                        got.keys().collect::<Vec<_>>()
                    )
                });
                assert_eq!((dtype, shape), (d2, s2), "{fx} -> {name}: {var}");
                assert!(data == x2, "{fx} -> {name}: {var}: data differs");
            }
            for s in &r.skipped {
                let t = &src.tensors()[src
                    .tensors()
                    .iter()
                    .position(|t| t.variable == s.name || t.name == s.name)
                    .unwrap()];
                assert!(
                    t.dtype == DType::String
                        || t.dtype == DType::Complex128
                        || ckptconv::naming::role(&t.name, &t.variable)
                            != ckptconv::naming::Role::Weight,
                    "{fx} -> {name}: skipped {} ({})",
                    s.name,
                    s.reason
                );
            }
        }
    }
}

#[test]
fn keep_layout_reproduces_tensorflows_files_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // We write data in the source's order: TF1 savers write key order, TF2 writes the
    // object graph after the variables. Either way the files come out identical.
    for (fx, prefix) in [("tf/tf1_saver", "model.ckpt"), ("tf/tf2_object", "ckpt-2")] {
        let src = common::testdata().join(fx);
        let out = dir.path().join(fx.replace('/', "_")).join("copy");
        convert(&src, &out, &ConvertOptions::default()).unwrap();
        // The same through the command line, without the fsync: the same bytes.
        let fast = dir.path().join("fast").join(fx.replace('/', "_"));
        let o = ckptconv([
            Path::new("convert"),
            &src,
            Path::new("-o"),
            &fast,
            Path::new("--no-fsync"),
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let tf_prefix = src.join(prefix);
        for suffix in [".index", ".data-00000-of-00001"] {
            let a = fs::read(format!("{}{suffix}", tf_prefix.display())).unwrap();
            for ours in [&out, &fast] {
                let b = fs::read(format!("{}{suffix}", ours.display())).unwrap();
                assert!(a == b, "{fx}: our {suffix} differs from TensorFlow's");
            }
        }
    }
}

#[test]
fn max_shard_size_spreads_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sharded/model");
    let mut o = opts(OutputFormat::Ckpt, Some("tf1"));
    o.max_shard_size = Some(300);
    convert(common::testdata().join("keras2/weights.h5"), &out, &o).unwrap();
    let back = formats::open(&out).unwrap();
    let shards: std::collections::BTreeSet<u32> =
        back.tensors().iter().filter_map(|t| t.shard).collect();
    assert!(shards.len() > 3, "{shards:?}");
    assert!(back.verify().is_empty());
    let state = fs::read_to_string(dir.path().join("sharded/checkpoint")).unwrap();
    assert!(
        state.contains("model_checkpoint_path: \"model\""),
        "{state}"
    );
    // Converting again with fewer shards and --force leaves no stale data files.
    o.max_shard_size = None;
    o.force = true;
    convert(common::testdata().join("keras2/weights.h5"), &out, &o).unwrap();
    let names: Vec<String> = fs::read_dir(dir.path().join("sharded"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.contains(".data-")).count(),
        1,
        "{names:?}"
    );
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn existing_outputs_survive_without_force_and_inputs_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    fs::write(&out, b"precious").unwrap();
    let input = common::testdata().join("keras2/weights.h5");
    let o = ckptconv([Path::new("convert"), &input, Path::new("-o"), &out]);
    assert_clean_failure(&o, &["w.safetensors", "already exists", "--force"]);
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    let o = ckptconv([
        Path::new("convert"),
        &input,
        Path::new("-o"),
        &out,
        Path::new("--force"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert_ne!(fs::read(&out).unwrap(), b"precious");
    assert_eq!(
        listing(dir.path()),
        vec![out.clone()],
        "no temporary files left"
    );

    // An output that is the input (or one of its files), even with --force.
    let copy = dir.path().join("in.h5");
    fs::copy(&input, &copy).unwrap();
    let before = fs::read(&copy).unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &copy,
        Path::new("-o"),
        &copy,
        Path::new("--force"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::stderr(&o).contains("input"));
    assert_eq!(fs::read(&copy).unwrap(), before);
    let ck = dir.path().join("ck");
    common::copy_dir(&common::testdata().join("tf/tf1_saver"), &ck);
    let shard = ck.join("model.ckpt.data-00000-of-00001");
    let before = fs::read(&shard).unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &ck.join("model.ckpt"),
        Path::new("-o"),
        &ck.join("model.ckpt"),
        Path::new("--force"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert_eq!(fs::read(&shard).unwrap(), before);
}

/// Tensors of several MiB take the other path of the writers: their crc32c is computed
/// on a second thread while they are written. A round trip through every format is still
/// bit-exact, and a flipped byte in the middle of a big tensor of a checkpoint is still
/// caught, in every output format and layout, with nothing left behind.
#[test]
fn big_tensors_round_trip_and_their_corruption_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("big.safetensors");
    common::big_safetensors(&st, 3, 6);
    let ck = dir.path().join("ck/model");
    let h5 = dir.path().join("big.h5");
    let back = dir.path().join("back.safetensors");
    // Synthetic names record no Keras model: HDF5 goes flat.
    for (from, to) in [(&st, &ck), (&ck, &h5), (&h5, &back)] {
        let mut args = vec![Path::new("convert"), from, Path::new("-o"), to];
        if to == &h5 {
            args.extend([Path::new("--layout"), Path::new("flat")]);
        }
        let o = ckptconv(args);
        assert!(o.status.success(), "{}", common::stderr(&o));
    }
    // The data sections (everything after the header; ours adds metadata) are identical.
    let (a, b) = (fs::read(&st).unwrap(), fs::read(&back).unwrap());
    let data = 3 * (6 << 20);
    assert!(a.len() > data && b.len() > data);
    assert!(
        a[a.len() - data..] == b[b.len() - data..],
        "tensor bytes differ"
    );
    let o = ckptconv([Path::new("verify"), &ck]);
    assert!(o.status.success(), "{}", common::stderr(&o));

    let shard = dir.path().join("ck/model.data-00000-of-00001");
    let mut b = fs::read(&shard).unwrap();
    let mid = (6 << 20) + (3 << 20); // the middle of t0001
    b[mid] ^= 0x10;
    fs::write(&shard, b).unwrap();
    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).unwrap();
    for (out, layout) in [
        ("x.safetensors", None),
        ("x.h5", Some("flat")),
        ("x", None),
        ("y", Some("tf1")),
    ] {
        let mut args = vec![
            Path::new("convert").to_path_buf(),
            ck.clone(),
            Path::new("-o").to_path_buf(),
            outdir.join(out),
        ];
        if let Some(l) = layout {
            args.push("--layout".into());
            args.push(l.into());
        }
        let o = ckptconv(&args);
        assert_clean_failure(
            &o,
            &[
                "model.data-00000-of-00001",
                "\"t0001\"",
                "checksum mismatch",
            ],
        );
        assert!(
            listing(&outdir).is_empty(),
            "{out}: left {:?}",
            listing(&outdir)
        );
    }
}

#[test]
fn failures_leave_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    // A corrupt input fails mid-way: nothing is left behind.
    let bad = dir.path().join("bad");
    common::copy_dir(&common::testdata().join("tf/tf1_saver"), &bad);
    let shard = bad.join("model.ckpt.data-00000-of-00001");
    let mut b = fs::read(&shard).unwrap();
    b[10] ^= 0xff; // inside dtypes/bfloat16 (the first key), which every format writes
    fs::write(&shard, b).unwrap();
    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).unwrap();
    for (out, layout) in [("x.safetensors", "tf1"), ("x.h5", "flat"), ("x", "tf1")] {
        let mut args = vec![
            Path::new("convert").to_path_buf(),
            bad.clone(),
            Path::new("-o").to_path_buf(),
            outdir.join(out),
        ];
        if out != "x.safetensors" {
            args.extend(["--layout".into(), layout.into()]);
        }
        let o = ckptconv(args);
        assert_clean_failure(&o, &["checksum"]);
        assert!(
            listing(&outdir).is_empty(),
            "{out}: left {:?}",
            listing(&outdir)
        );
    }
    // --strict turns a skip into an error, before anything is written.
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("tf/tf1_saver"),
        Path::new("-o"),
        &outdir.join("s.safetensors"),
        Path::new("--strict"),
    ]);
    // A file problem (what it holds cannot be written), not a usage error: exit 1.
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("--strict"));
    assert!(listing(&outdir).is_empty());
}

#[test]
fn skipped_tensors_are_reported_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.safetensors");
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("tf/tf1_saver"),
        Path::new("-o"),
        &out,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let err = common::stderr(&o);
    assert!(err.contains("\"strings/vector\""), "{err}");
    assert!(err.contains("skipped \"dtypes/complex128\""), "{err}");
    // One line per reason.
    assert_eq!(err.matches("skipped").count(), 2, "{err}");
}

/// Keras layers (names, order, weight order) survive h5 → TF1 checkpoint → h5 through the
/// header's `ckptconv_layers` field, while the checkpoint's keys stay pure TF1 names.
#[test]
fn keras_layers_survive_a_tf1_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let src_path = common::testdata().join("keras2/full.h5");
    let src = formats::open(&src_path).unwrap();
    for layout in ["tf1", "object"] {
        let ck = dir.path().join(layout).join("model");
        convert(&src_path, &ck, &opts(OutputFormat::Ckpt, Some(layout))).unwrap();
        let mid = formats::open(&ck).unwrap();
        if layout == "tf1" {
            assert!(mid
                .tensors()
                .iter()
                .all(|t| !t.name.contains(".ATTRIBUTES")));
        }
        let back_path = dir.path().join(format!("{layout}.h5"));
        convert(&ck, &back_path, &opts(OutputFormat::H5, None)).unwrap();
        let back = formats::open(&back_path).unwrap();
        let shape = |s: &dyn TensorSource| -> Vec<(String, Option<String>, Vec<String>)> {
            s.layers()
                .iter()
                .map(|l| {
                    (
                        l.name.clone(),
                        l.class_name.clone(),
                        l.tensors()
                            .map(|i| s.tensors()[i].variable.clone())
                            .collect(),
                    )
                })
                .collect()
        };
        // The checkpoint keeps names, classes and order; a weights-only .h5 has no place
        // for classes (Keras keeps them in model_config), so there names and order.
        assert_eq!(
            shape(mid.as_ref()).len(),
            shape(src.as_ref()).len(),
            "{layout}"
        );
        for (m, s) in shape(mid.as_ref()).iter().zip(shape(src.as_ref())) {
            assert_eq!((&m.0, &m.1), (&s.0, &s.1), "{layout}");
        }
        let strip = |v: Vec<(String, Option<String>, Vec<String>)>| {
            v.into_iter().map(|(n, _, w)| (n, w)).collect::<Vec<_>>()
        };
        assert_eq!(
            strip(shape(back.as_ref())),
            strip(shape(src.as_ref())),
            "{layout}"
        );
    }
}

#[test]
fn silent_stderr_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.h5");
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("keras2/weights.h5"),
        Path::new("-o"),
        &out,
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        common::stderr(&o),
        "",
        "no progress bar or logs when stderr is not a terminal"
    );
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("keras2/weights.h5"),
        Path::new("-o"),
        &dir.path().join("m.safetensors"),
        Path::new("--json"),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["output_format"], "safetensors");
    assert_eq!(doc["tensors"], 16);
}
