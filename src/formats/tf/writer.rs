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
use crate::convert::Progress;
use crate::error::{Error, Result};
use crate::cancel::Cancel;
use crate::commit::OutputSet;
use crate::copy::append_run;
use crate::pb::{
    tensor_shape_proto::Dim, BundleEntryProto, BundleHeaderProto, TensorShapeProto, VersionDef,
};
use crate::plan::{Names, Planned};
use crate::tensor::TensorSource;

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
    Encoded {
        bytes: Vec<u8>,
        crc: u32,
    },
    /// A string tensor the source holds in TensorFlow's encoding: its stored bytes,
    /// copied as they are.
    Copied {
        index: usize,
        size: u64,
    },
    /// A string tensor encoded while it is written: its varint lengths and their masked
    /// checksum (`prefix`, from a first pass over the elements), then `total` bytes of
    /// elements (read again).
    Strings {
        index: usize,
        prefix: Vec<u8>,
        lengths_crc: u32,
        total: u64,
    },
}

/// How string tensor `index` of `src` will be written: copied when the source stores it
/// as TensorFlow does, else encoded, its lengths found by a first pass over the elements
/// (one element in memory at a time).
fn string_item(src: &dyn TensorSource, index: usize) -> Result<Item> {
    let t = &src.tensors()[index];
    let mut r = src.strings(index)?;
    // One string per element, or TensorFlow would read a tensor other than the one its
    // shape says.
    let wrong_count = |n: u64| {
        Error::unsupported_tensor(
            src.path(),
            &t.name,
            format!("the source gave {n} strings for shape {:?}", t.shape),
        )
    };
    if Some(r.len()) != t.num_elements() {
        return Err(wrong_count(r.len()));
    }
    if let Some(e) = r.tf_encoded() {
        return Ok(Item::Copied {
            index,
            size: e.size,
        });
    }
    let mut prefix = Vec::new();
    let (mut crc, mut total, mut n) = (0u32, 0u64, 0u64);
    while let Some(s) = r.next()? {
        let len = s.len() as u64;
        coding::put_varint64(&mut prefix, len);
        crc = crc_len(crc, len);
        total = total
            .checked_add(len)
            .ok_or_else(|| Error::corrupt_tensor(src.path(), &t.name, "size overflows"))?;
        n += 1;
    }
    if Some(n) != t.num_elements() {
        return Err(wrong_count(n));
    }
    prefix.extend_from_slice(&coding::mask(crc).to_le_bytes());
    Ok(Item::Strings {
        index,
        prefix,
        lengths_crc: crc,
        total,
    })
}

/// TensorFlow feeds each string length to the crc as a u32, or a u64 if it does not fit.
fn crc_len(crc: u32, len: u64) -> u32 {
    match u32::try_from(len) {
        Ok(l) => coding::crc32c_extend(crc, &l.to_le_bytes()),
        Err(_) => coding::crc32c_extend(crc, &len.to_le_bytes()),
    }
}

/// Copy string tensor `index` of `src`, stored as TensorFlow stores it, to `w` (writing
/// `target`) with `pread`, a buffer at a time, checking its stored checksum on the way;
/// returns that checksum (the copy's bytes are the same).
fn copy_strings(
    src: &dyn TensorSource,
    index: usize,
    w: &mut impl Write,
    target: &Path,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<u32> {
    use std::os::unix::fs::FileExt;
    let r = src.strings(index)?;
    let e = r.tf_encoded().ok_or_else(|| {
        Error::unsupported_tensor(
            src.path(),
            &src.tensors()[index].name,
            "the source no longer gives the string tensor's stored bytes",
        )
    })?;
    let mut buf = vec![0u8; (256usize << 10).min(usize::try_from(e.size).unwrap_or(usize::MAX))];
    let mut crc = e.lengths_crc;
    let mut done = 0u64;
    while done < e.size {
        cancel.check()?;
        let n = usize::try_from(e.size - done).map_or(buf.len(), |r| r.min(buf.len()));
        let at = e
            .offset
            .checked_add(done)
            .ok_or_else(|| Error::corrupt(&e.check.file, "offset overflows"))?;
        e.file.read_exact_at(&mut buf[..n], at).map_err(|x| {
            if x.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt_tensor(
                    &e.check.file,
                    &e.check.tensor,
                    "the file ends inside the tensor (truncated?)",
                )
            } else {
                Error::io(&e.check.file, "read", x)
            }
        })?;
        // The entry's checksum continues the lengths' over everything after them.
        let skip = usize::try_from(e.lengths_len.saturating_sub(done)).map_or(n, |s| s.min(n));
        crc = coding::crc32c_extend(crc, &buf[skip..n]);
        w.write_all(&buf[..n])
            .map_err(|x| Error::io(target, "write", x))?;
        progress.advance(n as u64);
        done += n as u64;
    }
    e.check.check(crc)?;
    Ok(e.check.expected)
}

