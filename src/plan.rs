//! What a conversion will write: which source tensor goes where, under which name, and
//! the one check that every name can be written ([`check_names`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// One tensor to write: the index of a source tensor and its name in the output (a
/// checkpoint key, an HDF5 path, a safetensors name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub index: usize,
    pub name: String,
}

/// A tensor the output format cannot hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub struct Skipped {
    /// The tensor's name in the source.
    pub name: String,
    /// Why it was not written.
    pub reason: String,
}

/// What names an output format can hold (see [`check_names`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// TensorFlow checkpoint keys: any bytes but the empty key (the bundle's header).
    TfKeys,
    /// HDF5 paths: `/`-separated components (empty ones are dropped, as h5py drops them),
    /// none of them `.` (HDF5 reads it as the group itself), and no dataset inside
    /// another.
    Hdf5Paths,
    /// safetensors names: any string but `__metadata__` (the header's own entry).
    Safetensors,
}

/// Why no output could hold a tensor named `name`, if none could: the one check of a
/// single name that every format shares (an empty name).
pub fn unwritable(name: &str) -> Option<&'static str> {
    name.is_empty().then_some("an empty name")
}

/// Why a `kind` output cannot hold a tensor (or, for HDF5, a group) named `name`, if
/// it cannot.
pub fn name_problem(name: &str, kind: Names) -> Option<&'static str> {
    if let Some(why) = unwritable(name) {
        return Some(why);
    }
    match kind {
        Names::TfKeys => None,
        Names::Hdf5Paths if hdf5_components(name).next().is_none() => {
            Some("a name of only '/', which is no HDF5 path")
        }
        Names::Hdf5Paths if hdf5_components(name).any(|c| c == ".") => {
            Some("a name with a '.' component, which HDF5 reads as the group itself")
        }
        Names::Hdf5Paths => None,
        Names::Safetensors if name == "__metadata__" => {
            Some("the safetensors header's own \"__metadata__\" entry")
        }
        Names::Safetensors => None,
    }
}

/// The components of an HDF5 path, the empty ones (of `a//b`, `/a`) dropped.
pub fn hdf5_components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// The one check of the names an output is written under, made on the plan before any
/// writer runs (and again by a writer called without one): each name one `kind` can
/// hold, and no two tensors at one name. `names` gives each name with the source key it
/// comes from (for the message). Errors are usage errors that say what to pass.
pub fn check_names<'a>(
    target: &Path,
    kind: Names,
    names: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<()> {
    let fix = "leave one out with --exclude or rename one with --rename";
    let mut seen: HashMap<Cow<'a, str>, &'a str> = HashMap::new();
    let mut order: Vec<(Cow<'a, str>, &'a str)> = Vec::new();
    for (name, from) in names {
        if let Some(why) = name_problem(name, kind) {
            return Err(Error::Usage(format!(
                "{}: tensor {from:?} would be written as {name:?}, {why}; rename it with --rename or leave it out with --exclude",
                target.display()
            )));
        }
        let key: Cow<'a, str> = match kind {
            Names::Hdf5Paths => Cow::Owned(hdf5_components(name).collect::<Vec<_>>().join("/")),
            _ => Cow::Borrowed(name),
        };
        if let Some(first) = seen.get(&key) {
            return Err(Error::Usage(format!(
                "{}: two tensors would both be written as {key:?} (from {first:?} and {from:?}); {fix}",
                target.display()
            )));
        }
        seen.insert(key.clone(), from);
        order.push((key, from));
    }
    if kind == Names::Hdf5Paths {
        // A dataset cannot hold another: `a` and `a/b` cannot both be tensors.
        for (key, from) in &order {
            let mut at = 0;
            while let Some(k) = key[at..].find('/') {
                at += k + 1;
                let outer = &key[..at - 1];
                if let Some(first) = seen.get(outer) {
                    return Err(Error::Usage(format!(
                        "{}: tensor {first:?} would be written at {outer:?} and tensor {from:?} inside it at {key:?}, but an HDF5 dataset holds no others; {fix}",
                        target.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: Names, names: &[&str]) -> std::result::Result<(), String> {
        check_names(Path::new("out"), kind, names.iter().map(|n| (*n, *n))).map_err(|e| {
            assert!(matches!(e, Error::Usage(_)), "{e:?}");
            e.to_string()
        })
    }

    #[test]
    fn names_are_checked_once_with_one_kind_of_error() {
        assert!(check(Names::TfKeys, &["a", "a/b", "b"]).is_ok());
        let e = check(Names::TfKeys, &["a", "b", "a"]).unwrap_err();
        assert!(
            e.starts_with("out: two tensors would both be written as \"a\""),
            "{e}"
        );
        assert!(e.contains("--exclude") && e.contains("--rename"), "{e}");
        assert!(check(Names::TfKeys, &[""])
            .unwrap_err()
            .contains("an empty name"));
        assert!(check(Names::Safetensors, &[""]).is_err());
        assert!(check(Names::Safetensors, &["__metadata__"]).is_err());
        assert!(check(Names::Safetensors, &["a", "a/b"]).is_ok());
        // HDF5: empty components dropped, '.' refused, no dataset inside another.
        let e = check(Names::Hdf5Paths, &["x/y", "x//y"]).unwrap_err();
        assert!(e.contains("\"x/y\" (from \"x/y\" and \"x//y\")"), "{e}");
        assert!(check(Names::Hdf5Paths, &["/"]).is_err());
        assert!(check(Names::Hdf5Paths, &["a/./b"])
            .unwrap_err()
            .contains("'.'"));
        let e = check(Names::Hdf5Paths, &["a/b/c", "a/b"]).unwrap_err();
        assert!(e.contains("inside it"), "{e}");
        assert!(check(Names::Hdf5Paths, &["a/b", "a/c", "ab"]).is_ok());
        assert_eq!(unwritable(""), Some("an empty name"));
        assert_eq!(unwritable("x"), None);
    }
}
