//! One error type for the whole crate, split by who is at fault, the way `image-rs`
//! splits decoder errors:
//!
//! - [`Error::Input`]: the input file is at fault (a checksum, an offset, a length, a key
//!   order that cannot be right, nothing readable at the path). Its [`InputErrorKind`]
//!   says which, for code that wants to match, and it names the file, the tensor and the
//!   field where there is one.
//! - [`Error::Unsupported`]: the file may be fine but holds something this tool does not
//!   handle (a dtype, a PyTorch archive, a big-endian string tensor). Nobody is at fault.
//! - [`Error::Limit`]: the work would go over a limit: the allocation budget
//!   ([`ReadOptions::max_alloc`](crate::ReadOptions::max_alloc)) or a format's ceiling.
//! - [`Error::Usage`]: the arguments cannot work together (exit code 2).
//! - [`Error::Io`]: the operating system refused (permissions, a missing shard, a full
//!   disk); the `io::Error` is its [`source`](std::error::Error::source).
//! - [`Error::Exists`], [`Error::Interrupted`]: the work was refused or stopped; nothing
//!   was written.
//!
//! `Display` prints the error itself, once; its cause, if any, is `source()`, and the
//! command line prints the chain (`a: cannot open: No such file or directory`). Every
//! message is one line that starts with the file it concerns and, where there is one,
//! the tensor: `model.ckpt.data-00000-of-00001: tensor "dense/kernel": checksum mismatch …`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with an input, for code that wants to match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputErrorKind {
    /// A structure that cannot be right: a bad magic number, an offset out of bounds, an
    /// impossible shape, a key out of order, a missing record.
    Malformed,
    /// Stored bytes do not match their stored checksum.
    Checksum,
    /// A file is shorter than its own records say (or than when it was opened).
    Truncated,
    /// The path does not lead to any input this tool understands; the message says what
    /// was looked for.
    NotFound,
}

/// Everything that can go wrong, split by who is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is at fault.
    #[error("{}: {}{}{what}", .path.display(), TensorCtx(.tensor), FieldCtx(.field))]
    Input {
        /// Which kind of problem.
        kind: InputErrorKind,
        /// The file at fault.
        path: PathBuf,
        /// The tensor concerned, if any.
        tensor: Option<String>,
        /// The record field concerned (`shape`, `data_offsets`), if any.
        field: Option<String>,
        /// What is wrong.
        what: String,
    },
    /// The input holds something this tool does not support.
    #[error("{}: {}unsupported: {what}", .path.display(), TensorCtx(.tensor))]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The tensor concerned, if any.
        tensor: Option<String>,
        /// What is not supported.
        what: String,
    },
    /// The work would go over a limit (the allocation budget, a format's ceiling).
    #[error("{}: {}{what}", .path.display(), TensorCtx(.tensor))]
    Limit {
        /// The file.
        path: PathBuf,
        /// The tensor concerned, if any.
        tensor: Option<String>,
        /// Which limit, and by how much.
        what: String,
    },
    /// An operating-system error while doing `op` on `path`; the cause is `source()`.
    #[error("{}: cannot {op}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("open", "read", "write").
        op: &'static str,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// Arguments that cannot work together.
    #[error("{0}")]
    Usage(String),
    /// An output exists and `force` was not given.
    #[error("{}: already exists (use --force to replace it)", .0.display())]
    Exists(PathBuf),
    /// The work was cancelled (Ctrl-C, SIGTERM, or a [`Cancel`](crate::Cancel) token);
    /// nothing was written.
    #[error("interrupted; no output was written")]
    Interrupted,
}

/// `e` and its causes, joined by `": "`: the one-line message the command line, batch
/// lines, `--json` and the Python exceptions show.
pub(crate) fn chain(e: &Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Most characters of a name a message quotes.
const MAX_SHOWN: usize = 200;

/// `name` for a message: whole up to [`MAX_SHOWN`] characters, else cut there with "…".
/// Names come from the file, and a crafted file can make one of any length (a 40 KB
/// layer name), which would bury the message itself.
pub(crate) fn short(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(MAX_SHOWN) {
        Some((at, _)) => format!("{}…", &name[..at]).into(),
        None => name.into(),
    }
}

struct FieldCtx<'a>(&'a Option<String>);

impl fmt::Display for FieldCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "field {t}: "),
            None => Ok(()),
        }
    }
}

