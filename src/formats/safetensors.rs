//! safetensors files.
//!
//! ```text
//! u64le N | N bytes of JSON header, space-padded to 8-byte alignment | data
//! header: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …,
//!          "__metadata__": {"key": "value"}}      offsets relative to the data start
//! ```
//!
//! Reading uses the `safetensors` crate, which validates the header (size limit, offsets
//! in bounds, contiguous, no overlap, buffer fully used); tensor bytes are borrowed from a
//! memory map. Writing builds the header with the crate's `Metadata` (so it validates what
//! we write the same way) and then streams each tensor's bytes straight from its source:
//! the crate's own serializer takes infallible views, and our sources can fail mid-way
//! (a checksum, a truncated shard), which must abort the write, not write garbage.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata, TensorInfo as StInfo};

use crate::dtype::DType;
use crate::convert::Progress;
use crate::error::{Error, Result};
use crate::formats::{FileBytes, ReadOptions};
use crate::commit::OutputSet;
use crate::copy::append_run;
use crate::plan::{Planned, Skipped};
use crate::tensor::{FileRange, Format, TensorData, TensorInfo, TensorSource};

/// The safetensors dtype of ours, if the format has one.
pub fn to_st(d: DType) -> Option<Dtype> {
    Some(match d {
        DType::Bool => Dtype::BOOL,
        DType::UInt8 => Dtype::U8,
        DType::Int8 => Dtype::I8,
        DType::Float8E5M2 => Dtype::F8_E5M2,
        DType::Float8E4M3FN => Dtype::F8_E4M3,
        DType::Int16 => Dtype::I16,
        DType::UInt16 => Dtype::U16,
        DType::Float16 => Dtype::F16,
        DType::BFloat16 => Dtype::BF16,
        DType::Int32 => Dtype::I32,
        DType::UInt32 => Dtype::U32,
        DType::Float32 => Dtype::F32,
        DType::Complex64 => Dtype::C64,
        DType::Float64 => Dtype::F64,
        DType::Int64 => Dtype::I64,
        DType::UInt64 => Dtype::U64,
        DType::Complex128 | DType::String => return None,
    })
}

fn from_st(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::BOOL => DType::Bool,
        Dtype::U8 => DType::UInt8,
        Dtype::I8 => DType::Int8,
        Dtype::F8_E5M2 => DType::Float8E5M2,
        Dtype::F8_E4M3 => DType::Float8E4M3FN,
        Dtype::I16 => DType::Int16,
        Dtype::U16 => DType::UInt16,
        Dtype::F16 => DType::Float16,
        Dtype::BF16 => DType::BFloat16,
        Dtype::I32 => DType::Int32,
        Dtype::U32 => DType::UInt32,
        Dtype::F32 => DType::Float32,
        Dtype::C64 => DType::Complex64,
        Dtype::F64 => DType::Float64,
        Dtype::I64 => DType::Int64,
        Dtype::U64 => DType::UInt64,
        _ => return None,
    })
}

/// Why a tensor cannot be written to safetensors, if it cannot.
pub fn unrepresentable(d: DType) -> Option<&'static str> {
    match d {
        DType::String => Some("string tensors have no safetensors dtype"),
        DType::Complex128 => Some("complex128 has no safetensors dtype"),
        _ => None,
    }
}

/// Where a safetensors file's bytes are.
enum Data {
    /// The file, mapped or read with `pread` ([`crate::formats::ReadOptions`]).
    File(FileBytes),
    /// In memory (the fuzz target).
    Owned(Vec<u8>),
}

/// The largest safetensors header read (see [`SafetensorsSource::open`]).
pub const MAX_HEADER: u64 = 16 << 20;

pub struct SafetensorsSource {
    path: PathBuf,
    data: Data,
    data_start: usize,
    tensors: Vec<TensorInfo>,
    ranges: Vec<(usize, usize)>,
    metadata: HashMap<String, String>,
    layers: Vec<crate::keras::Layer>,
    layer_order: crate::keras::Order,
    h5_order: bool,
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
impl SafetensorsSource {
    pub fn open(path: &Path) -> Result<SafetensorsSource> {
        Self::open_with(path, ReadOptions::default())
    }

