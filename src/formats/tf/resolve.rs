//! From what a user typed to a checkpoint prefix.
//!
//! Accepted: the prefix itself (`model.ckpt`), its `.index` file, any of its
//! `.data-NNNNN-of-NNNNN` shards, its `.meta` graph, a `checkpoint` state file or a
//! directory holding one (its `model_checkpoint_path`, relative to that directory unless
//! absolute; a checkpoint of the same name beside the state file is preferred, so that a
//! copied run directory reads its own files), a SavedModel directory (`variables/variables`), the `variables/` directory
//! itself, or a directory holding exactly one `.index` file. A path that matches none of
//! these gets an error that lists what was looked for; [`formats::open`](crate::formats::open)
//! then tries it as a V1 checkpoint (`v1::resolve`), whose names a state file records alike.

use std::path::{Path, PathBuf};

use super::bundle::index_path;
use super::state::parse_checkpoint_state;
use crate::error::{Error, Result};

/// If `name` ends with `.data-NNNNN-of-NNNNN`, the part before it.
pub fn strip_shard_suffix(name: &str) -> Option<&str> {
    let (base, _, _) = crate::naming::numbered_part(name)?;
    base.strip_suffix(".data")
}

fn with_name(path: &Path, name: &str) -> PathBuf {
    path.with_file_name(name)
}

fn exists(p: &Path) -> bool {
    p.is_file()
}

/// The checkpoint a `checkpoint` state file names: its `model_checkpoint_path` as written,
/// and where to look for it, in order: a checkpoint of that name beside the state file,
/// then the path as written (relative to the state file's directory unless absolute).
/// The first wins over an absolute path: TF1 writes absolute paths, and a copied or moved
/// run directory must not silently read the original's files. Shared by V2 and V1
/// checkpoints (`v1.rs`), whose names a state file records alike.
pub fn state_file_candidates(state: &Path) -> Result<(String, Vec<PathBuf>)> {
    let text = std::fs::read(state).map_err(|e| Error::io(state, "read", e))?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::corrupt(state, "checkpoint state file is not UTF-8 text"))?;
    let st = parse_checkpoint_state(&text)
        .map_err(|e| Error::corrupt(state, format!("checkpoint state file: {e}")))?;
    if st.model_checkpoint_path.is_empty() {
        return Err(Error::corrupt(
            state,
            "checkpoint state file has no model_checkpoint_path",
        ));
    }
    let named = PathBuf::from(&st.model_checkpoint_path);
    let dir = state.parent().unwrap_or(Path::new(""));
    let mut candidates = Vec::new();
    if let Some(base) = named.file_name() {
        candidates.push(dir.join(base));
    }
    let written = if named.is_absolute() {
        named
    } else {
        dir.join(named)
    };
    if outside(dir, &written) {
        // Only the named input is read: a state file (perhaps one that came with a
        // downloaded model) must not pull in a checkpoint from elsewhere on this machine.
        if candidates.iter().any(|c| exists(&index_path(c)) || exists(c)) {
            return Ok((st.model_checkpoint_path, candidates));
        }
        return Err(Error::unsupported(
            state,
            format!(
                "the checkpoint state file names {:?}, outside its own directory; ckptconv reads \
                 only what it is given: name that checkpoint's prefix ({}) to read it",
                st.model_checkpoint_path,
                written.display()
            ),
        ));
    }
    candidates.push(written);
    Ok((st.model_checkpoint_path, candidates))
}

/// True when `prefix` lies outside `dir` (its directory resolved, symbolic links and
/// `..` included); a prefix whose directory does not exist is not outside (it is not
/// there to read).
fn outside(dir: &Path, prefix: &Path) -> bool {
    let parent = prefix.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match (dir.canonicalize(), parent.canonicalize()) {
        (Ok(d), Ok(p)) => !p.starts_with(d),
        _ => false,
    }
}

/// Resolve a `checkpoint` state file to the prefix it names.
pub fn from_state_file(state: &Path) -> Result<PathBuf> {
    let (named, candidates) = state_file_candidates(state)?;
    if let Some(found) = candidates.iter().find(|p| exists(&index_path(p))) {
        return Ok(found.clone());
    }
    let prefix = candidates.last().expect("at least one candidate");
    Err(Error::not_found(
        state,
        format!(
            "checkpoint state file names {named:?}, but neither {} nor a V1 checkpoint {} exists",
            index_path(prefix).display(),
            prefix.display()
        ),
    ))
}

fn from_dir(dir: &Path) -> Result<PathBuf> {
    let state = dir.join("checkpoint");
    if exists(&state) {
        return from_state_file(&state);
    }
    let saved_model = dir.join("variables").join("variables");
    if exists(&index_path(&saved_model)) {
        return Ok(saved_model);
    }
    let vars = dir.join("variables");
    if exists(&index_path(&vars)) {
        return Ok(vars);
    }
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "list", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "index"))
        .collect();
    indexes.sort();
    match indexes.len() {
        1 => Ok(indexes.remove(0).with_extension("")),
        0 => Err(Error::not_found(
            dir,
            "no TensorFlow checkpoint in this directory (looked for a `checkpoint` state file, \
             variables/variables.index of a SavedModel, and *.index files)",
        )),
        _ => Err(Error::not_found(
            dir,
            format!(
                "{} checkpoints in this directory and no `checkpoint` state file to choose: {}",
                indexes.len(),
                indexes
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Resolve any accepted spelling of a TensorFlow checkpoint to its prefix.
pub fn resolve_prefix(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        return from_dir(path);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == "checkpoint" && exists(path) {
        return from_state_file(path);
    }
    if exists(&index_path(path)) {
        return Ok(path.to_path_buf());
    }
    let stem = name
        .strip_suffix(".index")
        .or_else(|| name.strip_suffix(".meta"))
        .or_else(|| strip_shard_suffix(&name));
    if let Some(stem) = stem {
        let prefix = with_name(path, stem);
        if exists(&index_path(&prefix)) {
            return Ok(prefix);
        }
        return Err(Error::not_found(
            path,
            format!(
                "looks like part of a TensorFlow checkpoint, but neither its index {} nor a V1 checkpoint {} exists",
                index_path(&prefix).display(),
                prefix.display()
            ),
        ));
    }
    if !path.exists() {
        return Err(Error::not_found(
            path,
            format!(
                "no such file, and no checkpoint index {} either",
                index_path(path).display()
            ),
        ));
    }
    Err(Error::not_found(
        path,
        format!(
            "not a TensorFlow checkpoint (no index {})",
            index_path(path).display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_suffix() {
        assert_eq!(
            strip_shard_suffix("m.ckpt.data-00000-of-00001"),
            Some("m.ckpt")
        );
        assert_eq!(strip_shard_suffix("m.data-00000-of-1"), None);
        assert_eq!(strip_shard_suffix("m.data-x0000-of-00001"), None);
        assert_eq!(strip_shard_suffix("m.index"), None);
    }
}
