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

/// One name to check: the name in the output, the source key it comes from (for the
/// message), and whether the user's `--rename` made it (see [`check_names`]).
pub type Named<'a> = (&'a str, &'a str, bool);

/// The one check of the names an output is written under, made on the plan before any
/// writer runs (and again by a writer called without one): each name one `kind` can
/// hold, and no two tensors at one name.
///
/// Whose fault a refusal is decides its exit status. A name the user's `--rename` made
/// (for either of two clashing tensors) is a usage error (exit 2): other arguments fix
/// it. A name that comes from the input as it is (`bn/beta` beside the optimizer slot
/// `bn/beta/Momentum` of any TF1 training checkpoint, for an HDF5 file) is no fault of
/// the arguments: the input holds something this output cannot, an
/// [`Error::Unsupported`] about `source` (exit 1), whose message says what to pass.
pub fn check_names<'a>(
    source: &Path,
    target: &Path,
    kind: Names,
    names: impl IntoIterator<Item = Named<'a>>,
) -> Result<()> {
    let other_format = match kind {
        Names::Hdf5Paths => ", or write .safetensors or a TF checkpoint, which hold any names",
        _ => "",
    };
    let refuse = |renamed: bool, tensor: &str, what: String, fix: &str| {
        if renamed {
            Error::Usage(format!(
                "{}: tensor {tensor:?} {what}; {fix}",
                target.display()
            ))
        } else {
            Error::unsupported_tensor(
                source,
                tensor,
                format!(
                    "cannot be written to {}: it {what}; {fix}{other_format}",
                    target.display()
                ),
            )
        }
    };
    let fix = "leave one out with --exclude or rename one with --rename";
    let mut seen: HashMap<Cow<'a, str>, (&'a str, bool)> = HashMap::new();
    let mut order: Vec<(Cow<'a, str>, &'a str, bool)> = Vec::new();
    for (name, from, renamed) in names {
        if let Some(why) = name_problem(name, kind) {
            return Err(refuse(
                renamed,
                from,
                format!("would be written as {name:?}, {why}"),
                "rename it with --rename or leave it out with --exclude",
            ));
        }
        let key: Cow<'a, str> = match kind {
            Names::Hdf5Paths => Cow::Owned(hdf5_components(name).collect::<Vec<_>>().join("/")),
            _ => Cow::Borrowed(name),
        };
        if let Some(&(first, first_renamed)) = seen.get(&key) {
            return Err(refuse(
                renamed || first_renamed,
                from,
                format!("would be written as {key:?}, as tensor {first:?} is"),
                fix,
            ));
        }
        seen.insert(key.clone(), (from, renamed));
        order.push((key, from, renamed));
    }
    if kind == Names::Hdf5Paths {
        // A dataset cannot hold another: `a` and `a/b` cannot both be tensors.
        for (key, from, renamed) in &order {
            let mut at = 0;
            while let Some(k) = key[at..].find('/') {
                at += k + 1;
                let outer = &key[..at - 1];
                if let Some(&(first, first_renamed)) = seen.get(outer) {
                    return Err(refuse(
                        *renamed || first_renamed,
                        from,
                        format!(
                            "would be written at {key:?}, inside tensor {first:?} at {outer:?}, but an HDF5 dataset holds no others"
                        ),
                        fix,
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names all made by `--rename`: every refusal is a usage error.
    fn check(kind: Names, names: &[&str]) -> std::result::Result<(), String> {
        check_names(
            Path::new("in"),
            Path::new("out"),
            kind,
            names.iter().map(|n| (*n, *n, true)),
        )
        .map_err(|e| {
            assert!(matches!(e, Error::Usage(_)), "{e:?}");
            e.to_string()
        })
    }

    #[test]
    fn names_are_checked_once_with_one_kind_of_error() {
        assert!(check(Names::TfKeys, &["a", "a/b", "b"]).is_ok());
        let e = check(Names::TfKeys, &["a", "b", "a"]).unwrap_err();
        assert!(
            e.starts_with("out: tensor \"a\" would be written as \"a\", as tensor \"a\" is"),
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
        assert!(
            e.contains("\"x//y\" would be written as \"x/y\", as tensor \"x/y\" is"),
            "{e}"
        );
        assert!(check(Names::Hdf5Paths, &["/"]).is_err());
        assert!(check(Names::Hdf5Paths, &["a/./b"])
            .unwrap_err()
            .contains("'.'"));
        let e = check(Names::Hdf5Paths, &["a/b/c", "a/b"]).unwrap_err();
        assert!(e.contains("inside tensor \"a/b\""), "{e}");
        assert!(check(Names::Hdf5Paths, &["a/b", "a/c", "ab"]).is_ok());
        assert_eq!(unwritable(""), Some("an empty name"));
        assert_eq!(unwritable("x"), None);
    }

    #[test]
    fn names_from_the_input_are_its_fault_from_a_rename_the_arguments() {
        let run = |names: &[(&str, bool)]| {
            check_names(
                Path::new("in.ckpt"),
                Path::new("out.h5"),
                Names::Hdf5Paths,
                names.iter().map(|(n, r)| (*n, *n, *r)),
            )
            .unwrap_err()
        };
        // kernel/Momentum beside kernel, as the input has them: unsupported, about the
        // input, saying what to pass.
        let e = run(&[("k", false), ("k/Momentum", false)]);
        assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
        let m = e.to_string();
        assert!(m.starts_with("in.ckpt: tensor \"k/Momentum\": "), "{m}");
        for needle in ["out.h5", "--rename", "--exclude", ".safetensors"] {
            assert!(m.contains(needle), "{needle} in {m}");
        }
        // Either of the two renamed: the arguments' fault.
        assert!(matches!(
            run(&[("k", true), ("k/Momentum", false)]),
            Error::Usage(_)
        ));
        assert!(matches!(run(&[("a", false), ("a", true)]), Error::Usage(_)));
        assert!(matches!(
            run(&[("a", false), ("a", false)]),
            Error::Unsupported { .. }
        ));
        assert!(matches!(run(&[("a/./b", false)]), Error::Unsupported { .. }));
        assert!(matches!(run(&[("a/./b", true)]), Error::Usage(_)));
    }
}