    /// [`open`](Self::open), reading the file as `opts` says.
    pub fn open_with(path: &Path, opts: ReadOptions) -> Result<SafetensorsSource> {
        let f = FileBytes::open(path, opts).map_err(|e| Error::io(path, "open", e))?;
        let n = Self::header_len(path, f.get(0, 8, path, "(header)"), f.len())?;
        let header = f
            .get(8, n, path, "(header)")
            .expect("header_len checked it lies in the file")?;
        let mut src = Self::parse(path, &header, f.len())?;
        src.data = Data::File(f);
        Ok(src)
    }

    /// A safetensors file held in memory (the `safetensors_header` fuzz target).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SafetensorsSource> {
        let path = Path::new("<memory>");
        let len = bytes.len() as u64;
        let n = Self::header_len(path, bytes.get(..8).map(|b| Ok(Cow::Borrowed(b))), len)?;
        let mut src = Self::parse(path, &bytes[8..8 + n as usize], len)?;
        src.data = Data::Owned(bytes);
        Ok(src)
    }

    /// The header length the first 8 bytes give, checked against the ceiling and the
    /// file's length (so the header can be read without further checks).
    fn header_len(path: &Path, first: Option<Result<Cow<'_, [u8]>>>, len: u64) -> Result<u64> {
        let first = first.ok_or_else(|| {
            Error::corrupt(
                path,
                format!("{len} bytes, shorter than a safetensors file's 8-byte header length"),
            )
        })??;
        let n = u64::from_le_bytes(first[..8].try_into().expect("8 bytes"));
        // A header the file cannot hold is the file's fault; one it holds but that is
        // larger than we parse is a limit.
        if n.checked_add(8).is_none_or(|end| end > len) {
            return Err(Error::corrupt(
                path,
                format!("safetensors header of {n} bytes in a file of {len}"),
            ));
        }
        // Parsing a header costs about ten times its size in memory: cap it well below
        // the crate's own 100 MB (16 MiB is some 150,000 tensors; real files have
        // thousands).
        if n > MAX_HEADER {
            return Err(Error::limit(
                path,
                format!("safetensors header of {n} bytes, more than the {MAX_HEADER} read here"),
            ));
        }
        Ok(n)
    }

    /// Parse the JSON `header` of a file of `file_len` bytes, as the safetensors crate's
    /// `read_metadata` does: the tensors' data must exactly fill the rest of the file.
    fn parse(path: &Path, header: &[u8], file_len: u64) -> Result<SafetensorsSource> {
        let bad = |e: String| Error::corrupt(path, format!("safetensors header: {e}"));
        let text = std::str::from_utf8(header).map_err(|e| bad(e.to_string()))?;
        let meta: Metadata = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        // A JSON object may repeat a key, and a map keeps only the last: a tensor named
        // twice would vanish in silence.
        if let Some(dup) = repeated_key(text).map_err(|e| bad(e.to_string()))? {
            return Err(bad(format!("tensor {dup:?} is listed twice")));
        }
        let n = header.len();
        let data_len = meta.data_len() as u64;
        if data_len + 8 + n as u64 != file_len {
            return Err(bad(format!(
                "its tensors take {data_len} bytes after the header, but the file has {}",
                file_len - 8 - n as u64
            )));
        }
        let data_start = 8 + n;
        let infos = meta.tensors();
        let mut tensors = Vec::new();
        let mut ranges = Vec::new();
        for name in meta.offset_keys() {
            let info = infos[&name];
            let dtype = from_st(info.dtype).ok_or_else(|| {
                Error::unsupported_tensor(
                    path,
                    &name,
                    format!("safetensors dtype {:?}", info.dtype),
                )
            })?;
            // A size of 0 elsewhere lets any sizes pass the byte count; TensorFlow's and
            // HDF5's shapes are signed 64-bit.
            if let Some(d) = info.shape.iter().find(|&&d| i64::try_from(d).is_err()) {
                return Err(bad(format!(
                    "tensor {name:?} has a dimension of {d}, over 2^63 - 1"
                )));
            }
            tensors.push(TensorInfo {
                // transformers' TF safetensors keep TF's output index (`…/beta:0`).
                variable: crate::keras::strip_output_index(&name).to_string(),
                name,
                dtype,
                shape: info.shape.iter().map(|&d| d as u64).collect(),
                byte_len: (info.data_offsets.1 - info.data_offsets.0) as u64,
                shard: None,
                slices: 0,
                object_path: None,
            });
            ranges.push(info.data_offsets);
        }
        let metadata = meta.metadata().clone().unwrap_or_default();
        // ckptconv's record of the Keras model the tensors came from, if it wrote them.
        let index: HashMap<&str, usize> = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let (layers, layer_order, h5_order) = metadata
            .get(crate::keras::record::METADATA_KEY)
            .and_then(|json| crate::keras::record::decode(json, &index))
            .unwrap_or((Vec::new(), crate::keras::Order::Recorded, false));
        Ok(SafetensorsSource {
            path: path.to_path_buf(),
            data: Data::Owned(Vec::new()),
            data_start,
            tensors,
            ranges,
            metadata,
            layers,
            layer_order,
            h5_order,
        })
    }

