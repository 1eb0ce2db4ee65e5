//! One error type for the whole crate.
//!
//! Variants say *who is at fault*, the way `image-rs` splits decoder errors:
//!
//! - [`Error::Corrupt`]: the input file is malformed (a checksum, an offset, a length, a
//!   key order that cannot be right). The user's file is at fault.
//! - [`Error::Unsupported`]: the file may be fine but holds something this tool does not
//!   handle (a dtype, a PyTorch archive, a big-endian string tensor). Nobody is at fault.
//! - [`Error::NotFound`]: the path given does not lead to any input we understand; the
//!   message says what was looked for.
//! - [`Error::Io`]: the operating system refused (permissions, a missing shard, a full disk).
//! - [`Error::Usage`]: the arguments cannot work together (exit code 2).
//! - [`Error::Exists`], [`Error::Interrupted`]: the work was refused or stopped; nothing
//!   was written.
//!
//! Every message is one line that starts with the file it concerns and, where there is one,
//! the tensor: `model.ckpt.data-00000-of-00001: tensor "dense/kernel": checksum mismatch …`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, split by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed.
    #[error("{}: {}{what}", .path.display(), TensorCtx(.tensor))]
    Corrupt {
        path: PathBuf,
        tensor: Option<String>,
        what: String,
    },
    /// The input holds something this tool does not support.
    #[error("{}: {}unsupported: {what}", .path.display(), TensorCtx(.tensor))]
    Unsupported {
        path: PathBuf,
        tensor: Option<String>,
        what: String,
    },
    /// Nothing usable at the given path.
    #[error("{}: {what}", .path.display())]
    NotFound { path: PathBuf, what: String },
    /// An operating-system error while doing `op` on `path`.
    #[error("{}: cannot {op}: {source}", .path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Arguments that cannot work together.
    #[error("{0}")]
    Usage(String),
    /// An output exists and `--force` was not given.
    #[error("{}: already exists (use --force to replace it)", .0.display())]
    Exists(PathBuf),
    /// Ctrl-C or SIGTERM arrived; nothing was written.
    #[error("interrupted; no output was written")]
    Interrupted,
}

struct TensorCtx<'a>(&'a Option<String>);

impl fmt::Display for TensorCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "tensor {t:?}: "),
            None => Ok(()),
        }
    }
}

impl Error {
    /// A malformed-input error about `path` as a whole.
    pub fn corrupt(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            tensor: None,
            what: what.into(),
        }
    }

    /// A malformed-input error about one tensor of `path`.
    pub fn corrupt_tensor(path: impl AsRef<Path>, tensor: &str, what: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            tensor: Some(tensor.to_string()),
            what: what.into(),
        }
    }

    /// An unsupported-content error about `path`.
    pub fn unsupported(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.as_ref().to_path_buf(),
            tensor: None,
            what: what.into(),
        }
    }

    /// An unsupported-content error about one tensor of `path`.
    pub fn unsupported_tensor(
        path: impl AsRef<Path>,
        tensor: &str,
        what: impl Into<String>,
    ) -> Self {
        Error::Unsupported {
            path: path.as_ref().to_path_buf(),
            tensor: Some(tensor.to_string()),
            what: what.into(),
        }
    }

    /// Nothing found at `path`; `what` says what was looked for.
    pub fn not_found(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::NotFound {
            path: path.as_ref().to_path_buf(),
            what: what.into(),
        }
    }

    /// An I/O error while doing `op` (a verb: "open", "read", "map") on `path`.
    pub fn io(path: impl AsRef<Path>, op: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            op,
            source,
        }
    }

    /// Attach a tensor name to an error that lacks one.
    /// What went wrong, without the path (for a message that names the file itself).
    pub fn detail(&self) -> String {
        match self {
            Error::Corrupt { what, .. }
            | Error::Unsupported { what, .. }
            | Error::NotFound { what, .. } => what.clone(),
            e => e.to_string(),
        }
    }

    pub fn with_tensor(self, name: &str) -> Self {
        match self {
            Error::Corrupt {
                path,
                tensor: None,
                what,
            } => Error::Corrupt {
                path,
                tensor: Some(name.to_string()),
                what,
            },
            Error::Unsupported {
                path,
                tensor: None,
                what,
            } => Error::Unsupported {
                path,
                tensor: Some(name.to_string()),
                what,
            },
            other => other,
        }
    }

    /// The process exit code for this error (design §3): 2 for usage errors, 128 + the
    /// signal after an interruption, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Interrupted => crate::output::interrupted_exit_code(),
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_with_file_and_tensor() {
        let e = Error::corrupt_tensor(
            "m.ckpt.data-00000-of-00001",
            "dense/kernel",
            "checksum mismatch",
        );
        assert_eq!(
            e.to_string(),
            "m.ckpt.data-00000-of-00001: tensor \"dense/kernel\": checksum mismatch"
        );
        let e = Error::corrupt("m.ckpt.index", "bad footer magic").with_tensor("x");
        assert_eq!(
            e.to_string(),
            "m.ckpt.index: tensor \"x\": bad footer magic"
        );
        let e = Error::io("a", "open", io::Error::new(io::ErrorKind::NotFound, "gone"));
        assert_eq!(e.to_string(), "a: cannot open: gone");
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(e.exit_code(), 1);
    }
}
