//! Writing Keras HDF5 weight files.
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
//!
//! Numeric data is written in two phases, because libhdf5 writing it (`H5Dwrite` from
//! the source's memory map) made this direction twice as slow as `cp`:
//!
//! 1. libhdf5 writes the metadata: every group, attribute and dataset, each numeric
//!    dataset contiguous with its storage allocated at creation and never filled
//!    (`H5D_ALLOC_TIME_EARLY`, `H5D_FILL_TIME_NEVER`); `H5Dget_offset` says where it is.
//!    String tensors are written by libhdf5 here (they are variable-length).
//! 2. Once libhdf5 has closed the file, [`crate::copy::write_at_offsets`] copies each
//!    tensor's bytes to its dataset's offset, in the source's order, checking the
//!    source's checksums on the way.
//!
//! The result is a file libhdf5 itself could have written: the bytes at each dataset's
//! address are exactly what `H5Dwrite` would have put there.

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
use crate::convert::Progress;
use crate::error::{Error, Result};
use crate::cancel::Cancel;
use crate::commit::OutputSet;
use crate::plan::{hdf5_components, Names, Planned, Skipped};
use crate::tensor::{TensorData, TensorSource};

/// A dataset path without components reached the writer: `Writer::check_names` refuses
/// those on the plan, before anything is written, so this is a caller's bug (an error,
/// not a panic).
const UNCHECKED: &str = "internal error: a dataset path the plan's name check did not see";

/// The largest attribute Keras writes in one piece (`HDF5_OBJECT_HEADER_LIMIT`).
const ATTR_LIMIT: usize = 64512;