    /// The `__metadata__` map.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }
}

impl TensorSource for SafetensorsSource {
    fn format(&self) -> Format {
        Format::Safetensors
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn layers(&self) -> &[crate::keras::Layer] {
        &self.layers
    }

    fn layer_order(&self) -> crate::keras::Order {
        self.layer_order
    }

    fn h5_weight_order(&self) -> bool {
        self.h5_order
    }

    fn file_metadata(&self) -> Option<&HashMap<String, String>> {
        Some(&self.metadata)
    }

    fn release(&self, index: usize) {
        let (b, e) = self.ranges[index];
        if let Data::File(f) = &self.data {
            f.release((self.data_start + b) as u64, (e - b) as u64);
        }
    }

    fn stored_at(&self, index: usize) -> Option<(u32, u64)> {
        Some((0, (self.data_start + self.ranges[index].0) as u64))
    }

    fn file_range(&self, index: usize) -> Option<FileRange<'_>> {
        match &self.data {
            Data::File(f) => Some(FileRange {
                file: f.file(),
                offset: (self.data_start + self.ranges[index].0) as u64,
                check: None,
            }),
            Data::Owned(_) => None,
        }
    }

    fn read(&self, index: usize) -> Result<TensorData<'_>> {
        let (b, e) = self.ranges[index];
        let name = &self.tensors[index].name;
        let (start, end) = (self.data_start + b, self.data_start + e);
        let out_of_range = || {
            Error::corrupt_tensor(&self.path, name, "data out of range").with_field("data_offsets")
        };
        match &self.data {
            Data::File(f) => f
                .get(start as u64, (end - start) as u64, &self.path, name)
                .ok_or_else(out_of_range)?
                .map(TensorData::Bytes),
            Data::Owned(v) => v
                .get(start..end)
                .map(|s| TensorData::Bytes(Cow::Borrowed(s)))
                .ok_or_else(out_of_range),
        }
    }
}

/// The safetensors writer: `plan`'s tensors, in that order, with `metadata` in the
/// header.
pub struct SafetensorsWriter<'a> {
    /// What to write, under which names.
    pub plan: &'a [Planned],
    /// The header's `__metadata__`.
    pub metadata: HashMap<String, String>,
}

impl crate::write::Writer for SafetensorsWriter<'_> {
    fn check_names(&self, src: &dyn TensorSource, target: &Path) -> Result<()> {
        check_names(src, self.plan, target)
    }

    fn write(
        &self,
        src: &dyn TensorSource,
        target: &Path,
        out: &mut OutputSet,
        progress: &dyn Progress,
    ) -> Result<Vec<Skipped>> {
        write(src, self.plan, self.metadata.clone(), target, out, progress)
    }
}

