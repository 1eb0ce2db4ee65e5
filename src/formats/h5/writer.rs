//! Writing Keras HDF5 weight files (design §4.3).
//!
//! Layout `keras` (default) is what Keras 2 `save_weights('x.h5')` writes and what both
//! tf-keras and Keras 3 `load_weights('x.h5')` read:
//!
//! ```text
//! /  attrs layer_names = [every layer, model order] (split into layer_names0, 1, … past
//!          64512 bytes), backend = "tensorflow", keras_version
//! /<layer>  attr weight_names = ["<variable>:0", …] in load order
//! /<layer>/<variable>:0   dataset ('/' in the variable nests groups)
//! /optimizer_weights      tensors that belong to no layer (optimizer state, counters)
//! ```
//!
//! Layers come from the source (Keras files, Keras TF-format checkpoints); otherwise every
//! variable's first path component is its layer, in order of first appearance. Layout
//! `flat` writes one dataset per tensor at its variable-name path.
//!
//! Types are written the way h5py and Keras write them: little-endian integers and floats
//! (float16 as IEEE half), bool as an int8 enum FALSE/TRUE, complex as a compound of `r`
//! and `i`, bfloat16 (and float8) as opaque data with attribute `dtype`, strings as
//! variable-length UTF-8. Data is written from the source's bytes with no conversion.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::Path;

use hdf5_sys::h5a::{H5Aclose, H5Acreate2, H5Awrite};
use hdf5_sys::h5d::{H5Dclose, H5Dcreate2, H5Dwrite};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5S_class_t, H5Sclose, H5Screate, H5Screate_simple, H5S_ALL};
use hdf5_sys::h5t::{self, H5T_class_t, H5T_cset_t, H5T_str_t};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::output::{check_interrupted, OutputSet};
use crate::plan::{Planned, Skipped};
use crate::tensor::{write_with_crc, TensorData, TensorSource};

/// The largest attribute Keras writes in one piece (`HDF5_OBJECT_HEADER_LIMIT`).
const ATTR_LIMIT: usize = 64512;

/// Which HDF5 layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H5Layout {
    /// Keras 2 `save_weights` layout.
    Keras,
    /// One dataset per tensor at its name path.
    Flat,
}

use super::raw::{check, h5, Id};

