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

/// Read a string dataset: one byte string per element.
pub fn read_dataset_strings(ds: &Dataset, info: &TypeInfo) -> Result<Vec<Vec<u8>>, String> {
    match info.kind {
        Kind::VarString => read_vlen(ds),
        Kind::FixedString { size, pad } => {
            let n = ds.size();
            let total = n
                .checked_mul(size)
                .ok_or_else(|| "string dataset size overflows".to_string())?;
            let mut buf = vec![0u8; total];
            read_dataset_le(ds, info, &mut buf)?;
            Ok(buf.chunks(size).map(|c| trim_fixed(c, pad)).collect())
        }
        _ => Err("not a string dataset".into()),
    }
}

fn trim_fixed(c: &[u8], pad: StrPad) -> Vec<u8> {
    let end = match pad {
        StrPad::Null => c.iter().position(|&b| b == 0).unwrap_or(c.len()),
        StrPad::Space => c.len() - c.iter().rev().take_while(|&&b| b == b' ').count(),
    };
    c[..end].to_vec()
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
/// `Ok(None)` when neither form exists.
pub fn read_split_attr(loc: &Location, name: &str) -> Result<Option<Vec<String>>, String> {
    let names = loc.attr_names().map_err(|e| e.to_string())?;
    if names.iter().any(|n| n == name) {
        let a = loc.attr(name).map_err(|e| e.to_string())?;
        return read_attr_strings(&a)
            .map(Some)
            .map_err(|e| format!("attribute {name}: {e}"));
    }
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let part = format!("{name}{k}");
        if !names.iter().any(|n| n == &part) {
            break;
        }
        let a = loc.attr(&part).map_err(|e| e.to_string())?;
        out.extend(read_attr_strings(&a).map_err(|e| format!("attribute {part}: {e}"))?);
        k += 1;
    }
    Ok((k > 0).then_some(out))
}

/// A scalar string attribute, if present.
pub fn read_str_attr(loc: &Location, name: &str) -> Result<Option<String>, String> {
    Ok(read_split_attr(loc, name)?.and_then(|v| v.into_iter().next()))
}