/// Write string tensor `index` of `src` in TensorFlow's encoding to `w`: `prefix` (its
/// lengths and their checksum, from [`string_item`]), then its elements, read again and
/// checked against those lengths. Returns the entry's crc32c.
fn encode_strings_to(
    src: &dyn TensorSource,
    index: usize,
    (prefix, lengths_crc): (&[u8], u32),
    w: &mut impl Write,
    target: &Path,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<u32> {
    let t = &src.tensors()[index];
    let changed = || {
        Error::unsupported_tensor(
            src.path(),
            &t.name,
            "the source gave different strings when read again",
        )
    };
    let werr = |x: std::io::Error| Error::io(target, "write", x);
    w.write_all(prefix).map_err(werr)?;
    progress.advance(prefix.len() as u64);
    let masked = prefix.len().checked_sub(4).ok_or_else(changed)?;
    let mut crc = coding::crc32c_extend(lengths_crc, &prefix[masked..]);
    let mut lengths = coding::Cursor::new(&prefix[..masked]);
    let mut r = src.strings(index)?;
    let mut k = 0u64;
    while let Some(s) = r.next()? {
        if k % 256 == 0 {
            cancel.check()?;
        }
        if lengths.varint64().ok() != Some(s.len() as u64) {
            return Err(changed());
        }
        crc = coding::crc32c_extend(crc, s);
        w.write_all(s).map_err(werr)?;
        progress.advance(s.len() as u64);
        k += 1;
    }
    if !lengths.is_empty() {
        return Err(changed());
    }
    Ok(crc)
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

/// The checkpoint writer: `plan`'s tensors under their keys, as `opts` say.
pub struct CheckpointWriter<'a> {
    /// What to write, under which keys.
    pub plan: &'a [Planned],
    /// Shards, extra strings, the state file, the Keras layers.
    pub opts: &'a TfWriteOptions,
}

impl crate::write::Writer for CheckpointWriter<'_> {
    fn check_names(&self, src: &dyn TensorSource, target: &Path) -> Result<()> {
        check_keys(src, self.plan, self.opts, target)
    }

    fn write(
        &self,
        src: &dyn TensorSource,
        target: &Path,
        out: &mut OutputSet,
        progress: &dyn Progress,
    ) -> Result<Vec<crate::plan::Skipped>> {
        write(src, self.plan, target, self.opts, out, progress)?;
        Ok(Vec::new())
    }
}

/// Refuse (with [`crate::plan::check_names`], before anything is written) keys a
/// checkpoint cannot hold: the plan's and `opts`' extra strings'.
fn check_keys(
    src: &dyn TensorSource,
    plan: &[Planned],
    opts: &TfWriteOptions,
    prefix: &Path,
) -> Result<()> {
    let planned = plan.iter().map(|p| {
        (
            p.name.as_str(),
            src.tensors()[p.index].name.as_str(),
            src.renamed(p.index),
        )
    });
    let extra = opts
        .extra_strings
        .iter()
        .map(|(k, _)| (k.as_str(), k.as_str(), false));
    crate::plan::check_names(src.path(), prefix, Names::TfKeys, planned.chain(extra))
}

/// Write `plan` from `src` as the checkpoint `prefix`. Returns the paths it will create
/// (after `out.commit()`).
fn write(
    src: &dyn TensorSource,
    plan: &[Planned],
    prefix: &Path,
    opts: &TfWriteOptions,
    out: &mut OutputSet,
    progress: &dyn Progress,
) -> Result<()> {
    let cancel = out.cancel().clone();
    let mut items: Vec<Pending> = Vec::with_capacity(plan.len() + opts.extra_strings.len());
    for p in plan {
        let t = &src.tensors()[p.index];
        let item = if t.dtype == DType::String {
            string_item(src, p.index)?
        } else {
            Item::Source(p.index)
        };
        let size = match &item {
            Item::Encoded { bytes, .. } => bytes.len() as u64,
            Item::Source(_) => t.byte_len,
            Item::Copied { size, .. } => *size,
            Item::Strings { prefix, total, .. } => (prefix.len() as u64)
                .checked_add(*total)
                .ok_or_else(|| Error::corrupt_tensor(src.path(), &t.name, "size overflows"))?,
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
            cancel.check()?;
            // One crc32c pass, overlapped with the copy, gives both each entry's checksum
            // and the check of the source's own (for a checkpoint).
            let done: Vec<(usize, u32)> = match &items[k].item {
                Item::Encoded { bytes, crc } => {
                    w.write_all(bytes).map_err(werr)?;
                    progress.advance(bytes.len() as u64);
                    vec![(k, *crc)]
                }
                Item::Copied { index, .. } => {
                    vec![(k, copy_strings(src, *index, &mut w, &target, &cancel, progress)?)]
                }
                Item::Strings {
                    index,
                    prefix,
                    lengths_crc,
                    ..
                } => {
                    let crc = encode_strings_to(
                        src,
                        *index,
                        (prefix, *lengths_crc),
                        &mut w,
                        &target,
                        &cancel,
                        progress,
                    )?;
                    vec![(k, crc)]
                }
                Item::Source(_) => {
                    let run = &runs[run_of[k].expect("every source tensor is in a run")];
                    let indices: Vec<usize> = run
                        .iter()
                        .map(|&j| match items[j].item {
                            Item::Source(i) => i,
                            _ => unreachable!("runs hold source tensors"),
                        })
                        .collect();
                    let crcs = append_run(src, &indices, &mut w, &target, true, &cancel, progress)?;
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
        let state = prefix.with_file_name("checkpoint");
        let text = super::state::CheckpointState {
            model_checkpoint_path: name,
            all_model_checkpoint_paths: all.clone(),
        }
        .to_text();
        let mut f: File = out.create(&state)?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(&state, "write", e))?;
    }
    Ok(())
}