/// An HDF5 datatype for `d`, as h5py / Keras write it. Caller holds the lock.
unsafe fn make_type(d: DType) -> std::result::Result<Id, String> {
    use hdf5::globals as g;
    let copy = |id: hid_t| Id(h5t::H5Tcopy(id), h5t::H5Tclose);
    let t = match d {
        DType::Int8 => copy(*g::H5T_STD_I8LE),
        DType::Int16 => copy(*g::H5T_STD_I16LE),
        DType::Int32 => copy(*g::H5T_STD_I32LE),
        DType::Int64 => copy(*g::H5T_STD_I64LE),
        DType::UInt8 => copy(*g::H5T_STD_U8LE),
        DType::UInt16 => copy(*g::H5T_STD_U16LE),
        DType::UInt32 => copy(*g::H5T_STD_U32LE),
        DType::UInt64 => copy(*g::H5T_STD_U64LE),
        DType::Float32 => copy(*g::H5T_IEEE_F32LE),
        DType::Float64 => copy(*g::H5T_IEEE_F64LE),
        DType::Float16 => {
            // h5py's IEEE half: sign bit 15, exponent at 10 (5 bits), mantissa at 0 (10 bits).
            let t = copy(*g::H5T_IEEE_F32LE);
            check(
                h5t::H5Tset_fields(t.0, 15, 10, 5, 0, 10) as i64,
                "float16 fields",
            )?;
            check(h5t::H5Tset_size(t.0, 2) as i64, "float16 size")?;
            check(h5t::H5Tset_ebias(t.0, 15) as i64, "float16 bias")?;
            t
        }
        DType::Bool => {
            let t = Id(h5t::H5Tenum_create(*g::H5T_NATIVE_INT8), h5t::H5Tclose);
            check(t.0, "bool enum")?;
            for (name, v) in [("FALSE", 0i8), ("TRUE", 1i8)] {
                let c = CString::new(name).expect("no NUL");
                check(
                    h5t::H5Tenum_insert(t.0, c.as_ptr(), (&v as *const i8).cast()) as i64,
                    "bool enum member",
                )?;
            }
            t
        }
        DType::Complex64 | DType::Complex128 => {
            let (part, ptype) = if d == DType::Complex64 {
                (4usize, *g::H5T_IEEE_F32LE)
            } else {
                (8, *g::H5T_IEEE_F64LE)
            };
            let t = Id(
                h5t::H5Tcreate(H5T_class_t::H5T_COMPOUND, 2 * part),
                h5t::H5Tclose,
            );
            check(t.0, "complex type")?;
            for (name, off) in [("r", 0usize), ("i", part)] {
                let c = CString::new(name).expect("no NUL");
                check(
                    h5t::H5Tinsert(t.0, c.as_ptr(), off, ptype) as i64,
                    "complex member",
                )?;
            }
            t
        }
        DType::BFloat16 | DType::Float8E5M2 | DType::Float8E4M3FN => {
            let size = d.size().expect("fixed size");
            Id(h5t::H5Tcreate(H5T_class_t::H5T_OPAQUE, size), h5t::H5Tclose)
        }
        DType::String => {
            let t = copy(*g::H5T_C_S1);
            check(
                h5t::H5Tset_size(t.0, h5t::H5T_VARIABLE) as i64,
                "string size",
            )?;
            check(
                h5t::H5Tset_cset(t.0, H5T_cset_t::H5T_CSET_UTF8) as i64,
                "string charset",
            )?;
            t
        }
    };
    check(t.0, "create datatype")?;
    Ok(t)
}

unsafe fn make_space(shape: &[u64]) -> std::result::Result<Id, String> {
    let s = if shape.is_empty() {
        Id(H5Screate(H5S_class_t::H5S_SCALAR), H5Sclose)
    } else {
        let dims: Vec<u64> = shape.to_vec();
        Id(
            H5Screate_simple(dims.len() as i32, dims.as_ptr(), std::ptr::null()),
            H5Sclose,
        )
    };
    check(s.0, "create dataspace")?;
    Ok(s)
}

/// Open or create every group along `path` below `root`.
fn ensure_group(root: &hdf5::Group, path: &[&str]) -> std::result::Result<hdf5::Group, String> {
    let mut g = root.clone();
    for c in path {
        g = if g.link_exists(c) {
            g.group(c).map_err(|e| format!("{c}: {e}"))?
        } else {
            g.create_group_builder()
                .obj_track_times(false)
                .create(*c)
                .map_err(|e| format!("{c}: {e}"))?
        };
    }
    Ok(g)
}