/// Refuse (with [`crate::plan::check_names`], before anything is written) names a
/// safetensors file cannot hold.
fn check_names(src: &dyn TensorSource, plan: &[Planned], target: &Path) -> Result<()> {
    crate::plan::check_names(
        src.path(),
        target,
        crate::plan::Names::Safetensors,
        plan.iter().map(|p| {
            (
                p.name.as_str(),
                src.tensors()[p.index].name.as_str(),
                src.renamed(p.index),
            )
        }),
    )
}

/// Write `plan` from `src` as a safetensors file at `target` (through `out`). Tensors the
/// format cannot hold are returned as skipped. `progress` is told of every byte written.
fn write(
    src: &dyn TensorSource,
    plan: &[Planned],
    metadata: HashMap<String, String>,
    target: &Path,
    out: &mut OutputSet,
    progress: &dyn Progress,
) -> Result<Vec<Skipped>> {
    let mut skipped = Vec::new();
    let mut entries = Vec::new();
    let mut kept = Vec::new();
    let mut offset = 0usize;
    // Data in the source's own order where it has one (then key order): a source read
    // front to back.
    let mut plan: Vec<&Planned> = plan.iter().collect();
    plan.sort_by_key(|p| {
        let at = src.stored_at(p.index);
        (at.is_none(), at)
    });
    for p in plan {
        let t = &src.tensors()[p.index];
        if let Some(why) = unrepresentable(t.dtype) {
            skipped.push(Skipped {
                name: p.name.clone(),
                reason: why.to_string(),
            });
            continue;
        }
        let len = usize::try_from(t.byte_len)
            .map_err(|_| Error::unsupported_tensor(src.path(), &t.name, "tensor too large"))?;
        let end = offset + len;
        entries.push((
            p.name.clone(),
            StInfo {
                dtype: to_st(t.dtype).expect("checked above"),
                shape: t.shape.iter().map(|&d| d as usize).collect(),
                data_offsets: (offset, end),
            },
        ));
        kept.push(p);
        offset = end;
    }
    // The crate validates the header; we serialize it ourselves in a fixed order (its
    // `__metadata__` is a HashMap, whose order varies from run to run), so that the same
    // input always gives the same bytes.
    Metadata::new(Some(metadata.clone()), entries.clone()).map_err(|e| {
        Error::unsupported(
            src.path(),
            format!(
                "{}: cannot build a safetensors header: {e}",
                target.display()
            ),
        )
    })?;
    let mut header = b"{\"__metadata__\":".to_vec();
    let sorted: std::collections::BTreeMap<_, _> = metadata.into_iter().collect();
    header.extend(serde_json::to_vec(&sorted).expect("strings"));
    for (name, info) in &entries {
        header.push(b',');
        header.extend(serde_json::to_vec(name).expect("string"));
        header.push(b':');
        header.extend(serde_json::to_vec(info).expect("tensor info"));
    }
    header.push(b'}');
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let cancel = out.cancel().clone();
    let file = out.create(target)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let werr = |e: std::io::Error| Error::io(target, "write", e);
    w.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(werr)?;
    w.write_all(&header).map_err(werr)?;
    // The data, in one pipeline (read on one core, written on the other).
    let all: Vec<usize> = kept.iter().map(|p| p.index).collect();
    append_run(src, &all, &mut w, target, false, &cancel, progress)?;
    w.flush().map_err(werr)?;
    Ok(skipped)
}

/// The first key the header's top-level object repeats, if any.
fn repeated_key(text: &str) -> serde_json::Result<Option<String>> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut dup = None;
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(k.clone()) && dup.is_none() {
                    dup = Some(k);
                }
            }
            Ok(dup)
        }
    }
    serde_json::Deserializer::from_str(text).deserialize_map(Keys)
}
