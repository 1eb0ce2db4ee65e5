//! Keras layouts are exact or refused: a Keras `.h5` or object-layout checkpoint is only
//! written when the source reveals the layer order and each layer's weight order, and
//! `diff` sees an order difference that changes what Keras loads.

mod common;

use std::path::Path;

use ckptconv::commit::OutputSet;
use ckptconv::convert::{convert, ConvertOptions, OutputFormat};
use ckptconv::formats::{self, h5::writer::H5Plan};
use ckptconv::keras;
use ckptconv::plan::Planned;
use ckptconv::tensor::TensorSource;
use ckptconv::write::Writer;
use common::{assert_clean_failure, ckptconv, stderr, stdout};

/// The variables of every weighted layer, in load order.
fn load_order(src: &dyn TensorSource) -> Vec<(String, Vec<String>)> {
    keras::describe(src)
        .weighted()
        .map(|l| {
            (
                l.name.clone(),
                l.tensors()
                    .map(|i| src.tensors()[i].variable.clone())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn tf_format_checkpoint_to_h5_keeps_keras_load_order() {
    let t = tempfile::tempdir().unwrap();
    let h5 = common::testdata().join("keras2/weights.h5");
    let ck = common::testdata().join("keras2/tf_format/weights");
    // Its model nests a Sequential, whose weights a Keras 2 .h5 lists trainable first:
    // that depends on which of its layers are frozen, which a TF-format checkpoint does
    // not record. Refused, naming the layer and what to do.
    let out = t.path().join("from_ckpt.h5");
    let o = ckptconv([Path::new("convert"), &ck, Path::new("-o"), &out]);
    assert_clean_failure(&o, &["nested model", "--layout object"]);
    assert!(!out.exists());
    // Everything but the nested model is laid out in Keras' order: the same layers, same
    // weights, same order as the model's own .h5, as an object-layout checkpoint.
    let obj = t.path().join("obj/model");
    let o = ckptconv([
        Path::new("convert"),
        &ck,
        Path::new("-o"),
        &obj,
        Path::new("--layout"),
        Path::new("object"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = formats::open(&h5).unwrap();
    let got = formats::open(&obj).unwrap();
    let (w, g) = (load_order(want.as_ref()), load_order(got.as_ref()));
    assert_eq!(w.len(), g.len());
    for ((_, a), (_, b)) in w.iter().zip(&g) {
        let (mut a, mut b) = (a.clone(), b.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
    // From a file with the model's config, the nested model's order is known: a full
    // model .h5 → checkpoint → .h5 keeps Keras' load order, which diff confirms.
    let full = common::testdata().join("keras2/full.h5");
    let ck2 = t.path().join("ck2/model");
    let back = t.path().join("back.h5");
    for (from, to) in [(&full, &ck2), (&ck2, &back)] {
        let o = ckptconv([Path::new("convert"), from, Path::new("-o"), to]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let o = ckptconv([Path::new("diff"), &full, &back]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// A safetensors file as other tools write it: the tensors, sorted by name, no metadata.
fn plain_safetensors(src: &dyn TensorSource, out: &Path) {
    let data: Vec<(String, Vec<u8>)> = (0..src.tensors().len())
        .map(|i| {
            let bytes = src.read(i).unwrap().as_bytes().unwrap().to_vec();
            (src.tensors()[i].variable.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .enumerate()
        .map(|(i, (name, bytes))| {
            let t = &src.tensors()[i];
            assert_eq!(t.dtype, ckptconv::DType::Float32, "{name}");
            let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, bytes)
                .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, None, out).unwrap();
}

#[test]
fn names_alone_do_not_make_a_keras_h5() {
    let t = tempfile::tempdir().unwrap();
    let st = t.path().join("w.safetensors");
    let src = formats::open(&common::testdata().join("keras2/weights.h5")).unwrap();
    plain_safetensors(src.as_ref(), &st);
    // safetensors keeps names, not the model: its layer order is unknown.
    let out = t.path().join("back.h5");
    let o = ckptconv([Path::new("convert"), &st, Path::new("-o"), &out]);
    assert_clean_failure(&o, &["does not record the order", "--layout flat"]);
    assert!(!out.exists());
    let o = ckptconv([
        Path::new("convert"),
        &st,
        Path::new("-o"),
        &out,
        Path::new("--layout"),
        Path::new("object"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--layout object is for checkpoints"
    );
    let ck = t.path().join("ck/model");
    let o = ckptconv([
        Path::new("convert"),
        &st,
        Path::new("-o"),
        &ck,
        Path::new("--layout"),
        Path::new("object"),
    ]);
    assert_clean_failure(&o, &["does not record the order"]);
    // Flat is always possible.
    let o = ckptconv([
        Path::new("convert"),
        &st,
        Path::new("-o"),
        &out,
        Path::new("--layout"),
        Path::new("flat"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn safetensors_written_by_ckptconv_keep_the_model() {
    let t = tempfile::tempdir().unwrap();
    let h5 = common::testdata().join("keras2/weights.h5");
    let st = t.path().join("w.safetensors");
    let back = t.path().join("back.h5");
    for (from, to) in [(&h5, &st), (&st, &back)] {
        let o = ckptconv([Path::new("convert"), from, Path::new("-o"), to]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let o = ckptconv([Path::new("diff"), &h5, &back]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let (a, b) = (formats::open(&h5).unwrap(), formats::open(&back).unwrap());
    assert_eq!(load_order(a.as_ref()), load_order(b.as_ref()));
}

#[test]
fn optimizer_state_never_becomes_a_layer() {
    let t = tempfile::tempdir().unwrap();
    let full = common::testdata().join("keras2/full.h5");
    let ck = t.path().join("ck/model");
    let r = convert(
        &full,
        &ck,
        &ConvertOptions {
            to: Some(OutputFormat::Ckpt),
            layout: Some(ckptconv::Layout::Tf1),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.tensors > 0);
    let out = t.path().join("back.h5");
    convert(&ck, &out, &ConvertOptions::default()).unwrap();
    let back = formats::open(&out).unwrap();
    let want = formats::open(&full).unwrap();
    assert_eq!(load_order(back.as_ref()), load_order(want.as_ref()));
    for l in back.layers() {
        assert!(
            !l.name.starts_with("optimizer") && !l.name.starts_with("training"),
            "{} is a layer",
            l.name
        );
    }
}

/// Write `src` as a Keras 2 `.h5` at `out`, its BatchNormalization layer's name and
/// weights changed by `change` first.
fn rewrite_bn(
    src: &dyn TensorSource,
    out: &Path,
    change: impl FnOnce(&mut String, &mut Vec<Planned>),
) {
    let model = keras::describe(src);
    let plan: Vec<Planned> = src
        .tensors()
        .iter()
        .enumerate()
        .map(|(index, t)| Planned {
            index,
            name: t.variable.clone(),
        })
        .collect();
    let mut groups = keras::layout::groups(src, &model, &plan).unwrap();
    let bn = groups
        .layers
        .iter_mut()
        .find(|(_, w)| w.iter().any(|p| p.name.ends_with("/gamma")))
        .expect("a BatchNormalization layer");
    change(&mut bn.0, &mut bn.1);
    let mut set = OutputSet::new();
    H5Plan::Keras(&groups)
        .write(src, out, &mut set, &|_| {})
        .unwrap();
    set.commit().unwrap();
}

#[test]
fn diff_reports_a_weight_order_that_changes_what_keras_loads() {
    let t = tempfile::tempdir().unwrap();
    let src_path = common::testdata().join("keras2/weights.h5");
    let src = formats::open(&src_path).unwrap();
    // Swap gamma and beta of the BatchNormalization layer: same names, same shapes, same
    // bytes per name, but Keras loads by position.
    let out = t.path().join("swapped.h5");
    rewrite_bn(src.as_ref(), &out, |_, weights| weights.swap(0, 1));
    let o = ckptconv([Path::new("diff"), &src_path, &out]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("differs in order"), "{text}");
    assert!(text.contains("DIFFERENT"), "{text}");
    // And a file that cannot be read is trouble, not a difference.
    let o = ckptconv([Path::new("diff"), &src_path, Path::new("/nonexistent/x.h5")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// keras.applications names layers with a `/` (`Conv/BatchNorm`): a Keras 2 `.h5` nests
/// its group, and its weights are `Conv/BatchNorm/gamma:0`. That is one layer, tracked by
/// tf-keras at `layer_with_weights-K/gamma`, not a nested model `Conv` holding `BatchNorm`.
#[test]
fn a_layer_name_with_a_slash_is_one_layer() {
    let t = tempfile::tempdir().unwrap();
    let src = formats::open(&common::testdata().join("keras2/weights.h5")).unwrap();
    let h5 = t.path().join("slash.h5");
    rewrite_bn(src.as_ref(), &h5, |name, weights| {
        *name = "Conv/BatchNorm".into();
        for p in weights {
            let local = p.name.rsplit('/').next().unwrap().to_string();
            p.name = format!("Conv/BatchNorm/{local}");
        }
    });
    let ck = t.path().join("ck/model");
    let o = ckptconv([
        Path::new("convert"),
        &h5,
        Path::new("-o"),
        &ck,
        Path::new("--layout"),
        Path::new("tf1"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let back = formats::open(&h5).unwrap();
    let m = keras::describe(back.as_ref());
    let layer = m
        .layers
        .iter()
        .find(|l| l.name == "Conv/BatchNorm")
        .expect("the layer, by its whole name");
    assert!(!layer.is_nested_model(back.as_ref()));
    assert_eq!(layer.weights.len(), 4);
    for i in layer.tensors() {
        let v = &back.tensors()[i].variable;
        let local = keras::layout::local_path(&layer.name, v);
        assert_eq!(local.len(), 1, "{v}");
        let path =
            keras::classes::object_subpath(None, &layer.name, &local, &mut Vec::new()).unwrap();
        assert_eq!(path, [local[0]], "{v}");
    }
}

/// A Keras 3 `.weights.h5` of a thousand layers (a large model's count) reads in the HDF5
/// probe's time: naming each dataset through libhdf5 searched the whole file each time,
/// and such files were refused as "did not finish reading".
#[test]
fn a_keras3_file_of_a_thousand_layers_reads() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("many.weights.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        let layers = f.create_group("layers").unwrap();
        for i in 0..1000 {
            let name = if i == 0 {
                "dense".to_string()
            } else {
                format!("dense_{i}")
            };
            let v = layers
                .create_group(&name)
                .unwrap()
                .create_group("vars")
                .unwrap();
            let k = v.new_dataset::<f32>().shape([2]).create("0").unwrap();
            k.write(&[i as f32, 1.0]).unwrap();
            let b = v.new_dataset::<f32>().shape([1]).create("1").unwrap();
            b.write(&[2.0f32]).unwrap();
        }
    }
    let o = ckptconv(["inspect".as_ref(), p.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("2,000 tensors"), "{}", stdout(&o));
}
