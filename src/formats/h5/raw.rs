//! Thin, checked wrappers over the HDF5 C library for what the high-level crate does not
//! cover: classifying on-disk types (opaque, enum, compound), reading a dataset's raw
//! bytes without conversion, and reading string attributes of every flavour h5py writes
//! (fixed-length, variable-length, and the empty float array h5py writes for an empty
//! list).
//!
//! Every call runs under the `hdf5` crate's global lock (`hdf5::sync::sync`), and every
//! return code is checked; HDF5's own error printing is silenced by that crate, and its
//! error stack becomes the message of our error.

use hdf5::{Attribute, Dataset, Location};
use hdf5_sys::h5::herr_t;
use hdf5_sys::h5d::H5Dread;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::H5S_ALL;
use hdf5_sys::h5t::{self, H5T_class_t, H5T_order_t, H5T_sign_t, H5T_str_t};

/// What we need to know about an HDF5 datatype.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Int {
        size: usize,
        signed: bool,
    },
    Float {
        size: usize,
    },
    /// An enum over a 1-byte integer with members FALSE/TRUE: h5py's bool.
    Bool,
    /// Another enum: read as its base integer.
    Enum {
        size: usize,
        signed: bool,
    },
    /// A compound of two equal floats named r and i, packed: h5py's complex.
    Complex {
        part: usize,
    },
    Opaque {
        size: usize,
    },
    FixedString {
        size: usize,
        pad: StrPad,
    },
    VarString,
    Other(String),
}

/// How a fixed-length string is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StrPad {
    Null,
    Space,
}

/// A classified type plus its byte order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TypeInfo {
    pub kind: Kind,
    pub size: usize,
    pub big_endian: bool,
}

/// An owned HDF5 id closed on drop.
pub(crate) struct Id(
    pub(crate) hid_t,
    pub(crate) unsafe extern "C" fn(hid_t) -> herr_t,
);

impl Drop for Id {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: the id was returned open by the library and is closed exactly once.
            unsafe {
                (self.1)(self.0);
            }
        }
    }
}

/// Run `f` under the hdf5 crate's global lock. The first call also turns libhdf5's
/// plugin loading off: a file naming an unknown filter would otherwise make libhdf5
/// `dlopen` whatever sits in `HDF5_PLUGIN_PATH`.
pub(crate) fn h5<T>(f: impl FnOnce() -> T) -> T {
    static PLUGINS_OFF: std::sync::Once = std::sync::Once::new();
    PLUGINS_OFF.call_once(|| {
        extern "C" {
            // herr_t H5PLset_loading_state(unsigned int plugin_control_mask), H5PLpublic.h
            // (the sys crate declares its argument as a pointer).
            fn H5PLset_loading_state(plugin_control_mask: std::ffi::c_uint)
                -> hdf5_sys::h5::herr_t;
        }
        // SAFETY: a plain libhdf5 call with a bit mask, made under its lock; 0 disables
        // every kind of plugin.
        hdf5::sync::sync(|| unsafe {
            H5PLset_loading_state(0);
        });
    });
    hdf5::sync::sync(f)
}

/// Refuse a dataset whose bytes would come from anywhere but this file, or through
/// anything but libhdf5's built-in filters: HDF5 external storage (`external=[(path, …)]`
/// reads any local file), virtual datasets (other HDF5 files), and filters other than
/// deflate, shuffle and fletcher32 (plugins). The message names what the dataset asks for.
pub(crate) fn check_storage(ds: &hdf5::Dataset) -> Result<(), String> {
    use hdf5::filters::Filter;
    let dcpl = ds
        .dcpl()
        .map_err(|e| format!("its creation properties cannot be read: {e}"))?;
    let external = dcpl
        .get_external()
        .map_err(|e| format!("its external storage list cannot be read: {e}"))?;
    if let Some(f) = external.first() {
        return Err(format!(
            "stored in an external file ({:?}, {} file(s) in all); ckptconv reads only the file it is given",
            f.name,
            external.len()
        ));
    }
    if matches!(dcpl.layout(), hdf5::plist::dataset_create::Layout::Virtual) {
        return Err(
            "a virtual dataset, whose data comes from other HDF5 files; ckptconv reads only the file it is given"
                .into(),
        );
    }
    let filters = dcpl
        .get_filters()
        .map_err(|e| format!("its filters cannot be read: {e}"))?;
    for f in filters {
        match f {
            Filter::Deflate(_) | Filter::Shuffle | Filter::Fletcher32 => {}
            other => {
                return Err(format!(
                    "compressed with filter {}; only deflate, shuffle and fletcher32 are read (no filter plugins are loaded)",
                    other.id()
                ))
            }
        }
    }
    Ok(())
}

/// Most chunks of one dataset whose positions are checked one by one: libhdf5 1.10 finds
/// a chunk by its index by walking the chunk index from its start, so checking `n`
/// chunks costs `n²` steps. Past this, only their count is checked against the grid.
const MAX_CHUNKS_CHECKED: u64 = 4096;