/// Write one dataset `name` in `parent`, from `data`.
fn write_dataset(
    parent: &hdf5::Group,
    name: &str,
    dtype: DType,
    shape: &[u64],
    data: &TensorData<'_>,
) -> std::result::Result<(), String> {
    let cname = CString::new(name).map_err(|_| format!("name {name:?} contains a NUL byte"))?;
    let cstrings: Vec<CString>;
    let ptrs: Vec<*const std::os::raw::c_char>;
    let buf: *const std::ffi::c_void = match data {
        TensorData::Bytes(b) => b.as_ptr().cast(),
        TensorData::Strings(s) => {
            cstrings = s
                .iter()
                .map(|x| CString::new(x.clone()))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| {
                    "a string contains a NUL byte, which HDF5 strings cannot hold".to_string()
                })?;
            ptrs = cstrings.iter().map(|c| c.as_ptr()).collect();
            ptrs.as_ptr().cast()
        }
    };
    let empty = match data {
        TensorData::Bytes(b) => b.is_empty(),
        TensorData::Strings(s) => s.is_empty(),
    };
    h5(|| {
        // SAFETY: type, space and dataset ids are checked and closed by `Id`; `buf` points
        // to exactly elements × type size bytes (numeric: the tensor's bytes, whose length
        // the reader checked against the shape; strings: one pointer per element).
        unsafe {
            let t = make_type(dtype)?;
            let s = make_space(shape)?;
            let dcpl = Id(
                hdf5_sys::h5p::H5Pcreate(*hdf5::globals::H5P_DATASET_CREATE),
                hdf5_sys::h5p::H5Pclose,
            );
            check(dcpl.0, "dataset creation properties")?;
            check(
                hdf5_sys::h5p::H5Pset_obj_track_times(dcpl.0, 0) as i64,
                "disable modification times",
            )?;
            let ds = Id(
                H5Dcreate2(
                    parent.id(),
                    cname.as_ptr(),
                    t.0,
                    s.0,
                    H5P_DEFAULT,
                    dcpl.0,
                    H5P_DEFAULT,
                ),
                H5Dclose,
            );
            check(ds.0, "create dataset")?;
            if !empty {
                check(
                    H5Dwrite(ds.0, t.0, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) as i64,
                    "write dataset",
                )?;
            }
            Ok::<_, String>(())
        }
    })?;
    if matches!(
        dtype,
        DType::BFloat16 | DType::Float8E5M2 | DType::Float8E4M3FN
    ) {
        let ds = parent.dataset(name).map_err(|e| e.to_string())?;
        write_str_attr(&ds, "dtype", dtype.name())?;
    }
    Ok(())
}

fn write_str_attr(
    loc: &hdf5::Location,
    name: &str,
    value: &str,
) -> std::result::Result<(), String> {
    let v: hdf5::types::VarLenUnicode = value.parse().map_err(|e| format!("{e:?}"))?;
    loc.new_attr::<hdf5::types::VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .map_err(|e| format!("attribute {name}: {e}"))
}

/// A list-of-strings attribute as Keras writes it: fixed-length byte strings, an empty
/// float64 array for an empty list, and split into `name0`, `name1`, … when larger than
/// 64512 bytes.
fn write_names_attr(
    loc: &hdf5::Location,
    name: &str,
    values: &[String],
) -> std::result::Result<(), String> {
    let width = values.iter().map(|v| v.len()).max().unwrap_or(0).max(1);
    let chunk = (ATTR_LIMIT / width).max(1);
    let pieces: Vec<&[String]> = if values.is_empty() {
        vec![&[]]
    } else {
        values.chunks(chunk).collect()
    };
    for (k, piece) in pieces.iter().enumerate() {
        let aname = if pieces.len() == 1 {
            name.to_string()
        } else {
            format!("{name}{k}")
        };
        let cname = CString::new(aname.clone()).map_err(|_| "NUL in attribute name".to_string())?;
        let mut buf = vec![0u8; piece.len() * width];
        for (i, v) in piece.iter().enumerate() {
            buf[i * width..i * width + v.len()].copy_from_slice(v.as_bytes());
        }
        h5(|| {
            // SAFETY: ids are checked and closed by `Id`; `buf` holds n × width bytes for
            // a fixed-length string type of `width` bytes (or nothing for an empty array).
            unsafe {
                let (t, dims) = if piece.is_empty() {
                    (
                        Id(h5t::H5Tcopy(*hdf5::globals::H5T_IEEE_F64LE), h5t::H5Tclose),
                        [0u64],
                    )
                } else {
                    let t = Id(h5t::H5Tcopy(*hdf5::globals::H5T_C_S1), h5t::H5Tclose);
                    check(t.0, "string type")?;
                    check(h5t::H5Tset_size(t.0, width) as i64, "string size")?;
                    check(
                        h5t::H5Tset_strpad(t.0, H5T_str_t::H5T_STR_NULLPAD) as i64,
                        "string pad",
                    )?;
                    (t, [piece.len() as u64])
                };
                check(t.0, "attribute type")?;
                let s = Id(
                    H5Screate_simple(1, dims.as_ptr(), std::ptr::null()),
                    H5Sclose,
                );
                check(s.0, "attribute space")?;
                let a = Id(
                    H5Acreate2(loc.id(), cname.as_ptr(), t.0, s.0, H5P_DEFAULT, H5P_DEFAULT),
                    H5Aclose,
                );
                check(a.0, &format!("create attribute {aname}"))?;
                if !piece.is_empty() {
                    check(
                        H5Awrite(a.0, t.0, buf.as_ptr().cast()) as i64,
                        &format!("write attribute {aname}"),
                    )?;
                }
                Ok::<_, String>(())
            }
        })?;
    }
    Ok(())
}

