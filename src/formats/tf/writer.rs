//! Writing a TensorBundle checkpoint the way TensorFlow does
//! (`tensorflow/core/util/tensor_bundle/tensor_bundle.cc`, `BundleWriter`).
//!
//! Keys are sorted bytewise. Data files hold the tensors back to back in the source's
//! order (TensorFlow's own order when the source is a checkpoint; key order for tensors
//! with no position, then the object graph we make, last as in TF2), except that a large
//! tensor copied verbatim is placed at its source offset modulo 4096, after up to 4095 zero
//! bytes (TensorFlow's `data_alignment` option pads likewise; readers go by each entry's
//! offset). Each entry records dtype, shape, shard, offset, size and the masked crc32c of
//! the stored bytes; strings use TensorFlow's encoding; the `.index` is written with
//! TensorFlow's table options (see `table.rs`), so for the same entries it is byte-identical
//! to TensorFlow's, and `--layout keep` of a TensorFlow checkpoint reproduces its files. With
//! a maximum shard size, tensors are spread greedily over several data files in data order;
//! a tensor larger than the maximum gets a file of its own (it is not sliced). A `checkpoint` state file naming the new prefix is written beside it.
//!
//! All files go through an [`OutputSet`]: data files first, then the index, then the state
//! file, so an index is never visible before its data.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use prost::Message;

use super::bundle::{encode_strings, index_path, shard_path};
use super::coding;
use super::table::{TableBuilder, TableOptions};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::output::{append_run, check_interrupted, OutputSet};
use crate::pb::{
    tensor_shape_proto::Dim, BundleEntryProto, BundleHeaderProto, TensorShapeProto, VersionDef,
};
use crate::plan::Planned;
use crate::tensor::{TensorData, TensorSource};

/// Options of the checkpoint writer.
#[derive(Debug, Clone, Default)]
pub struct TfWriteOptions {
    /// Start a new data file when the current one would exceed this many bytes.
    pub max_shard_size: Option<u64>,
    /// Extra string scalars to store (the object graph of an object-based layout).
    pub extra_strings: Vec<(String, Vec<u8>)>,
    /// Also write the `checkpoint` state file beside the prefix, naming this checkpoint
    /// as the latest and these as all of them (in order; this one last).
    pub state_file: Option<Vec<String>>,
    /// Keras layers (JSON) for the header's `ckptconv_layers` extension field.
    pub layers_json: Option<String>,
}

enum Item {
    Source(usize),
    Encoded { bytes: Vec<u8>, crc: u32 },
}

struct Pending {
    key: Vec<u8>,
    dtype: DType,
    shape: Vec<u64>,
    size: u64,
    item: Item,
    /// The source tensor, if any (for its position in the source's files).
    source: Option<usize>,
}