/// Check that a dataset's shape is one its storage can hold, before anything is mapped or
/// read: each dimension within its maximum (libhdf5 1.14 refuses the dataset otherwise;
/// 1.10 does not), a contiguous or compact dataset's stored bytes exactly elements × the
/// element's size on disk, and a chunked one's allocated chunks no more than its chunk
/// grid holds, each inside the dataset and the file. A bit flipped in a dimension would
/// otherwise read a different shape, its bytes running past the dataset's own into
/// whatever the file holds next.
///
/// `elements`: the dataset's element count; `file_len`: the file's size; `addr_size`: the
/// size of the file's addresses (a variable-length element on disk is a length, a heap
/// address and an index).
pub(crate) fn check_extent(
    ds: &Dataset,
    info: &TypeInfo,
    elements: u64,
    file_len: u64,
    addr_size: u64,
) -> Result<(), String> {
    use hdf5::plist::dataset_create::Layout;
    let space = ds
        .space()
        .map_err(|e| format!("its dataspace cannot be read: {e}"))?;
    let dims = space.shape();
    let maxdims = space.maxdims();
    for (d, (&n, m)) in dims.iter().zip(&maxdims).enumerate() {
        if let Some(m) = m {
            if n > *m {
                let max: Vec<String> = maxdims
                    .iter()
                    .map(|m| m.map_or("unlimited".into(), |m| m.to_string()))
                    .collect();
                return Err(format!(
                    "its dataspace says dimension {d} is {n} but at most {m} (shape {dims:?}, \
                     maximum [{}]): a damaged dataspace",
                    max.join(", ")
                ));
            }
        }
    }
    let element_size = match info.kind {
        Kind::VarString => addr_size.checked_add(8).ok_or("address size overflows")?,
        _ => info.size as u64,
    };
    let need = elements
        .checked_mul(element_size)
        .ok_or("its byte size overflows")?;
    let layout = ds
        .dcpl()
        .map_err(|e| format!("its creation properties cannot be read: {e}"))?
        .layout();
    match layout {
        Layout::Contiguous | Layout::Compact => {
            let stored = ds.storage_size();
            // A contiguous dataset never written has no storage (it reads as its fill
            // value); one with storage has exactly its shape's bytes.
            let allocated = layout == Layout::Compact || ds.offset().is_some();
            if allocated && stored != need {
                return Err(format!(
                    "its shape {dims:?} of {element_size}-byte elements is {need} bytes, but \
                     the file stores {stored} for it: a damaged dataspace or layout"
                ));
            }
        }
        Layout::Chunked => {
            let chunk = ds.chunk().ok_or("chunked, but its chunk shape cannot be read")?;
            let grid = dims
                .iter()
                .zip(&chunk)
                .try_fold(1u64, |acc, (&n, &c)| {
                    acc.checked_mul((n as u64).div_ceil((c as u64).max(1)))
                })
                .ok_or("its chunk grid overflows")?;
            let n = h5(|| {
                let mut n: hdf5_sys::h5::hsize_t = 0;
                // SAFETY: an open dataset and its own dataspace; `n` is valid for writes.
                let code = unsafe {
                    hdf5_sys::h5d::H5Dget_num_chunks(ds.id(), space.id(), &mut n)
                };
                check(code as i64, "count its chunks").map(|_| n)
            })?;
            if n > grid {
                return Err(format!(
                    "{n} chunks stored but its shape {dims:?} in chunks of {chunk:?} holds \
                     {grid}: a damaged dataspace"
                ));
            }
            if n <= MAX_CHUNKS_CHECKED {
                for k in 0..n {
                    let c = ds
                        .chunk_info(k as usize)
                        .ok_or_else(|| format!("chunk {k} cannot be located"))?;
                    if let Some((d, _)) = c
                        .offset
                        .iter()
                        .zip(&dims)
                        .enumerate()
                        .find(|(_, (&o, &n))| o >= n as u64)
                    {
                        return Err(format!(
                            "chunk {k} starts at {:?}, outside its shape {dims:?} (dimension \
                             {d}): a damaged dataspace",
                            c.offset
                        ));
                    }
                    if c.addr.checked_add(c.size).is_none_or(|e| e > file_len) {
                        return Err(format!(
                            "chunk {k} ({} bytes at {}) lies past the end of the file \
                             ({file_len} bytes)",
                            c.size, c.addr
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Turn a negative HDF5 return code into the library's error message.
pub(crate) fn check(code: i64, what: &str) -> Result<(), String> {
    if code < 0 {
        let detail = hdf5::Error::query()
            .ok()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "HDF5 error".into());
        Err(format!("{what}: {detail}"))
    } else {
        Ok(())
    }
}

/// Classify the type `tid` (not consumed).
pub(crate) fn classify(tid: hid_t) -> Result<TypeInfo, String> {
    h5(|| {
        // SAFETY: `tid` is a valid open datatype id owned by the caller; every returned id
        // is wrapped in `Id` and closed on drop; names returned by the library are freed
        // with H5free_memory.
        unsafe {
            let class = h5t::H5Tget_class(tid);
            let size = h5t::H5Tget_size(tid);
            if size == 0 {
                check(-1, "datatype size")?;
            }
            let order = h5t::H5Tget_order(tid);
            let big_endian = order == H5T_order_t::H5T_ORDER_BE;
            let signed = h5t::H5Tget_sign(tid) == H5T_sign_t::H5T_SGN_2;
            let kind = match class {
                H5T_class_t::H5T_INTEGER => Kind::Int { size, signed },
                H5T_class_t::H5T_FLOAT => Kind::Float { size },
                H5T_class_t::H5T_OPAQUE => Kind::Opaque { size },
                H5T_class_t::H5T_STRING => {
                    let v = h5t::H5Tis_variable_str(tid);
                    check(v as i64, "string type")?;
                    if v > 0 {
                        Kind::VarString
                    } else {
                        let pad = match h5t::H5Tget_strpad(tid) {
                            H5T_str_t::H5T_STR_SPACEPAD => StrPad::Space,
                            _ => StrPad::Null,
                        };
                        Kind::FixedString { size, pad }
                    }
                }
                H5T_class_t::H5T_ENUM => {
                    let base = Id(h5t::H5Tget_super(tid), h5t::H5Tclose);
                    check(base.0, "enum base type")?;
                    let bsigned = h5t::H5Tget_sign(base.0) == H5T_sign_t::H5T_SGN_2;
                    let n = h5t::H5Tget_nmembers(tid);
                    let mut names = Vec::new();
                    for i in 0..n.max(0) as u32 {
                        names.push(member_name(tid, i));
                    }
                    if size == 1 && names == ["FALSE", "TRUE"] {
                        Kind::Bool
                    } else {
                        Kind::Enum {
                            size,
                            signed: bsigned,
                        }
                    }
                }
                H5T_class_t::H5T_COMPOUND => {
                    let n = h5t::H5Tget_nmembers(tid);
                    let mut complex = None;
                    if n == 2 {
                        let names = [member_name(tid, 0), member_name(tid, 1)];
                        let t0 = Id(h5t::H5Tget_member_type(tid, 0), h5t::H5Tclose);
                        let t1 = Id(h5t::H5Tget_member_type(tid, 1), h5t::H5Tclose);
                        let (s0, s1) = (h5t::H5Tget_size(t0.0), h5t::H5Tget_size(t1.0));
                        let floats = h5t::H5Tget_class(t0.0) == H5T_class_t::H5T_FLOAT
                            && h5t::H5Tget_class(t1.0) == H5T_class_t::H5T_FLOAT;
                        let o1 = h5t::H5Tget_member_offset(tid, 1);
                        let o0 = h5t::H5Tget_member_offset(tid, 0);
                        let le = h5t::H5Tget_order(t0.0) == H5T_order_t::H5T_ORDER_LE
                            && h5t::H5Tget_order(t1.0) == H5T_order_t::H5T_ORDER_LE;
                        if floats
                            && names[0] == "r"
                            && names[1] == "i"
                            && s0 == s1
                            && (s0 == 4 || s0 == 8)
                            && o0 == 0
                            && o1 == s0
                            && size == 2 * s0
                            && le
                        {
                            complex = Some(s0);
                        }
                    }
                    match complex {
                        Some(part) => Kind::Complex { part },
                        None => Kind::Other(format!("compound type with {n} members")),
                    }
                }
                other => Kind::Other(format!("{other:?}")),
            };
            Ok(TypeInfo {
                kind,
                size,
                big_endian,
            })
        }
    })
}

/// The name of member `i` of a compound or enum type.
///
/// # Safety
/// The caller holds libhdf5's lock, and `tid` is a valid compound or enum type id with
/// more than `i` members.
unsafe fn member_name(tid: hid_t, i: u32) -> String {
    let p = h5t::H5Tget_member_name(tid, i);
    if p.is_null() {
        return String::new();
    }
    let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
    hdf5_sys::h5::H5free_memory(p.cast());
    s
}

/// The on-disk datatype of a dataset, classified.
pub fn dataset_type(ds: &Dataset) -> Result<TypeInfo, String> {
    let dt = ds.dtype().map_err(|e| e.to_string())?;
    classify(dt.id())
}

/// Read a whole numeric/opaque dataset into `out` (exactly its size), converting only
/// the byte order to little-endian. An error unless `out.len()` is the dataset's element
/// count × its type's size: libhdf5 writes that many bytes, whatever the buffer.
pub(crate) fn read_dataset_le(ds: &Dataset, info: &TypeInfo, out: &mut [u8]) -> Result<(), String> {
    let dt = ds.dtype().map_err(|e| e.to_string())?;
    let need = (ds.size() as u64)
        .checked_mul(dt.size() as u64)
        .ok_or("the dataset's byte size overflows")?;
    if out.len() as u64 != need || dt.size() != info.size {
        return Err(format!(
            "a buffer of {} bytes for a dataset of {need} bytes ({} elements of {} bytes)",
            out.len(),
            ds.size(),
            dt.size()
        ));
    }
    h5(|| {
        // SAFETY: `mem` is a copy of the dataset's own type (so no conversion but the
        // byte order), whose size is the dataset's; `out` holds exactly elements × that
        // size bytes, checked above, which is what H5Dread writes with H5S_ALL.
        unsafe {
            let mem = Id(h5t::H5Tcopy(dt.id()), h5t::H5Tclose);
            check(mem.0, "copy datatype")?;
            if info.big_endian
                && matches!(
                    info.kind,
                    Kind::Int { .. } | Kind::Float { .. } | Kind::Enum { .. }
                )
            {
                check(
                    h5t::H5Tset_order(mem.0, H5T_order_t::H5T_ORDER_LE) as i64,
                    "set byte order",
                )?;
            }
            let code = H5Dread(
                ds.id(),
                mem.0,
                H5S_ALL,
                H5S_ALL,
                H5P_DEFAULT,
                out.as_mut_ptr().cast(),
            );
            check(code as i64, "read dataset")
        }
    })
}

/// Read variable-length strings from a dataset or attribute: as UTF-8 when the type says
/// so, else as ASCII (HDF5 converts only between matching character sets).
fn read_vlen(c: &hdf5::Container) -> Result<Vec<Vec<u8>>, String> {
    if let Ok(v) = c.read_raw::<hdf5::types::VarLenUnicode>() {
        return Ok(v.iter().map(|s| s.as_bytes().to_vec()).collect());
    }
    let v = c
        .read_raw::<hdf5::types::VarLenAscii>()
        .map_err(|e| e.to_string())?;
    Ok(v.iter().map(|s| s.as_bytes().to_vec()).collect())
}

fn trim_fixed(c: &[u8], pad: StrPad) -> Vec<u8> {
    let end = match pad {
        StrPad::Null => c.iter().position(|&b| b == 0).unwrap_or(c.len()),
        StrPad::Space => c.len() - c.iter().rev().take_while(|&&b| b == b' ').count(),
    };
    c[..end].to_vec()
}

/// Why a string attribute could not be read: over the ceiling on decoded strings
/// (`limit`), or anything else.
#[derive(Debug)]
pub(crate) struct AttrError {
    pub(crate) limit: bool,
    pub(crate) msg: String,
}

impl From<String> for AttrError {
    fn from(msg: String) -> Self {
        AttrError { limit: false, msg }
    }
}

impl std::fmt::Display for AttrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl AttrError {
    /// The same error with `what: ` before its message.
    pub(crate) fn context(self, what: &str) -> Self {
        AttrError {
            limit: self.limit,
            msg: format!("{what}: {}", self.msg),
        }
    }

    /// The crate's error about file `path`: a limit error past the ceiling, else corrupt.
    pub(crate) fn into_error(self, path: &std::path::Path) -> crate::error::Error {
        if self.limit {
            crate::error::Error::limit(path, self.msg)
        } else {
            crate::error::Error::corrupt(path, self.msg)
        }
    }
}

/// Read an attribute as a list of strings. Accepts fixed and variable-length strings,
/// scalars (one element), and empty numeric arrays (h5py's encoding of an empty list).
pub fn read_attr_strings(attr: &Attribute) -> Result<Vec<String>, String> {
    let dt = attr.dtype().map_err(|e| e.to_string())?;
    let info = classify(dt.id())?;
    let n = attr.size();
    match info.kind {
        Kind::VarString => Ok(read_vlen(attr)?
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()),
        Kind::FixedString { size, pad } => {
            let total = n
                .checked_mul(size)
                .ok_or_else(|| "attribute size overflows".to_string())?;
            let mut buf = vec![0u8; total];
            h5(|| {
                // SAFETY: buffer of exactly n × size bytes for the attribute's own type.
                let code =
                    unsafe { hdf5_sys::h5a::H5Aread(attr.id(), dt.id(), buf.as_mut_ptr().cast()) };
                check(code as i64, "read attribute")
            })?;
            Ok(buf
                .chunks(size)
                .map(|c| String::from_utf8_lossy(&trim_fixed(c, pad)).into_owned())
                .collect())
        }
        _ if n == 0 => Ok(Vec::new()),
        other => Err(format!("expected strings, found {other:?}")),
    }
}

/// A string attribute of `loc` that may be split into `name0`, `name1`, … when it is
/// larger than HDF5's 64 KiB object-header limit (Keras' `save_attributes_to_hdf5_group`).
/// `Ok(None)` when neither form exists. Variable-length string attributes are bounded
/// before they are read ([`bound_vlen_attr`]).
pub(crate) fn read_split_attr(loc: &Location, name: &str) -> Result<Option<Vec<String>>, AttrError> {
    let names = loc.attr_names().map_err(|e| e.to_string())?;
    let read = |n: &str| -> Result<Vec<String>, AttrError> {
        let a = loc.attr(n).map_err(|e| e.to_string())?;
        bound_vlen_attr(loc, n, &a)?;
        read_attr_strings(&a).map_err(|e| AttrError::from(format!("attribute {n}: {e}")))
    };
    if names.iter().any(|n| n == name) {
        return read(name).map(Some);
    }
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let part = format!("{name}{k}");
        if !names.iter().any(|n| n == &part) {
            break;
        }
        out.extend(read(&part)?);
        k += 1;
    }
    Ok((k > 0).then_some(out))
}

/// A scalar string attribute, if present.
pub(crate) fn read_str_attr(loc: &Location, name: &str) -> Result<Option<String>, AttrError> {
    Ok(read_split_attr(loc, name)?.and_then(|v| v.into_iter().next()))
}

/// Refuse variable-length string attribute `name` of `loc` (opened as `attr`) when its
/// strings would decode to more than [`STRING_EXPANSION`](super::STRING_EXPANSION) × the
/// file's size (at least [`MIN_UNBOUNDED`](super::MIN_UNBOUNDED)), before libhdf5 decodes
/// them.
///
/// Why it takes reading the object header ourselves: each element of such an attribute
/// is a length and a global heap id, and a crafted file can point thousands of them at
/// one large heap object; libhdf5 decodes an attribute whole (`H5Aread` has no
/// selections, and takes no memory manager of ours as dataset reads do), so 20,000
/// elements pointing at one 40 KB string in an 850 KB file became 1.6 GB. The lengths
/// are in the attribute's stored records, which sit in the object header's attribute
/// message: [`vlen_attr_total`] reads them there and adds them up.
///
/// An attribute whose elements could not decode past the ceiling even if each were as
/// large as the file is read without looking; one the header does not hold (dense
/// attribute storage, a shared message) cannot be bounded and is refused when it is
/// that large, with a limit error as for one over the ceiling.
fn bound_vlen_attr(loc: &Location, name: &str, attr: &Attribute) -> Result<(), AttrError> {
    let dt = attr.dtype().map_err(|e| e.to_string())?;
    if classify(dt.id())?.kind != Kind::VarString {
        return Ok(());
    }
    let n = attr.size() as u64;
    let file = std::path::PathBuf::from(loc.filename());
    let file_len = std::fs::metadata(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let ceiling = file_len
        .saturating_mul(super::STRING_EXPANSION)
        .max(super::MIN_UNBOUNDED);
    if n.saturating_mul(file_len) <= ceiling {
        return Ok(());
    }
    let limit = |msg: String| AttrError { limit: true, msg };
    match vlen_attr_total(loc, name, n, &file) {
        Ok(Some(total)) if total <= ceiling => Ok(()),
        Ok(Some(total)) => Err(limit(format!(
            "attribute {}: its {n} strings decode to {total} bytes, more than the {ceiling} \
             ckptconv reads from a file of {file_len} bytes ({}× its size, at least {}); its \
             elements must point at the same heap objects over and over, so it is not read",
            crate::error::short(name),
            super::STRING_EXPANSION,
            super::MIN_UNBOUNDED
        ))),
        Ok(None) => Err(limit(format!(
            "attribute {}: {n} variable-length strings stored outside its object header \
             (dense attribute storage), whose decoded size ckptconv cannot bound before \
             reading them; they could decode to more than the {ceiling} bytes it reads from \
             a file of {file_len} bytes, so it is not read",
            crate::error::short(name)
        ))),
        Err(e) => Err(AttrError::from(format!(
            "attribute {}: {e}",
            crate::error::short(name)
        ))),
    }
}

/// Most object header chunks followed (continuation messages) for one attribute.
const MAX_HEADER_CHUNKS: usize = 1024;

/// The sum of the element lengths of variable-length string attribute `name` (`n`
/// elements) of `loc`, read from its attribute message in the object header (HDF5 file
/// format specification, "Data Object Headers", version 1 and 2, and "Attribute
/// Message", versions 1 to 3). `Ok(None)`: the header holds no such message (the
/// attribute is in dense storage, or shared).
fn vlen_attr_total(
    loc: &Location,
    name: &str,
    n: u64,
    file: &std::path::Path,
) -> Result<Option<u64>, String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let file_len = f.metadata().map_err(|e| e.to_string())?.len();
    let fcpl = loc
        .file()
        .and_then(|x| x.fcpl())
        .map_err(|e| format!("file creation properties: {e}"))?;
    let sizes = fcpl.sizes();
    let (sa, ss) = (sizes.sizeof_addr as usize, sizes.sizeof_size as usize);
    // Addresses are relative to the superblock, after any user block.
    let base = fcpl.userblock();
    let r: hdf5::ObjectReference1 = loc
        .reference(".")
        .map_err(|e| format!("object address: {e}"))?;
    // SAFETY: `ObjectReference1` is `repr(transparent)` over `hobj_ref_t`, a `u64`: the
    // object's address in the file.
    let addr: u64 = unsafe { std::mem::transmute::<hdf5::ObjectReference1, u64>(r) };
    // Bytes read in all: a header's chunks are distinct parts of the file, so more than
    // the file's size is continuation messages pointing at the same bytes again.
    let spent = std::cell::Cell::new(0u64);
    let read = |at: u64, len: u64| -> Result<Vec<u8>, String> {
        spent.set(spent.get().saturating_add(len));
        if spent.get() > file_len.saturating_mul(2) {
            return Err("its object header reads the same bytes over and over (a loop?)".into());
        }
        let at = at.checked_add(base).ok_or("address overflows")?;
        if at.checked_add(len).is_none_or(|e| e > file_len) {
            return Err(format!(
                "object header bytes {at}..+{len} lie past the end of the file"
            ));
        }
        let mut b = vec![0u8; usize::try_from(len).map_err(|_| "header chunk too large")?];
        f.read_exact_at(&mut b, at).map_err(|e| e.to_string())?;
        Ok(b)
    };
    let uint = |b: &[u8], at: usize, w: usize| -> Option<u64> {
        let s = b.get(at..at.checked_add(w)?)?;
        Some(s.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
    };
    let bad = || "damaged object header".to_string();
    // (chunk bytes, where messages start, where they end, header version)
    let mut chunks: Vec<(Vec<u8>, usize, usize)> = Vec::new();
    let prefix = read(addr, 16.min(file_len.saturating_sub(addr)))?;
    let v2 = prefix.starts_with(b"OHDR");
    // Version 2: whether each message records its creation order (header flag bit 2).
    let mut ordered = false;
    if v2 {
        let flags = *prefix.get(5).ok_or_else(bad)?;
        ordered = flags & 0x04 != 0;
        let mut at = 6usize;
        if flags & 0x20 != 0 {
            at += 16;
        }
        if flags & 0x10 != 0 {
            at += 4;
        }
        let w = 1usize << (flags & 3);
        let head = read(addr, (at + w) as u64)?;
        let size = uint(&head, at, w).ok_or_else(bad)?;
        let total = (at + w) as u64 + size + 4;
        let b = read(addr, total)?;
        let end = b.len() - 4;
        chunks.push((b, at + w, end));
    } else {
        if prefix.first() != Some(&1) {
            return Err(format!(
                "object header version {:?} unknown",
                prefix.first()
            ));
        }
        let size = uint(&prefix, 8, 4).ok_or_else(bad)?;
        let b = read(addr, 16 + size)?;
        let end = b.len();
        chunks.push((b, 16, end));
    }
    let rec = 8 + sa;
    let want = n.checked_mul(rec as u64).ok_or("attribute size overflows")?;
    let mut k = 0;
    while k < chunks.len() {
        let mut more = Vec::new();
        {
            let (b, start, end) = &chunks[k];
            let mut at = *start;
            loop {
                // Message header: v1 type(2) size(2) flags(1) reserved(3); v2 type(1)
                // size(2) flags(1) [creation order(2)].
                let (mtype, msize, mflags, data) = if v2 {
                    let data = at + 4 + if ordered { 2 } else { 0 };
                    if data > *end {
                        break;
                    }
                    (b[at] as u64, uint(b, at + 1, 2).ok_or_else(bad)?, b[at + 3], data)
                } else {
                    if at + 8 > *end {
                        break;
                    }
                    (
                        uint(b, at, 2).ok_or_else(bad)?,
                        uint(b, at + 2, 2).ok_or_else(bad)?,
                        b[at + 4],
                        at + 8,
                    )
                };
                let next = data.checked_add(msize as usize).ok_or_else(bad)?;
                if next > *end {
                    return Err(bad());
                }
                let m = &b[data..next];
                match mtype {
                    // Continuation: another chunk of messages.
                    0x10 => {
                        let off = uint(m, 0, sa).ok_or_else(bad)?;
                        let len = uint(m, sa, ss).ok_or_else(bad)?;
                        more.push((off, len));
                    }
                    // An attribute, not shared (a shared one is elsewhere).
                    0x0C if mflags & 0x02 == 0 => {
                        if let Some(t) = attr_message_total(m, name, n, want, rec)? {
                            return Ok(Some(t));
                        }
                    }
                    _ => {}
                }
                at = next;
            }
        }
        for (off, len) in more {
            if chunks.len() >= MAX_HEADER_CHUNKS {
                return Err("object header continues in too many chunks (a loop?)".into());
            }
            let b = read(off, len)?;
            if v2 {
                if !b.starts_with(b"OCHK") || b.len() < 8 {
                    return Err(bad());
                }
                let end = b.len() - 4;
                chunks.push((b, 4, end));
            } else {
                let end = b.len();
                chunks.push((b, 0, end));
            }
        }
        k += 1;
    }
    Ok(None)
}

/// In attribute message `m`, if it is attribute `name`: the sum of the lengths of its
/// `n` variable-length elements (`rec` bytes each, `want` in all: a length, a heap
/// address, an index).
fn attr_message_total(
    m: &[u8],
    name: &str,
    n: u64,
    want: u64,
    rec: usize,
) -> Result<Option<u64>, String> {
    let u16at = |at: usize| -> Option<usize> {
        Some(u16::from_le_bytes(m.get(at..at + 2)?.try_into().ok()?) as usize)
    };
    let bad = || "damaged attribute message".to_string();
    let version = *m.first().ok_or_else(bad)?;
    let (ns, ds, ss) = (
        u16at(2).ok_or_else(bad)?,
        u16at(4).ok_or_else(bad)?,
        u16at(6).ok_or_else(bad)?,
    );
    let pad = |x: usize| if version == 1 { x.div_ceil(8) * 8 } else { x };
    let name_at = match version {
        1 | 2 => 8,
        3 => 9,
        _ => return Err(format!("attribute message version {version} unknown")),
    };
    let stored = m
        .get(name_at..name_at + ns)
        .ok_or_else(bad)?
        .split(|&c| c == 0)
        .next()
        .unwrap_or_default();
    if stored != name.as_bytes() {
        return Ok(None);
    }
    let data = name_at + pad(ns) + pad(ds) + pad(ss);
    let want = usize::try_from(want).map_err(|_| bad())?;
    let recs = m
        .get(data..data.checked_add(want).ok_or_else(bad)?)
        .ok_or_else(|| format!("its {n} elements do not fit in its attribute message"))?;
    Ok(Some(recs.chunks_exact(rec).fold(0u64, |acc, r| {
        acc.saturating_add(u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as u64)
    })))
}

/// Decoded bytes of one window of string elements (more for a single element, up to the
/// dataset's ceiling).
pub(crate) const STRING_WINDOW: u64 = 8 << 20;
/// Most elements read or written by one call.
pub(crate) const MAX_WINDOW_ELEMENTS: u64 = 1 << 16;

/// The next window of a row-major walk over a dataset of `shape` from element `pos`:
/// `(start, count)` of a single hyperslab of at most `want` (≥ 1) elements that begins at
/// `pos` and covers the elements after it in row-major order, and the number of elements
/// in it (at least 1 while `pos` is inside the dataset). A run of whole inner blocks
/// along one axis: along the outermost axis whose inner block fits in `want` and at
/// whose boundary `pos` lies.
pub(crate) fn window(shape: &[u64], pos: u64, want: u64) -> (Vec<u64>, Vec<u64>, u64) {
    let rank = shape.len();
    let want = want.max(1);
    // inner[d] = product of shape[d + 1..]
    let mut inner = vec![1u64; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        inner[d] = inner[d + 1].saturating_mul(shape[d + 1]);
    }
    let Some(d) = (0..rank).find(|&d| inner[d] <= want && pos % inner[d] == 0) else {
        return (Vec::new(), Vec::new(), 1);
    };
    // The coordinates of `pos`: zero below axis d, since pos is a multiple of inner[d].
    let mut start = vec![0u64; rank];
    let mut rest = pos / inner[d];
    for a in (0..=d).rev() {
        let dim = shape[a].max(1);
        start[a] = rest % dim;
        rest /= dim;
    }
    let m = (want / inner[d]).max(1).min(shape[d] - start[d]);
    let mut count = vec![1u64; rank];
    count[d] = m;
    count[d + 1..].copy_from_slice(&shape[d + 1..]);
    (start, count, m * inner[d])
}

/// The file dataspace of `ds` with the hyperslab `(start, count)` selected (everything for
/// a scalar, given empty vectors), and a memory dataspace of `n` elements.
///
/// # Safety
/// The caller holds libhdf5's lock; `ds` is an open dataset whose rank is `start.len()`.
pub(crate) unsafe fn select(
    ds: hid_t,
    start: &[u64],
    count: &[u64],
    n: u64,
) -> Result<(Id, Id), String> {
    use hdf5_sys::h5s::{H5Sclose, H5Screate_simple, H5Sselect_hyperslab, H5S_SELECT_SET};
    let file = Id(hdf5_sys::h5d::H5Dget_space(ds), H5Sclose);
    check(file.0, "dataspace")?;
    if !start.is_empty() {
        check(
            H5Sselect_hyperslab(
                file.0,
                H5S_SELECT_SET,
                start.as_ptr(),
                std::ptr::null(),
                count.as_ptr(),
                std::ptr::null(),
            ) as i64,
            "select elements",
        )?;
    }
    let dims = [n];
    let mem = Id(
        H5Screate_simple(1, dims.as_ptr(), std::ptr::null()),
        H5Sclose,
    );
    check(mem.0, "memory dataspace")?;
    Ok((file, mem))
}

/// The memory type strings are read and written as: variable-length, NUL-terminated, in
/// `cset` (libhdf5 converts between matching character sets only).
///
/// # Safety
/// The caller holds libhdf5's lock.
pub(crate) unsafe fn vlen_str_type(cset: h5t::H5T_cset_t) -> Result<Id, String> {
    let t = Id(h5t::H5Tcopy(*hdf5::globals::H5T_C_S1), h5t::H5Tclose);
    check(t.0, "string type")?;
    check(
        h5t::H5Tset_size(t.0, h5t::H5T_VARIABLE) as i64,
        "string size",
    )?;
    check(h5t::H5Tset_cset(t.0, cset) as i64, "string charset")?;
    Ok(t)
}

/// Memory for the strings libhdf5 decodes during one read (its variable-length memory
/// manager, `H5Pset_vlen_mem_manager`): handed out from blocks of our own, freed all at
/// once, and refused past `cap` bytes. A window of a dataset whose elements all point at
/// one large heap object then fails at `cap` instead of growing with the elements.
#[derive(Default)]
struct Arena {
    blocks: Vec<Box<[u8]>>,
    /// Bytes used in the last block.
    fill: usize,
    total: u64,
    cap: u64,
    over: bool,
}

const ARENA_BLOCK: usize = 1 << 20;

impl Arena {
    fn reset(&mut self, cap: u64) {
        self.blocks.truncate(1);
        self.fill = 0;
        self.total = 0;
        self.cap = cap;
        self.over = false;
    }

    fn alloc(&mut self, size: usize) -> *mut u8 {
        let Some(total) = self
            .total
            .checked_add(size as u64)
            .filter(|&t| t <= self.cap)
        else {
            self.over = true;
            return std::ptr::null_mut();
        };
        let Some(rounded) = size.max(1).checked_next_multiple_of(8) else {
            self.over = true;
            return std::ptr::null_mut();
        };
        let room = self.blocks.last().map_or(0, |b| b.len() - self.fill);
        if room < rounded {
            let len = rounded.max(ARENA_BLOCK);
            let mut v: Vec<u8> = Vec::new();
            if v.try_reserve_exact(len).is_err() {
                self.over = true;
                return std::ptr::null_mut();
            }
            v.resize(len, 0);
            self.blocks.push(v.into_boxed_slice());
            self.fill = 0;
        }
        let Some(block) = self.blocks.last_mut() else {
            return std::ptr::null_mut();
        };
        // SAFETY: `fill + rounded <= block.len()`, checked or made so above.
        let p = unsafe { block.as_mut_ptr().add(self.fill) };
        self.fill += rounded;
        self.total = total;
        p
    }
}

/// libhdf5's allocation callback: `info` is the `Arena` of the read in progress.
unsafe extern "C" fn arena_alloc(
    size: libc::size_t,
    info: *mut std::ffi::c_void,
) -> *mut std::ffi::c_void {
    // SAFETY: `info` is the `&mut Arena` passed with this callback for the duration of
    // the H5Dread that calls it (see `H5Strings::fill`), used by nothing else meanwhile.
    let arena = unsafe { &mut *info.cast::<Arena>() };
    arena.alloc(size).cast()
}

/// libhdf5's free callback: the arena frees everything at once.
unsafe extern "C" fn arena_free(_mem: *mut std::ffi::c_void, _info: *mut std::ffi::c_void) {}

/// Why reading a string dataset stopped.
#[derive(Debug)]
pub(crate) enum StringsError {
    /// Its strings decode to more than the ceiling.
    Ceiling(u64),
    /// Anything else (libhdf5's message).
    Other(String),
}

/// A string dataset read a window of elements at a time: variable-length strings decoded
/// into an [`Arena`] of at most [`STRING_WINDOW`] bytes (or one element), fixed-length
/// ones into a buffer of about that size. All the elements decoded add up to at most
/// `ceiling` bytes; past it reading stops with [`StringsError::Ceiling`], whatever the
/// elements point at.
pub(crate) struct H5Strings {
    ds: Dataset,
    info: TypeInfo,
    shape: Vec<u64>,
    n: u64,
    /// Decoded bytes still allowed.
    budget: u64,
    ceiling: u64,
    /// Elements to ask for in the next window.
    want: u64,
    /// Element index of the first element of the window held, and its element count.
    pos: u64,
    held: u64,
    /// Next element of the window to hand out.
    next: u64,
    arena: Box<Arena>,
    /// Variable-length: a pointer per element of the window (into the arena).
    ptrs: Vec<*mut std::os::raw::c_char>,
    /// Fixed-length: the window's bytes.
    fixed: Vec<u8>,
    mem_type: Option<Id>,
    xfer: Option<Id>,
}

// SAFETY: the raw pointers point into `arena`, owned by the same value and only used by
// its owner; every libhdf5 call is made under the library's lock.
unsafe impl Send for H5Strings {}

impl H5Strings {
    /// Start reading string dataset `ds` (of type `info`); its strings may decode to at
    /// most `ceiling` bytes in all.
    pub(crate) fn open(ds: &Dataset, info: &TypeInfo, ceiling: u64) -> Result<H5Strings, String> {
        let shape: Vec<u64> = ds.shape().iter().map(|&d| d as u64).collect();
        let n = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or("element count overflows")?;
        let (mem_type, xfer, want) = match info.kind {
            Kind::VarString => h5(|| {
                // SAFETY: every id is checked and owned by an `Id`; the dataset's type is
                // closed by its handle.
                unsafe {
                    let dt = ds.dtype().map_err(|e| e.to_string())?;
                    let t = vlen_str_type(h5t::H5Tget_cset(dt.id()))?;
                    let x = Id(
                        hdf5_sys::h5p::H5Pcreate(*hdf5::globals::H5P_DATASET_XFER),
                        hdf5_sys::h5p::H5Pclose,
                    );
                    check(x.0, "transfer properties")?;
                    Ok::<_, String>((Some(t), Some(x), 4096))
                }
            })?,
            Kind::FixedString { size, .. } => {
                let total = n
                    .checked_mul(size as u64)
                    .ok_or("string dataset size overflows")?;
                if total > ceiling {
                    return Err(format!(
                        "{n} strings of {size} bytes are {total} bytes, more than the file can hold ({ceiling})"
                    ));
                }
                (None, None, (STRING_WINDOW / size.max(1) as u64).max(1))
            }
            _ => return Err("not a string dataset".into()),
        };
        Ok(H5Strings {
            ds: ds.clone(),
            info: info.clone(),
            shape,
            n,
            budget: ceiling,
            ceiling,
            want,
            pos: 0,
            held: 0,
            next: 0,
            arena: Box::default(),
            ptrs: Vec::new(),
            fixed: Vec::new(),
            mem_type,
            xfer,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.n
    }

    /// The next element, `None` after the last.
    pub(crate) fn next(&mut self) -> Result<Option<&[u8]>, StringsError> {
        if self.next == self.held {
            self.pos += self.held;
            self.held = 0;
            self.next = 0;
            if self.pos >= self.n {
                return Ok(None);
            }
            self.fill()?;
        }
        let k = self.next as usize;
        self.next += 1;
        Ok(Some(match self.info.kind {
            Kind::FixedString { size, pad } => {
                let c = &self.fixed[k * size..(k + 1) * size];
                let end = match pad {
                    StrPad::Null => c.iter().position(|&b| b == 0).unwrap_or(c.len()),
                    StrPad::Space => c.len() - c.iter().rev().take_while(|&&b| b == b' ').count(),
                };
                &c[..end]
            }
            _ => {
                let p = self.ptrs[k];
                if p.is_null() {
                    &[]
                } else {
                    // SAFETY: libhdf5 wrote a NUL-terminated string into the arena, which
                    // stays untouched until the next `fill`, after this borrow ends.
                    unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes()
                }
            }
        }))
    }

    /// Read the window starting at `self.pos`.
    fn fill(&mut self) -> Result<(), StringsError> {
        loop {
            let (start, count, m) = window(&self.shape, self.pos, self.want);
            let m = m.min(self.n - self.pos);
            let mlen =
                usize::try_from(m).map_err(|_| StringsError::Other("window too large".into()))?;
            if let Kind::FixedString { size, .. } = self.info.kind {
                self.fixed.clear();
                self.fixed.resize(mlen * size, 0);
                let (ds, fixed) = (&self.ds, &mut self.fixed);
                h5(|| {
                    // SAFETY: the memory type is a copy of the dataset's own (no
                    // conversion), `fixed` holds exactly m elements of its size, and the
                    // selections hold m elements each.
                    unsafe {
                        let (file, mem) = select(ds.id(), &start, &count, m)?;
                        let dt = ds.dtype().map_err(|e| e.to_string())?;
                        let t = Id(h5t::H5Tcopy(dt.id()), h5t::H5Tclose);
                        check(t.0, "copy datatype")?;
                        check(
                            H5Dread(
                                ds.id(),
                                t.0,
                                mem.0,
                                file.0,
                                H5P_DEFAULT,
                                fixed.as_mut_ptr().cast(),
                            ) as i64,
                            "read strings",
                        )
                    }
                })
                .map_err(StringsError::Other)?;
                self.held = m;
                return Ok(());
            }
            let cap = if m == 1 {
                self.budget
            } else {
                self.budget.min(STRING_WINDOW)
            };
            self.arena.reset(cap);
            self.ptrs.clear();
            self.ptrs.resize(mlen, std::ptr::null_mut());
            let mem_type = self.mem_type.as_ref().map_or(-1, |t| t.0);
            let xfer = self.xfer.as_ref().map_or(-1, |t| t.0);
            let arena: *mut Arena = &mut *self.arena;
            let (ds, ptrs) = (&self.ds, &mut self.ptrs);
            let read = h5(|| {
                // SAFETY: the transfer list hands libhdf5 our allocator, whose `info` is
                // the arena, alive and otherwise unused during this call; `ptrs` holds m
                // pointers, what m variable-length strings take in memory, and the
                // selections hold m elements each.
                unsafe {
                    check(
                        hdf5_sys::h5p::H5Pset_vlen_mem_manager(
                            xfer,
                            Some(arena_alloc),
                            arena.cast(),
                            Some(arena_free),
                            std::ptr::null_mut(),
                        ) as i64,
                        "memory manager",
                    )?;
                    let (file, mem) = select(ds.id(), &start, &count, m)?;
                    check(
                        H5Dread(
                            ds.id(),
                            mem_type,
                            mem.0,
                            file.0,
                            xfer,
                            ptrs.as_mut_ptr().cast(),
                        ) as i64,
                        "read strings",
                    )
                }
            });
            match read {
                Ok(()) => {
                    let used = self.arena.total;
                    self.budget -= used.min(self.budget);
                    if used < STRING_WINDOW / 4 {
                        self.want = (self.want * 2).min(MAX_WINDOW_ELEMENTS);
                    }
                    self.held = m;
                    return Ok(());
                }
                Err(_) if self.arena.over && m > 1 => self.want = (m / 4).max(1),
                Err(_) if self.arena.over => return Err(StringsError::Ceiling(self.ceiling)),
                Err(e) => return Err(StringsError::Other(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::window;

    /// Windows cover every element once, in row-major order, each at most `want`.
    #[test]
    fn windows_walk_the_dataset_in_order() {
        for (shape, want) in [
            (vec![], 5u64),
            (vec![10], 3),
            (vec![4, 5], 7),
            (vec![3, 4, 5], 1),
            (vec![3, 4, 5], 21),
            (vec![3, 4, 5], 1000),
            (vec![2, 1, 3], 2),
        ] {
            let n: u64 = shape.iter().product();
            let mut pos = 0;
            while pos < n {
                let (start, count, m) = window(&shape, pos, want);
                assert!(m >= 1 && m <= want.max(1), "{shape:?} {pos} {want}: {m}");
                assert_eq!(count.iter().product::<u64>(), m);
                // The window starts at `pos`, row-major.
                let flat = start
                    .iter()
                    .zip(&shape)
                    .fold(0u64, |acc, (&s, &d)| acc * d + s);
                assert_eq!(flat, pos, "{shape:?} {want}");
                for (d, (&s, &c)) in start.iter().zip(&count).enumerate() {
                    assert!(s + c <= shape[d], "{shape:?} {pos} {want}");
                }
                pos += m;
            }
            assert_eq!(pos, n, "{shape:?} {want}");
        }
    }
}