/// Write `plan` (names are variable names) from `src` as an HDF5 file at `target`.
pub fn write(
    src: &dyn TensorSource,
    plan: &[Planned],
    layout: H5Layout,
    target: &Path,
    out: &mut OutputSet,
    progress: &dyn Fn(u64),
) -> Result<Vec<Skipped>> {
    let temp = out.temp_path(target);
    let werr = |w: String| Error::io(target, "write", std::io::Error::other(w));
    // No file locking: the temporary file is ours alone, and libhdf5 opens files without
    // O_CLOEXEC, so a lock would leak into any child process forked meanwhile (by a
    // program embedding this library) and keep the finished file locked.
    // No object modification times either: the same input must give the same bytes.
    let file = hdf5::File::with_options()
        // Datasets of 1 MiB and more start on a 64 KiB boundary: reading them back, the
        // kernel copies page-aligned ranges several times faster (see `output::append_run`).
        .with_fapl(|p| {
            p.file_locking(false)
                .libver_v18()
                .alignment(1 << 20, 64 << 10)
        })
        .with_fcpl(|p| p.obj_track_times(false))
        .create(&temp)
        .map_err(|e| werr(e.to_string()))?;
    // Every group and dataset handle lives inside `write_body`, so that all are closed
    // before the file: libhdf5 keeps a file open (and locked) while any object in it is.
    let skipped = write_body(src, plan, layout, target, &file, progress)?;
    file.flush().map_err(|e| werr(e.to_string()))?;
    file.close().map_err(|e| werr(e.to_string()))?;
    Ok(skipped)
}

