//! # ckptconv
//!
//! Convert model weights between TensorFlow checkpoints, Keras HDF5 files and safetensors,
//! without Python or TensorFlow.
//!
//! The library is organised like the data flow (see `docs/` and the design notes):
//!
//! - [`formats`]: one module per format; [`formats::open`] detects the format of a path by
//!   content and returns a [`TensorSource`];
//! - [`tensor`]: the data model every reader produces — [`TensorInfo`] first (cheap), then
//!   the bytes of one tensor at a time ([`TensorData`]), borrowed from a memory map when
//!   possible;
//! - [`dtype`]: element types and their names in every format;
//! - [`naming`]: canonical variable names;
//! - [`error`]: one error type whose variants say who is at fault.
//!
//! ```no_run
//! use ckptconv::TensorSource;
//! let src = ckptconv::formats::open("model.ckpt".as_ref())?;
//! for (i, t) in src.tensors().iter().enumerate() {
//!     let data = src.read(i)?; // checksum checked
//!     println!("{} {} {:?} {}", t.name, t.dtype, t.shape, t.byte_len);
//!     drop(data);
//! }
//! # Ok::<(), ckptconv::Error>(())
//! ```

pub mod batch;
pub mod cli;
pub mod convert;
pub mod diff;
pub mod dtype;
pub mod error;
pub mod formats;
pub mod keras;
pub mod like;
pub mod naming;
pub mod output;
pub mod plan;
pub mod show;
pub mod summary;
pub mod tensor;
pub mod transform;

/// Protocol buffer messages generated from `proto/` (TensorFlow's package `tensorflow`).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));
}

pub use dtype::DType;
pub use error::{Error, Result};
pub use tensor::{Format, Layer, TensorData, TensorInfo, TensorSource};

/// The Python extension module `ckptconv._ckptconv` (feature `python`; see docs/python.md).
#[cfg(feature = "python")]
mod python;
