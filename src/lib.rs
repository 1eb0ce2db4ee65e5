//! # ckptconv
//!
//! Read and convert model weights — TensorFlow checkpoints (TF1/TF2 TensorBundles, V1
//! checkpoints, SavedModel `variables/`, frozen GraphDefs), Keras files (Keras 2 `.h5`,
//! Keras 3 `.weights.h5` and `.keras`) and safetensors — without Python or TensorFlow.
//!
//! The whole flow in one example: open a file whatever its format, look at its tensors
//! and its Keras model, read one tensor, and convert the file to safetensors.
//!
//! ```
//! # fn main() -> ckptconv::Result<()> {
//! use ckptconv::{ConvertOptions, OutputFormat, TensorData};
//!
//! let src = ckptconv::open("testdata/keras2/weights.h5")?; // detected from its bytes
//! println!("{:?}, {} tensors", src.format(), src.tensors().len());
//! for layer in src.model().layers {
//!     println!("{} {:?}: {} weights", layer.name, layer.class_name, layer.weights.len());
//! }
//! let i = src.find("conv/kernel").expect("the conv layer's kernel"); // a variable name
//! let info = &src.tensors()[i];
//! if let TensorData::Bytes(bytes) = src.read(i)? {
//!     // Little-endian values of `info.dtype`, checksum checked where stored.
//!     assert_eq!(bytes.len() as u64, info.byte_len);
//! }
//!
//! let out = std::env::temp_dir().join(format!("ckptconv-doc-{}.safetensors", std::process::id()));
//! let mut opts = ConvertOptions::default();
//! opts.to = Some(OutputFormat::Safetensors);
//! opts.force = true;
//! let report = ckptconv::convert("testdata/keras2/weights.h5", &out, &opts)?;
//! assert_eq!(report.tensors, src.tensors().len());
//! # std::fs::remove_file(&out).ok();
//! # Ok(())
//! # }
//! ```
//!
//! ## Where each step lives
//!
//! | step | module | what it does |
//! |---|---|---|
//! | detect | `formats` (`formats/mod.rs`) | tells the format from the bytes, resolves checkpoint prefixes and directories |
//! | read | `formats::{tf, h5, safetensors}`, `formats::filebytes` | one reader per format, all behind one internal trait; bytes mapped or `pread` |
//! | name | `naming`, `keras` | canonical variable names; the Keras model (layers, classes, weight order) |
//! | plan | `convert`, `plan`, `transform`, `like` | which tensor goes where under which name; names validated once, on the plan |
//! | write | `formats::tf::writer`, `formats::h5::writer`, `formats::safetensors` | one `Writer` interface (`write`), fed by the copy engine (`copy`) |
//! | commit | `commit` | temporary files, fsync, rename into place; nothing left on error or [`Cancel`] |
//!
//! The command line (`cli`, `batch`: argument parsing, tables, progress bars, signal
//! handling) is a private module: the binary is one call to [`run_cli`].
//!
//! ## Errors
//!
//! Every function returns [`Error`], split by who is at fault: the input
//! ([`Error::Input`], with an [`InputErrorKind`] code can match), content this tool does
//! not support, a limit, the arguments, or the operating system. Messages are one line
//! naming the file and, where there is one, the tensor.
#![deny(missing_docs)]

/// The crate's modules: private, except that the `internals` feature (for the integration
/// tests and fuzz targets only, never for users) makes them reachable, hidden from the
/// docs.
macro_rules! internal_modules {
    ($($(#[$attr:meta])* $m:ident),* $(,)?) => {$(
        $(#[$attr])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        #[allow(missing_docs)]
        pub mod $m;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        mod $m;
    )*};
}

internal_modules!(
    batch, cancel, cli, commit, convert, copy, diff, dtype, error, formats, keras, like, naming,
    plan, show, source, summary, tensor, transform, write,
);

/// Protocol buffer messages generated from `proto/` (TensorFlow's package `tensorflow`).
#[cfg(feature = "internals")]
#[doc(hidden)]
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));
}
/// Protocol buffer messages generated from `proto/` (TensorFlow's package `tensorflow`).
#[cfg(not(feature = "internals"))]
#[allow(clippy::all, missing_docs, dead_code)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));
}

pub use cancel::Cancel;
pub use convert::{
    convert, convert_with, ConvertOptions, ConvertReport, Layout, OutputFormat, Progress,
};
pub use dtype::DType;
pub use error::{Error, InputErrorKind, Result};
pub use formats::ReadOptions;
pub use keras::{Inner, Layer, Model, Order, Weight};
pub use plan::Skipped;
pub use source::{open, open_with, Source};
pub use tensor::{Format, TensorData, TensorInfo};
pub use transform::Transform;

/// The `ckptconv` command line: parse the process's arguments, run, and return the exit
/// code. The `ckptconv` binary is this one call.
pub fn run_cli() -> std::process::ExitCode {
    cli::main()
}

/// The Python extension module `ckptconv._ckptconv` (feature `python`; see docs/python.md).
#[cfg(feature = "python")]
mod python;
