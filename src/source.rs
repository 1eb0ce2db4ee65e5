//! The typed front door for reading: [`open`] a path, get a [`Source`], list its
//! [`TensorInfo`]s, read one tensor at a time.
//!
//! A `Source` wraps whichever format reader [`crate::formats`] picked from the file's
//! bytes; what the readers share internally (raw file ranges for the copy engine,
//! checksums to check while copying, Keras metadata for the planners) stays inside the
//! crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::formats::{self, ReadOptions};
use crate::keras::{self, Model};
use crate::tensor::{Format, TensorData, TensorInfo, TensorSource};

/// An opened input: a TensorFlow checkpoint, a Keras file or a safetensors file.
///
/// Metadata ([`tensors`](Source::tensors)) is read at open; tensor bytes are read on
/// demand ([`read`](Source::read)), borrowed from a memory map where the file stores them
/// as they are, with their stored checksums checked.
pub struct Source {
    inner: Box<dyn TensorSource>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("format", &self.inner.format())
            .field("path", &self.inner.path())
            .field("tensors", &self.inner.tensors().len())
            .finish()
    }
}

/// Open `path`, detecting its format from its bytes (not its name).
///
/// `path` may be a file, a TensorFlow checkpoint prefix (`model.ckpt`, `ckpt-5`), a
/// directory holding one (its `checkpoint` state file says which), a SavedModel, a
/// `.keras` archive or the index of a sharded file.
pub fn open(path: impl AsRef<Path>) -> Result<Source> {
    open_with(path, ReadOptions::default())
}

/// [`open`], reading as `opts` say: with or without memory maps, within an allocation
/// budget.
pub fn open_with(path: impl AsRef<Path>, opts: ReadOptions) -> Result<Source> {
    formats::open_with(path.as_ref(), opts).map(|inner| Source { inner })
}

impl Source {
    /// The detected format.
    pub fn format(&self) -> Format {
        self.inner.format()
    }

    /// The path that was opened (for a checkpoint, its prefix).
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// Every file this source reads (a checkpoint's index and data shards, …).
    pub fn files(&self) -> Vec<PathBuf> {
        self.inner.files()
    }

    /// The tensors, in the file's order.
    pub fn tensors(&self) -> &[TensorInfo] {
        self.inner.tensors()
    }

    /// The index of the tensor named `name` (its stored name or its variable name).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.inner.find(name).or_else(|| {
            self.inner
                .tensors()
                .iter()
                .position(|t| t.variable == name)
        })
    }

    /// The bytes (or strings) of tensor `index`, checksum checked where the format stores
    /// one. An index out of range is an error, not a panic.
    pub fn read(&self, index: usize) -> Result<TensorData<'_>> {
        if index >= self.inner.tensors().len() {
            return Err(Error::Usage(format!(
                "{}: no tensor {index} (the source has {})",
                self.path().display(),
                self.inner.tensors().len()
            )));
        }
        self.inner.read(index)
    }

    /// Read every tensor and check every checksum and length, in parallel; the problems
    /// found, one per tensor (empty: the file is sound).
    pub fn verify(&self) -> Vec<Error> {
        self.inner.verify()
    }

    /// The Keras model the source describes: its layers in model order with their
    /// weights, and how well that order is known. Sources without Keras metadata get
    /// layers inferred from variable names ([`Order::Inferred`](crate::Order::Inferred)).
    pub fn model(&self) -> Model {
        keras::describe(self.inner.as_ref())
    }

    /// The free-form metadata a file carries (safetensors' `__metadata__`), if any.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.inner.file_metadata()
    }

}
