//! The write step: one interface that every output format implements.
//!
//! By the time a [`Writer`] runs, the plan is made and checked (`convert`, `plan`): each
//! writer knows which source tensor goes where under which name, and only has to put the
//! bytes there in its format's layout. Writers create their files through the
//! [`OutputSet`], under temporary names that the commit renames into place (or removes),
//! and move tensor bytes with the copy engine (`copy`), which checks the stored checksums
//! and the set's cancel token on the way.
//!
//! | format | writer | module |
//! |---|---|---|
//! | TensorFlow checkpoint | `CheckpointWriter` | `formats::tf::writer` |
//! | Keras HDF5 (Keras 2, Keras 3, flat) | `H5Plan` | `formats::h5::writer` |
//! | Keras 3 `.keras` archive | `KerasArchive` | `formats::h5::archive` |
//! | safetensors | `SafetensorsWriter` | `formats::safetensors` |

use std::path::Path;

use crate::commit::OutputSet;
use crate::convert::Progress;
use crate::error::Result;
use crate::plan::Skipped;
use crate::tensor::TensorSource;

/// An output format's writer, holding its plan.
pub trait Writer {
    /// Refuse, before anything is written, names the format cannot hold: empty, shared
    /// by two tensors, or (HDF5) one inside another. Every writer asks the one check,
    /// `plan::check_names`, with its format's rules; [`write`](Writer::write) relies on it
    /// having passed.
    fn check_names(&self, src: &dyn TensorSource, target: &Path) -> Result<()>;

    /// Write the planned tensors of `src` as `target`, every file created through `out`,
    /// reporting bytes written to `progress`. Returns the planned tensors the format could
    /// not hold, and why (written around, not an error).
    fn write(
        &self,
        src: &dyn TensorSource,
        target: &Path,
        out: &mut OutputSet,
        progress: &dyn Progress,
    ) -> Result<Vec<Skipped>>;
}