fn write_body(
    src: &dyn TensorSource,
    plan: &[Planned],
    layout: H5Layout,
    target: &Path,
    file: &hdf5::File,
    progress: &dyn Fn(u64),
) -> Result<Vec<Skipped>> {
    let werr = |w: String| Error::io(target, "write", std::io::Error::other(w));
    let root = file.as_group().map_err(|e| werr(e.to_string()))?;
    // Decide what cannot be written before any attribute names it.
    let mut skipped = Vec::new();
    let mut kept: Vec<Planned> = Vec::with_capacity(plan.len());
    for p in plan {
        if src.tensors()[p.index].dtype == DType::String {
            if let TensorData::Strings(s) = src.read(p.index)? {
                if s.iter().any(|x| x.contains(&0)) {
                    skipped.push(Skipped {
                        name: p.name.clone(),
                        reason: "string tensor with NUL bytes, which HDF5 strings cannot hold"
                            .into(),
                    });
                    continue;
                }
            }
        }
        kept.push(p.clone());
    }
    let plan = kept.as_slice();
    let put = |group: &hdf5::Group, path: &str, p: &Planned| -> Result<()> {
        check_interrupted()?;
        let t = &src.tensors()[p.index];
        let (data, check) = src.read_unchecked(p.index)?;
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let (leaf, dirs) = comps
            .split_last()
            .ok_or_else(|| Error::Usage(format!("tensor {:?} has an empty name", t.name)))?;
        let g = ensure_group(group, dirs).map_err(|w| werr(format!("{path}: {w}")))?;
        if g.link_exists(leaf) {
            return Err(Error::Usage(format!(
                "{}: two tensors would both be written at {path:?}",
                target.display()
            )));
        }
        // A checkpoint's stored crc32c is checked on a second thread while libhdf5 writes.
        let bytes = data.as_bytes().unwrap_or_default();
        let ((), crc) = write_with_crc(bytes, check.is_some(), || {
            write_dataset(&g, leaf, t.dtype, &t.shape, &data)
                .map_err(|w| werr(format!("{path}: {w}")))
        })?;
        if let (Some(c), Some(crc)) = (check, crc) {
            c.check(crc)?;
        }
        drop(data);
        src.release(p.index);
        progress(t.byte_len);
        Ok(())
    };
    match layout {
        H5Layout::Flat => {
            for p in plan {
                put(&root, &p.name, p)?;
            }
        }
        H5Layout::Keras => {
            let (layers, rest) = keras_groups(src, plan);
            let names: Vec<String> = layers.iter().map(|(n, _)| n.clone()).collect();
            write_names_attr(&root, "layer_names", &names).map_err(werr)?;
            write_str_attr(&root, "backend", "tensorflow").map_err(werr)?;
            write_str_attr(&root, "keras_version", "2.21.0").map_err(werr)?;
            write_str_attr(&root, "ckptconv_version", env!("CARGO_PKG_VERSION")).map_err(werr)?;
            for (lname, weights) in &layers {
                // Layer names are unique: create the group without first asking whether it
                // exists (a lookup in the root's index of every layer, which dominated
                // writing files of many small layers).
                let g = match root
                    .create_group_builder()
                    .obj_track_times(false)
                    .create(lname.as_str())
                {
                    Ok(g) => g,
                    Err(_) => ensure_group(&root, &[lname.as_str()]).map_err(werr)?,
                };
                let wnames: Vec<String> = weights.iter().map(|p| format!("{}:0", p.name)).collect();
                write_names_attr(&g, "weight_names", &wnames).map_err(werr)?;
                for (p, w) in weights.iter().zip(&wnames) {
                    put(&g, w, p)?;
                }
            }
            if !rest.is_empty() {
                let g = ensure_group(&root, &["optimizer_weights"]).map_err(werr)?;
                let wnames: Vec<String> = rest.iter().map(|p| format!("{}:0", p.name)).collect();
                write_names_attr(&g, "weight_names", &wnames).map_err(werr)?;
                for (p, w) in rest.iter().zip(&wnames) {
                    put(&g, w, p)?;
                }
            }
        }
    }
    Ok(skipped)
}

/// Group the planned tensors into Keras layers: the source's layers when it has them
/// (every layer listed, weightless ones too), else by first name component. Tensors in no
/// layer are returned separately.
fn keras_groups<'a>(
    src: &dyn TensorSource,
    plan: &'a [Planned],
) -> (Vec<(String, Vec<&'a Planned>)>, Vec<&'a Planned>) {
    let by_index: HashMap<usize, &Planned> = plan.iter().map(|p| (p.index, p)).collect();
    let mut used = std::collections::HashSet::new();
    let mut layers: Vec<(String, Vec<&Planned>)> = Vec::new();
    if !src.layers().is_empty() {
        for l in src.layers() {
            let weights: Vec<&Planned> = l
                .tensors
                .iter()
                .filter_map(|i| by_index.get(i).copied())
                .collect();
            used.extend(weights.iter().map(|p| p.index));
            layers.push((l.name.clone(), weights));
        }
        let rest = plan.iter().filter(|p| !used.contains(&p.index)).collect();
        return (layers, rest);
    }
    let mut position: HashMap<&str, usize> = HashMap::new();
    for p in plan {
        let first = p.name.split('/').next().unwrap_or_default();
        match position.get(first) {
            Some(&k) => layers[k].1.push(p),
            None => {
                position.insert(first, layers.len());
                layers.push((first.to_string(), vec![p]));
            }
        }
    }
    (layers, Vec::new())
}