/// What to write, in which HDF5 layout.
#[derive(Debug, Clone, Copy)]
pub enum H5Plan<'a> {
    /// Keras 2 `save_weights` layout: the model's layers in order, then the optimizer's
    /// state under `/optimizer_weights` (see [`crate::keras::layout::groups`]).
    Keras(&'a crate::keras::layout::Groups),
    /// One dataset per tensor at its name path.
    Flat(&'a [Planned]),
    /// Keras 3 `.weights.h5` layout: `<object path>/vars/<i>` (see [`crate::keras::keras3`]).
    Keras3(&'a crate::keras::keras3::Layout3),
}

impl<'a> H5Plan<'a> {
    /// Every planned tensor with the path of its dataset, in the order they are written.
    fn datasets(&self) -> Vec<(String, &'a Planned)> {
        match *self {
            H5Plan::Flat(plan) => plan.iter().map(|p| (p.name.clone(), p)).collect(),
            H5Plan::Keras(g) => keras_layers(g)
                .flat_map(|(lname, w)| {
                    w.iter()
                        .map(move |p| (format!("{lname}/{}", weight_name(p)), p))
                })
                .collect(),
            H5Plan::Keras3(l) => l
                .groups
                .iter()
                .flat_map(|g| {
                    g.vars
                        .iter()
                        .map(move |p| (format!("{}/vars/{}", g.path, p.name), p))
                })
                .collect(),
        }
    }

    /// Refuse (with [`crate::plan::check_names`], before anything is written) names this
    /// layout cannot hold: a layer's, and every dataset path.
    fn check_paths(&self, src: &dyn TensorSource, target: &Path) -> Result<()> {
        if let H5Plan::Keras(g) = self {
            for (lname, _) in &g.layers {
                if let Some(why) = crate::plan::name_problem(lname, Names::Hdf5Paths) {
                    // A layer's name comes from the input (no --rename reaches it).
                    return Err(Error::unsupported(
                        src.path(),
                        format!(
                            "layer {lname:?} cannot be written to {}: it would be a group of {why}; write --layout flat",
                            target.display()
                        ),
                    ));
                }
            }
        }
        let paths = self.datasets();
        crate::plan::check_names(
            src.path(),
            target,
            Names::Hdf5Paths,
            paths.iter().map(|(path, p)| {
                (
                    path.as_str(),
                    src.tensors()[p.index].name.as_str(),
                    src.renamed(p.index),
                )
            }),
        )
    }
}

/// A Keras 2 layout's groups: its layers, then `optimizer_weights` when there is
/// optimizer state.
fn keras_layers(g: &crate::keras::layout::Groups) -> impl Iterator<Item = (&str, &[Planned])> {
    g.layers
        .iter()
        .map(|(n, w)| (n.as_str(), w.as_slice()))
        .chain((!g.optimizer.is_empty()).then_some(("optimizer_weights", g.optimizer.as_slice())))
}

/// A weight's name in a Keras 2 layer's `weight_names` and its dataset's name.
fn weight_name(p: &Planned) -> String {
    format!("{}:0", p.name)
}

use super::raw::{self, check, h5, Id};

/// An HDF5 datatype for `d`, as h5py / Keras write it.
///
/// # Safety
/// The caller holds libhdf5's lock (every call here is a plain libhdf5 call on ids this
/// function creates).
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

/// A new dataset `name` of type `t` and `shape` in group `parent`, created with the
/// property list `dcpl`.
///
/// # Safety
/// The caller holds libhdf5's lock, and `parent`, `t` and `dcpl` are open ids.
unsafe fn create_dataset(
    parent: hid_t,
    name: &CString,
    t: hid_t,
    shape: &[u64],
    dcpl: hid_t,
) -> std::result::Result<Id, String> {
    let s = make_space(shape)?;
    let ds = Id(
        H5Dcreate2(
            parent,
            name.as_ptr(),
            t,
            s.0,
            H5P_DEFAULT,
            dcpl,
            H5P_DEFAULT,
        ),
        H5Dclose,
    );
    check(ds.0, "create dataset")?;
    Ok(ds)
}

/// A simple dataspace of `shape` (a scalar space for `[]`).
///
/// # Safety
/// The caller holds libhdf5's lock; `shape` is read for its length only.
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

/// Where a numeric tensor's bytes go: (tensor index, offset of its dataset's storage).
type Job = (usize, u64);

/// The objects being created in a new file. The property lists and types are made once,
/// and the path of every group created is kept: the file started empty, so it says
/// which groups exist without asking libhdf5 (whose lookups and property-list copies
/// were half the time of writing many small tensors). Recently used groups stay open
/// ([`Tree::close_groups`] closes them: libhdf5 slows down as open objects pile up).
struct Tree {
    root: hid_t,
    gcpl: Id,
    /// Datasets written by libhdf5 (strings, empty tensors).
    dcpl: Id,
    /// Datasets whose storage is allocated at creation and never filled: we copy the
    /// bytes in after the file is closed.
    dcpl_deferred: Id,
    types: HashMap<DType, Id>,
    /// Open groups by path.
    open: HashMap<String, Id>,
    groups: std::collections::HashSet<String>,
}

impl Drop for Tree {
    /// Close every id under the libhdf5 lock: batch conversions run on several threads.
    fn drop(&mut self) {
        h5(|| {
            self.open.clear();
            self.types.clear();
            for id in [&mut self.gcpl, &mut self.dcpl, &mut self.dcpl_deferred] {
                drop(std::mem::replace(id, Id(-1, hdf5_sys::h5p::H5Pclose)));
            }
        });
    }
}

impl Tree {
    fn new(root: hid_t) -> std::result::Result<Tree, String> {
        use hdf5_sys::h5d::{H5D_alloc_time_t, H5D_fill_time_t};
        use hdf5_sys::h5p::{
            H5Pclose, H5Pcreate, H5Pset_alloc_time, H5Pset_fill_time, H5Pset_obj_track_times,
        };
        h5(|| {
            // SAFETY: every id is checked, and closed by `Id` when the tree is dropped.
            unsafe {
                let plist = |class: hid_t, what: &str| -> std::result::Result<Id, String> {
                    let p = Id(H5Pcreate(class), H5Pclose);
                    check(p.0, what)?;
                    // No modification times: the same input must give the same bytes.
                    check(
                        H5Pset_obj_track_times(p.0, 0) as i64,
                        "disable modification times",
                    )?;
                    Ok(p)
                };
                let gcpl = plist(*hdf5::globals::H5P_GROUP_CREATE, "group properties")?;
                let dcpl = plist(*hdf5::globals::H5P_DATASET_CREATE, "dataset properties")?;
                let deferred = plist(*hdf5::globals::H5P_DATASET_CREATE, "dataset properties")?;
                check(
                    H5Pset_alloc_time(deferred.0, H5D_alloc_time_t::H5D_ALLOC_TIME_EARLY) as i64,
                    "allocate storage at creation",
                )?;
                check(
                    H5Pset_fill_time(deferred.0, H5D_fill_time_t::H5D_FILL_TIME_NEVER) as i64,
                    "never write fill values",
                )?;
                Ok(Tree {
                    root,
                    gcpl,
                    dcpl,
                    dcpl_deferred: deferred,
                    types: HashMap::new(),
                    open: HashMap::new(),
                    groups: Default::default(),
                })
            }
        })
    }

    /// The group at `path` (components below the root), created with its parents when
    /// new. The root is `path` empty.
    fn group(&mut self, path: &[&str]) -> std::result::Result<hid_t, String> {
        let mut parent = self.root;
        let mut key = String::new();
        for c in path {
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(c);
            if let Some(g) = self.open.get(&key) {
                parent = g.0;
                continue;
            }
            let exists = self.groups.contains(&key);
            let cname = CString::new(*c).map_err(|_| format!("name {c:?} contains a NUL byte"))?;
            let g = h5(|| {
                // SAFETY: `parent` and the property list are open ids; the new id is
                // checked, and closed by `Id`.
                unsafe {
                    use hdf5_sys::h5g::{H5Gclose, H5Gcreate2, H5Gopen2};
                    let g = if exists {
                        Id(H5Gopen2(parent, cname.as_ptr(), H5P_DEFAULT), H5Gclose)
                    } else {
                        let gcpl = self.gcpl.0;
                        Id(
                            H5Gcreate2(parent, cname.as_ptr(), H5P_DEFAULT, gcpl, H5P_DEFAULT),
                            H5Gclose,
                        )
                    };
                    let what = if exists { "open" } else { "create" };
                    check(g.0, &format!("{what} group {key:?}"))?;
                    Ok::<_, String>(g)
                }
            })?;
            parent = g.0;
            self.groups.insert(key.clone());
            self.open.insert(key.clone(), g);
        }
        Ok(parent)
    }

    /// Close the open groups (they are reopened when needed).
    fn close_groups(&mut self) {
        h5(|| self.open.clear());
    }

    /// Create the string dataset at `path` (which must not exist yet) and write the
    /// elements of `r` into it a window at a time (at most [`raw::STRING_WINDOW`] bytes or
    /// [`raw::MAX_WINDOW_ELEMENTS`] elements, or one element), each window a hyperslab of
    /// the dataset: only a window is ever in memory, whatever the tensor's size. `werr`
    /// makes libhdf5's complaints errors naming the output.
    fn string_dataset(
        &mut self,
        path: &[&str],
        shape: &[u64],
        r: &mut dyn crate::tensor::StringReader,
        cancel: &Cancel,
        werr: &dyn Fn(String) -> Error,
    ) -> Result<()> {
        let (leaf, dirs) = path.split_last().ok_or_else(|| werr(UNCHECKED.into()))?;
        let elements = crate::tensor::num_elements(shape)
            .ok_or_else(|| werr("element count overflows".into()))?;
        if r.len() != elements {
            return Err(werr(format!(
                "the source gave {} strings for shape {shape:?}",
                r.len()
            )));
        }
        let parent = self.group(dirs).map_err(werr)?;
        let cname =
            CString::new(*leaf).map_err(|_| werr(format!("name {leaf:?} contains a NUL byte")))?;
        if let std::collections::hash_map::Entry::Vacant(e) = self.types.entry(DType::String) {
            // SAFETY: make_type returns a checked id, closed by `Id`.
            e.insert(h5(|| unsafe { make_type(DType::String) }).map_err(werr)?);
        }
        let t = self.types[&DType::String].0;
        let dcpl = self.dcpl.0;
        let ds = h5(|| {
            // SAFETY: the parent, type and property list ids are open; the space and
            // dataset ids are checked and closed by `Id`.
            unsafe {
                let ds = create_dataset(parent, &cname, t, shape, dcpl)?;
                Ok::<_, String>(ds)
            }
        })
        .map_err(werr)?;
        let mut pending: Vec<CString> = Vec::new();
        let mut pending_bytes = 0u64;
        let mut pos = 0u64;
        let flush = |pending: &mut Vec<CString>, pos: &mut u64| -> Result<()> {
            cancel.check()?;
            while !pending.is_empty() {
                let (start, count, m) = raw::window(shape, *pos, pending.len() as u64);
                let m = usize::try_from(m).map_or(pending.len(), |m| m.min(pending.len()));
                let ptrs: Vec<*const std::os::raw::c_char> =
                    pending[..m].iter().map(|c| c.as_ptr()).collect();
                h5(|| {
                    // SAFETY: the selections hold m elements each, and `ptrs` holds m
                    // pointers to NUL-terminated strings alive until the call returns.
                    unsafe {
                        let (file, mem) = raw::select(ds.0, &start, &count, m as u64)?;
                        let (file, mem) = if start.is_empty() {
                            (H5S_ALL, H5S_ALL)
                        } else {
                            (file.0, mem.0)
                        };
                        check(
                            H5Dwrite(ds.0, t, mem, file, H5P_DEFAULT, ptrs.as_ptr().cast()) as i64,
                            "write strings",
                        )
                    }
                })
                .map_err(werr)?;
                pending.drain(..m);
                *pos += m as u64;
            }
            Ok(())
        };
        while let Some(s) = r.next()? {
            let c = CString::new(s).map_err(|_| {
                werr("a string contains a NUL byte, which HDF5 strings cannot hold".into())
            })?;
            pending_bytes += c.as_bytes().len() as u64 + 1;
            pending.push(c);
            if pending_bytes >= raw::STRING_WINDOW
                || pending.len() as u64 >= raw::MAX_WINDOW_ELEMENTS
            {
                flush(&mut pending, &mut pos)?;
                pending_bytes = 0;
            }
        }
        flush(&mut pending, &mut pos)?;
        if pos != elements {
            return Err(werr(format!(
                "the source gave {pos} strings for shape {shape:?}"
            )));
        }
        h5(|| drop(ds));
        Ok(())
    }

    /// Create the dataset at `path` (which must not exist yet: [`H5Plan::check_names`]
    /// refused two tensors at one path) and write `data` into it; or, given no data, only
    /// allocate its storage (contiguous, at creation, never filled) and return where in
    /// the file it starts, for the caller to copy the bytes there once libhdf5 has closed
    /// the file.
    fn dataset(
        &mut self,
        path: &[&str],
        dtype: DType,
        shape: &[u64],
        data: Option<&TensorData<'_>>,
    ) -> std::result::Result<Option<u64>, String> {
        let (leaf, dirs) = path.split_last().ok_or(UNCHECKED)?;
        let parent = self.group(dirs)?;
        let cname =
            CString::new(*leaf).map_err(|_| format!("name {leaf:?} contains a NUL byte"))?;
        let cstrings: Vec<CString>;
        let ptrs: Vec<*const std::os::raw::c_char>;
        let (buf, empty): (*const std::ffi::c_void, bool) = match data {
            None => (std::ptr::null(), true),
            Some(TensorData::Bytes(b)) => (b.as_ptr().cast(), b.is_empty()),
            Some(TensorData::Strings(s)) => {
                cstrings = s
                    .iter()
                    .map(|x| CString::new(x.clone()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| {
                        "a string contains a NUL byte, which HDF5 strings cannot hold".to_string()
                    })?;
                ptrs = cstrings.iter().map(|c| c.as_ptr()).collect();
                (ptrs.as_ptr().cast(), s.is_empty())
            }
        };
        // H5Dwrite reads elements × type size bytes (or pointers) from `buf`, whatever
        // the buffer: a source that hands over fewer than its shape says (a TensorSource
        // implemented outside this crate, say) is an error here, not a read past the end.
        if let Some(d) = data {
            let elements = crate::tensor::num_elements(shape).ok_or("element count overflows")?;
            let (have, want) = match d {
                TensorData::Bytes(b) => (
                    b.len() as u64,
                    elements
                        .checked_mul(dtype.size().unwrap_or(0) as u64)
                        .ok_or("byte size overflows")?,
                ),
                TensorData::Strings(s) => (s.len() as u64, elements),
            };
            let kind_ok = (dtype == DType::String) == matches!(d, TensorData::Strings(_));
            if have != want || !kind_ok {
                return Err(format!(
                    "the source gave {have} {} for a {dtype} tensor of shape {shape:?} ({want} expected)",
                    if matches!(d, TensorData::Strings(_)) { "strings" } else { "bytes" }
                ));
            }
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.types.entry(dtype) {
            // SAFETY: make_type returns a checked id, closed by `Id`.
            e.insert(h5(|| unsafe { make_type(dtype) })?);
        }
        let t = self.types[&dtype].0;
        let dcpl = if data.is_some() {
            self.dcpl.0
        } else {
            self.dcpl_deferred.0
        };
        let offset = h5(|| {
            // SAFETY: the parent, type and property list ids are open; the space and
            // dataset ids are checked and closed by `Id`; `buf` points to exactly elements ×
            // type size bytes (numeric: the tensor's bytes, whose length the reader checked
            // against the shape; strings: one pointer per element), and is only passed to
            // H5Dwrite when there is data.
            unsafe {
                let ds = create_dataset(parent, &cname, t, shape, dcpl)?;
                if !empty {
                    check(
                        H5Dwrite(ds.0, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) as i64,
                        "write dataset",
                    )?;
                }
                if matches!(
                    dtype,
                    DType::BFloat16 | DType::Float8E5M2 | DType::Float8E4M3FN
                ) {
                    write_str_attr(ds.0, "dtype", dtype.name())?;
                }
                if data.is_some() {
                    return Ok(None);
                }
                let at = hdf5_sys::h5d::H5Dget_offset(ds.0);
                if at == hdf5_sys::h5::HADDR_UNDEF {
                    return Err("libhdf5 allocated no contiguous storage for the dataset".into());
                }
                Ok::<_, String>(Some(at))
            }
        })?;
        Ok(offset)
    }
}

/// A scalar variable-length UTF-8 string attribute (what h5py writes for a `str`).
fn write_str_attr(loc: hid_t, name: &str, value: &str) -> std::result::Result<(), String> {
    let cname = CString::new(name).map_err(|_| "NUL in attribute name".to_string())?;
    let cvalue = CString::new(value).map_err(|_| format!("NUL in attribute {name}"))?;
    h5(|| {
        // SAFETY: ids are checked and closed by `Id`; the data is one pointer to a
        // NUL-terminated string, as a variable-length string type expects.
        unsafe {
            // Variable-length UTF-8, NUL-terminated: a string tensor's element type.
            let t = make_type(DType::String)?;
            let s = Id(H5Screate(H5S_class_t::H5S_SCALAR), H5Sclose);
            check(s.0, "attribute space")?;
            let a = Id(
                H5Acreate2(loc, cname.as_ptr(), t.0, s.0, H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose,
            );
            check(a.0, &format!("create attribute {name}"))?;
            let ptr = cvalue.as_ptr();
            check(
                H5Awrite(
                    a.0,
                    t.0,
                    (&ptr as *const *const std::os::raw::c_char).cast(),
                ) as i64,
                &format!("write attribute {name}"),
            )?;
            Ok(())
        }
    })
}

/// A list-of-strings attribute as Keras writes it: fixed-length byte strings, an empty
/// float64 array for an empty list, and split into `name0`, `name1`, … when larger than
/// 64512 bytes.
fn write_names_attr(loc: hid_t, name: &str, values: &[String]) -> std::result::Result<(), String> {
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
                    H5Acreate2(loc, cname.as_ptr(), t.0, s.0, H5P_DEFAULT, H5P_DEFAULT),
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

impl crate::write::Writer for H5Plan<'_> {
    fn check_names(&self, src: &dyn TensorSource, target: &Path) -> Result<()> {
        self.check_paths(src, target)
    }

    fn write(
        &self,
        src: &dyn TensorSource,
        target: &Path,
        out: &mut OutputSet,
        progress: &dyn Progress,
    ) -> Result<Vec<Skipped>> {
        write(src, *self, target, out, progress)
    }
}

/// Write `plan` (names are variable names) from `src` as an HDF5 file at `target`.
fn write(
    src: &dyn TensorSource,
    layout: H5Plan<'_>,
    target: &Path,
    out: &mut OutputSet,
    progress: &dyn Progress,
) -> Result<Vec<Skipped>> {
    let temp = out.temp_path(target);
    write_at(src, layout, target, &temp, 0, out.cancel(), progress)
}

/// [`write`] to the temporary file `temp` (for `target`), after a user block of
/// `userblock` bytes (0, or a power of two from 512) that libhdf5 leaves for the caller.
pub(crate) fn write_at(
    src: &dyn TensorSource,
    layout: H5Plan<'_>,
    target: &Path,
    temp: &Path,
    userblock: u64,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<Vec<Skipped>> {
    let werr = |w: String| Error::io(target, "write", std::io::Error::other(w));
    // No file locking: the temporary file is ours alone, and libhdf5 opens files without
    // O_CLOEXEC, so a lock would leak into any child process forked meanwhile (by a
    // program embedding this library) and keep the finished file locked.
    // No object modification times either: the same input must give the same bytes.
    let file = hdf5::File::with_options()
        .with_fapl(|p| p.file_locking(false).libver_v18())
        .with_fcpl(|p| p.obj_track_times(false).userblock(userblock))
        .create(temp)
        .map_err(|e| werr(e.to_string()))?;
    // Every group and dataset handle lives inside `write_body`, so that all are closed
    // before the file: libhdf5 keeps a file open (and locked) while any object in it is.
    let (skipped, mut jobs) = write_body(src, layout, target, &file, cancel, progress)?;
    file.flush().map_err(|e| werr(e.to_string()))?;
    file.close().map_err(|e| werr(e.to_string()))?;
    // libhdf5 has written the metadata and left each numeric dataset's storage unwritten:
    // copy the tensors' bytes there, in the source's order.
    jobs.sort_by_key(|&(i, _)| src.stored_at(i));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(temp)
        .map_err(|e| Error::io(target, "reopen", e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io(target, "read the size of", e))?
        .len();
    for &(i, at) in &jobs {
        let t = &src.tensors()[i];
        if at.checked_add(t.byte_len).is_none_or(|end| end > len) {
            return Err(werr(format!(
                "{}: libhdf5 placed the dataset at {at}, beyond the file's {len} bytes",
                t.name
            )));
        }
    }
    crate::copy::write_at_offsets(src, &jobs, &f, target, false, cancel, progress)?;
    Ok(skipped)
}

fn write_body(
    src: &dyn TensorSource,
    layout: H5Plan<'_>,
    target: &Path,
    file: &hdf5::File,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<(Vec<Skipped>, Vec<Job>)> {
    let werr = |w: String| Error::io(target, "write", std::io::Error::other(w));
    let root = file.as_group().map_err(|e| werr(e.to_string()))?;
    // Decide what cannot be written before any attribute names it.
    let mut skipped = Vec::new();
    let mut unwritable = std::collections::HashSet::new();
    let all: Vec<&Planned> = match layout {
        H5Plan::Flat(plan) => plan.iter().collect(),
        H5Plan::Keras(g) => g
            .layers
            .iter()
            .flat_map(|(_, w)| w)
            .chain(&g.optimizer)
            .collect(),
        H5Plan::Keras3(l) => l.planned().collect(),
    };
    for p in all {
        if src.tensors()[p.index].dtype == DType::String {
            // An element at a time: a string tensor may be as large as the file.
            let mut r = src.strings(p.index)?;
            let mut nul = false;
            while let Some(s) = r.next()? {
                if s.contains(&0) {
                    nul = true;
                    break;
                }
            }
            if nul {
                skipped.push(Skipped {
                    name: p.name.clone(),
                    reason: "string tensor with NUL bytes, which HDF5 strings cannot hold".into(),
                });
                unwritable.insert(p.index);
            }
        }
    }
    let keep = |w: &[Planned]| -> Vec<Planned> {
        w.iter()
            .filter(|p| !unwritable.contains(&p.index))
            .cloned()
            .collect()
    };
    let mut tree = Tree::new(root.id()).map_err(werr)?;
    // Numeric tensors, written after the file is closed.
    let mut jobs: Vec<Job> = Vec::new();
    // Write tensor `p` at `path` (checked by `H5Plan::check_names`: no two tensors at one
    // path, none inside another).
    let mut put = |tree: &mut Tree, path: &str, p: &Planned| -> Result<()> {
        cancel.check()?;
        if tree.open.len() > 64 {
            tree.close_groups();
        }
        let t = &src.tensors()[p.index];
        let comps: Vec<&str> = hdf5_components(path).collect();
        let key = comps.join("/");
        if t.dtype != DType::String && t.byte_len > 0 {
            let at = tree
                .dataset(&comps, t.dtype, &t.shape, None)
                .map_err(|w| werr(format!("{key}: {w}")))?
                .ok_or_else(|| werr(format!("{key}: no storage allocated")))?;
            jobs.push((p.index, at));
            return Ok(());
        }
        if t.dtype == DType::String {
            let mut r = src.strings(p.index)?;
            tree.string_dataset(&comps, &t.shape, r.as_mut(), cancel, &|w| {
                werr(format!("{key}: {w}"))
            })?;
            progress.advance(t.byte_len);
            return Ok(());
        }
        let data = src.read(p.index)?;
        tree.dataset(&comps, t.dtype, &t.shape, Some(&data))
            .map_err(|w| werr(format!("{key}: {w}")))?;
        drop(data);
        src.release(p.index);
        progress.advance(t.byte_len);
        Ok(())
    };
    // Each dataset's path, in the order written.
    let mut paths = layout.datasets().into_iter();
    let mut put_next = |tree: &mut Tree, p: &Planned| -> Result<()> {
        let (path, planned) = paths
            .by_ref()
            .find(|(_, q)| q.index == p.index)
            .expect("the layout's datasets are in the order written");
        put(tree, &path, planned)
    };
    match layout {
        H5Plan::Flat(plan) => {
            for p in keep(plan) {
                put_next(&mut tree, &p)?;
            }
        }
        H5Plan::Keras3(l) => {
            write_str_attr(root.id(), "ckptconv_version", env!("CARGO_PKG_VERSION"))
                .map_err(werr)?;
            for g in &l.groups {
                let mut base: Vec<&str> = hdf5_components(&g.path).collect();
                base.push("vars");
                let id = tree.group(&base).map_err(werr)?;
                if let Some(n) = &g.name {
                    write_str_attr(id, "name", n).map_err(werr)?;
                }
                for p in keep(&g.vars) {
                    put_next(&mut tree, &p)?;
                }
                tree.close_groups();
            }
        }
        H5Plan::Keras(g) => {
            let names: Vec<String> = g.layers.iter().map(|(n, _)| n.clone()).collect();
            let root_id = root.id();
            write_names_attr(root_id, "layer_names", &names).map_err(werr)?;
            write_str_attr(root_id, "backend", "tensorflow").map_err(werr)?;
            write_str_attr(root_id, "keras_version", "2.21.0").map_err(werr)?;
            write_str_attr(root_id, "ckptconv_version", env!("CARGO_PKG_VERSION")).map_err(werr)?;
            for (lname, weights) in keras_layers(g) {
                let weights = keep(weights);
                // A '/' in a layer name nests groups, as h5py's `create_group` does.
                let base: Vec<&str> = hdf5_components(lname).collect();
                let g = tree.group(&base).map_err(werr)?;
                let wnames: Vec<String> = weights.iter().map(weight_name).collect();
                write_names_attr(g, "weight_names", &wnames).map_err(werr)?;
                for p in &weights {
                    put_next(&mut tree, p)?;
                }
                tree.close_groups();
            }
        }
    }
    Ok((skipped, jobs))
}