/// Write `plan` from `src` as the checkpoint `prefix`. Returns the paths it will create
/// (after `out.commit()`).
pub fn write(
    src: &dyn TensorSource,
    plan: &[Planned],
    prefix: &Path,
    opts: &TfWriteOptions,
    out: &mut OutputSet,
    progress: &dyn Fn(u64),
) -> Result<()> {
    let mut items: Vec<Pending> = Vec::with_capacity(plan.len() + opts.extra_strings.len());
    for p in plan {
        let t = &src.tensors()[p.index];
        let item = if t.dtype == DType::String {
            // Strings are small in practice; encode them now to know their size.
            let data = src.read(p.index)?;
            let TensorData::Strings(s) = &data else {
                return Err(Error::unsupported_tensor(
                    src.path(),
                    &t.name,
                    "a string tensor whose source gave bytes, not strings",
                ));
            };
            // One string per element, or TensorFlow would read a tensor other than the
            // one its shape says.
            if Some(s.len() as u64) != t.num_elements() {
                return Err(Error::unsupported_tensor(
                    src.path(),
                    &t.name,
                    format!(
                        "the source gave {} strings for shape {:?}",
                        s.len(),
                        t.shape
                    ),
                ));
            }
            let (bytes, crc) = encode_strings(s);
            Item::Encoded { bytes, crc }
        } else {
            Item::Source(p.index)
        };
        let size = match &item {
            Item::Encoded { bytes, .. } => bytes.len() as u64,
            Item::Source(_) => t.byte_len,
        };
        items.push(Pending {
            key: p.name.as_bytes().to_vec(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            size,
            item,
            source: Some(p.index),
        });
    }
    for (key, value) in &opts.extra_strings {
        let (bytes, crc) = encode_strings(std::slice::from_ref(value));
        items.push(Pending {
            key: key.as_bytes().to_vec(),
            dtype: DType::String,
            shape: vec![],
            size: bytes.len() as u64,
            item: Item::Encoded { bytes, crc },
            source: None,
        });
    }
    items.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(w) = items.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(Error::unsupported(
            src.path(),
            format!(
                "{}: two tensors would both be written under the key {:?}",
                prefix.display(),
                String::from_utf8_lossy(&w[0].key)
            ),
        ));
    }
    if items.iter().any(|i| i.key.is_empty()) {
        return Err(Error::unsupported(
            src.path(),
            format!("{}: a tensor has an empty name", prefix.display()),
        ));
    }

    // Data order: the source's own where it has one (so that `--layout keep` of a
    // checkpoint writes TensorFlow's data file again, object graph last), the rest after
    // it in key order. Index entries stay in key order, as the format requires.
    let position = |it: &Pending| it.source.and_then(|i| src.stored_at(i));
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&k| (position(&items[k]).is_none(), position(&items[k]), k));

    // Greedy assignment to data files in data order, back to back as TensorFlow writes
    // them. Consecutive source tensors in a data file form a run, copied by one pipeline
    // (see `append_run`); encoded strings are written between runs.
    let mut place = vec![(0u32, 0u64); items.len()];
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut run_of: Vec<Option<usize>> = vec![None; items.len()];
    let mut shard = 0u32;
    let mut used = 0u64;
    let mut in_run = false;
    for &k in &order {
        let it = &items[k];
        if let Some(max) = opts.max_shard_size {
            if used > 0 && used.saturating_add(it.size) > max {
                shard += 1;
                used = 0;
                in_run = false;
            }
        }
        place[k] = (shard, used);
        used = used.saturating_add(it.size);
        let source = matches!(it.item, Item::Source(_));
        if source {
            if !in_run {
                runs.push(Vec::new());
            }
            let r = runs.len() - 1;
            runs[r].push(k);
            run_of[k] = Some(r);
        }
        in_run = source;
    }
    let num_shards = shard + 1;

    let mut entries: Vec<Option<BundleEntryProto>> = vec![None; items.len()];
    for s in 0..num_shards {
        let target = shard_path(prefix, s, num_shards);
        let file = out.create(&target)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let werr = |e: std::io::Error| Error::io(&target, "write", e);
        for &k in order.iter().filter(|&&k| place[k].0 == s) {
            if entries[k].is_some() {
                continue; // written with its run
            }
            check_interrupted()?;
            // One crc32c pass, overlapped with the copy, gives both each entry's checksum
            // and the check of the source's own (for a checkpoint).
            let done: Vec<(usize, u32)> = match &items[k].item {
                Item::Encoded { bytes, crc } => {
                    w.write_all(bytes).map_err(werr)?;
                    progress(bytes.len() as u64);
                    vec![(k, *crc)]
                }
                Item::Source(_) => {
                    let run = &runs[run_of[k].expect("every source tensor is in a run")];
                    let indices: Vec<usize> = run
                        .iter()
                        .map(|&j| match items[j].item {
                            Item::Source(i) => i,
                            Item::Encoded { .. } => unreachable!("runs hold source tensors"),
                        })
                        .collect();
                    let crcs = append_run(src, &indices, &mut w, &target, true, progress)?;
                    run.iter()
                        .zip(crcs)
                        .map(|(&j, c)| (j, c.expect("crc asked for")))
                        .collect()
                }
            };
            for (j, crc) in done {
                let it = &items[j];
                entries[j] = Some(BundleEntryProto {
                    dtype: it.dtype.to_tf(),
                    shape: Some(TensorShapeProto {
                        dim: it
                            .shape
                            .iter()
                            .map(|&d| Dim {
                                size: d as i64,
                                name: String::new(),
                            })
                            .collect(),
                        unknown_rank: false,
                    }),
                    shard_id: s as i32,
                    offset: place[j].1 as i64,
                    size: it.size as i64,
                    crc32c: coding::mask(crc),
                    slices: vec![],
                });
            }
        }
        w.flush().map_err(werr)?;
    }
    let entries: Vec<BundleEntryProto> = entries
        .into_iter()
        .map(|e| e.expect("every item is placed in a shard"))
        .collect();

    let index = index_path(prefix);
    let file = out.create(&index)?;
    let mut tb = TableBuilder::new(BufWriter::new(file), TableOptions::default());
    let ierr = |e: std::io::Error| Error::io(&index, "write", e);
    let header = BundleHeaderProto {
        num_shards: num_shards as i32,
        endianness: 0,
        version: Some(VersionDef {
            producer: 1,
            min_consumer: 0,
            bad_consumers: vec![],
        }),
        ckptconv_layers: opts.layers_json.clone().unwrap_or_default(),
    };
    tb.add(b"", &header.encode_to_vec()).map_err(ierr)?;
    for (it, e) in items.iter().zip(&entries) {
        tb.add(&it.key, &e.encode_to_vec()).map_err(ierr)?;
    }
    tb.finish().map_err(ierr)?.flush().map_err(ierr)?;

    if let Some(all) = &opts.state_file {
        let name = prefix
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let state = prefix.with_file_name("checkpoint");
        let mut text = format!("model_checkpoint_path: \"{}\"\n", esc(&name));
        for p in all {
            text.push_str(&format!("all_model_checkpoint_paths: \"{}\"\n", esc(p)));
        }
        let mut f: File = out.create(&state)?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(&state, "write", e))?;
    }
    Ok(())
}
