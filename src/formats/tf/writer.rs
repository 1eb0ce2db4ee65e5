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
use crate::output::{append_tensor, check_interrupted, OutputSet};
use crate::pb::{
    tensor_shape_proto::Dim, BundleEntryProto, BundleHeaderProto, TensorShapeProto, VersionDef,
};
use crate::plan::Planned;
use crate::tensor::{TensorData, TensorSource, OVERLAP_CRC_MIN};

/// Options of the checkpoint writer.
#[derive(Debug, Clone, Default)]
pub struct TfWriteOptions {
    /// Start a new data file when the current one would exceed this many bytes.
    pub max_shard_size: Option<u64>,
    /// Extra string scalars to store (the object graph of an object-based layout).
    pub extra_strings: Vec<(String, Vec<u8>)>,
    /// Also write the `checkpoint` state file beside the prefix.
    pub state_file: bool,
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

/// Page size for the alignment of large tensors (see [`write`]).
const PAGE: u64 = 4096;

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
            let TensorData::Strings(s) = src.read(p.index)? else {
                unreachable!("string tensors read as strings")
            };
            let (bytes, crc) = encode_strings(&s);
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
        return Err(Error::Usage(format!(
            "{}: two tensors would both be written under the key {:?}",
            prefix.display(),
            String::from_utf8_lossy(&w[0].key)
        )));
    }
    if items.iter().any(|i| i.key.is_empty()) {
        return Err(Error::Usage(format!(
            "{}: a tensor has an empty name",
            prefix.display()
        )));
    }

    // Data order: the source's own where it has one (so that `--layout keep` of a
    // checkpoint writes TensorFlow's data file again, object graph last), the rest after
    // it in key order. Index entries stay in key order, as the format requires.
    let position = |it: &Pending| it.source.and_then(|i| src.stored_at(i));
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&k| (position(&items[k]).is_none(), position(&items[k]), k));

    // Greedy assignment to data files in data order, with each large tensor copied
    // verbatim from a file placed at its source offset modulo the page size (TensorFlow's
    // own writer can pad likewise, `BundleWriter::Options::data_alignment`; readers go by
    // each entry's offset). The kernel copies page-aligned ranges much faster; a source
    // checkpoint read in its own order needs no padding at all.
    let mut place = vec![(0u32, 0u64); items.len()];
    let mut shard = 0u32;
    let mut used = 0u64;
    for &k in &order {
        let it = &items[k];
        let residue = match it.item {
            Item::Source(_) if it.size >= OVERLAP_CRC_MIN as u64 => {
                position(it).map(|(_, off)| off % PAGE)
            }
            _ => None,
        };
        let pad_at = |u: u64| residue.map_or(0, |r| (r + PAGE - u % PAGE) % PAGE);
        if let Some(max) = opts.max_shard_size {
            if used > 0 && used.saturating_add(pad_at(used)).saturating_add(it.size) > max {
                shard += 1;
                used = 0;
            }
        }
        let offset = used.saturating_add(pad_at(used));
        place[k] = (shard, offset);
        used = offset.saturating_add(it.size);
    }
    let num_shards = shard + 1;

    let mut entries: Vec<Option<BundleEntryProto>> = vec![None; items.len()];
    let zeros = [0u8; PAGE as usize];
    for s in 0..num_shards {
        let target = shard_path(prefix, s, num_shards);
        let file = out.create(&target)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let werr = |e: std::io::Error| Error::io(&target, "write", e);
        let mut at = 0u64;
        for &k in order.iter().filter(|&&k| place[k].0 == s) {
            check_interrupted()?;
            let it = &items[k];
            let offset = place[k].1;
            let pad = usize::try_from(offset - at).expect("less than a page");
            w.write_all(&zeros[..pad]).map_err(werr)?;
            let crc = match &it.item {
                Item::Encoded { bytes, crc } => {
                    w.write_all(bytes).map_err(werr)?;
                    progress(bytes.len() as u64);
                    *crc
                }
                // One crc32c pass, overlapped with the copy, gives both the entry's
                // checksum and the check of the source's own (for a checkpoint).
                Item::Source(i) => {
                    append_tensor(src, *i, &mut w, &target, true, progress)?.expect("crc asked for")
                }
            };
            entries[k] = Some(BundleEntryProto {
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
                offset: offset as i64,
                size: it.size as i64,
                crc32c: coding::mask(crc),
                slices: vec![],
            });
            at = offset + it.size;
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

    if opts.state_file {
        let name = prefix
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        let state = prefix.with_file_name("checkpoint");
        let mut f: File = out.create(&state)?;
        write!(
            f,
            "model_checkpoint_path: \"{escaped}\"\nall_model_checkpoint_paths: \"{escaped}\"\n"
        )
        .map_err(|e| Error::io(&state, "write", e))?;
    }
    Ok(())
}