struct TensorCtx<'a>(&'a Option<String>);

impl fmt::Display for TensorCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "tensor {:?}: ", short(t)),
            None => Ok(()),
        }
    }
}

impl Error {
    /// A malformed-input error about `path` as a whole.
    pub(crate) fn corrupt(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::input(InputErrorKind::Malformed, path, what)
    }

    /// An input error of `kind` about `path` as a whole.
    pub(crate) fn input(
        kind: InputErrorKind,
        path: impl AsRef<Path>,
        what: impl Into<String>,
    ) -> Self {
        Error::Input {
            kind,
            path: path.as_ref().to_path_buf(),
            tensor: None,
            field: None,
            what: what.into(),
        }
    }

    /// An over-the-limit error about `path` as a whole.
    pub(crate) fn limit(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::Limit {
            path: path.as_ref().to_path_buf(),
            tensor: None,
            what: what.into(),
        }
    }

    /// An over-the-limit error about one tensor of `path`.
    pub(crate) fn limit_tensor(
        path: impl AsRef<Path>,
        tensor: &str,
        what: impl Into<String>,
    ) -> Self {
        Error::Limit {
            path: path.as_ref().to_path_buf(),
            tensor: Some(tensor.to_string()),
            what: what.into(),
        }
    }

    /// The same error, naming the record field at fault (input errors only).
    pub(crate) fn with_field(mut self, name: &str) -> Self {
        if let Error::Input { field, .. } = &mut self {
            *field = Some(name.to_string());
        }
        self
    }

    /// The same error, as an input error of `kind` (input errors only).
    pub(crate) fn with_kind(mut self, new: InputErrorKind) -> Self {
        if let Error::Input { kind, .. } = &mut self {
            *kind = new;
        }
        self
    }

    /// The kind of input error, if this is one.
    pub fn input_kind(&self) -> Option<InputErrorKind> {
        match self {
            Error::Input { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// A malformed-input error about one tensor of `path`.
    pub(crate) fn corrupt_tensor(
        path: impl AsRef<Path>,
        tensor: &str,
        what: impl Into<String>,
    ) -> Self {
        Error::corrupt(path, what).with_tensor(tensor)
    }

    /// An unsupported-content error about `path`.
    pub(crate) fn unsupported(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.as_ref().to_path_buf(),
            tensor: None,
            what: what.into(),
        }
    }

    /// An unsupported-content error about one tensor of `path`.
    pub(crate) fn unsupported_tensor(
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
    pub(crate) fn not_found(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::input(InputErrorKind::NotFound, path, what)
    }

    /// An I/O error while doing `op` (a verb: "open", "read", "map") on `path`.
    pub(crate) fn io(path: impl AsRef<Path>, op: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            op,
            source,
        }
    }

    /// What went wrong, without the path (for a message that names the file itself).
    pub(crate) fn detail(&self) -> String {
        match self {
            Error::Input { what, .. }
            | Error::Unsupported { what, .. }
            | Error::Limit { what, .. } => what.clone(),
            e => chain(e),
        }
    }

    /// Attach a tensor name to an error that lacks one.
    pub(crate) fn with_tensor(mut self, name: &str) -> Self {
        if let Error::Input { tensor, .. }
        | Error::Unsupported { tensor, .. }
        | Error::Limit { tensor, .. } = &mut self
        {
            tensor.get_or_insert_with(|| name.to_string());
        }
        self
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
        assert_eq!(e.to_string(), "a: cannot open");
        assert_eq!(chain(&e), "a: cannot open: gone");
        let e = Error::corrupt("s.safetensors", "out of bounds").with_field("data_offsets");
        assert_eq!(
            e.to_string(),
            "s.safetensors: field data_offsets: out of bounds"
        );
        assert_eq!(e.input_kind(), Some(InputErrorKind::Malformed));
    }

    #[test]
    fn long_names_are_cut_in_messages() {
        assert_eq!(short("dense/kernel"), "dense/kernel");
        let long = "é".repeat(40_000);
        let s = short(&long);
        assert_eq!(s.chars().count(), MAX_SHOWN + 1);
        assert!(s.ends_with('…'));
        let e = Error::corrupt_tensor("x.h5", &long, "bad");
        assert!(e.to_string().len() < 600, "{}", e.to_string().len());
    }
}
