//! Committing outputs: never a partial one.
//!
//! Every output file is written under a temporary name beside its target
//! (`.NAME.ckptconv-tmp-PID-N`), then fsynced and renamed into place by
//! [`OutputSet::commit`], in the order the files were created (a TF checkpoint creates its
//! data shards first and its `.index` last, so a reader never sees an index whose data is
//! missing). If anything fails before the commit — an error, a full disk, a cancelled
//! [`Cancel`] token (Ctrl-C, SIGTERM) — dropping the set removes every temporary file.
//!
//! The fsync is what makes the guarantee hold across a power loss or kernel crash: without
//! it the rename can reach the disk before the data does, and the target may come back
//! empty. It is also most of the cost of a conversion when the input is in the page cache
//! (the disk is slower than memory; `cp` does not wait for it). `--no-fsync`
//! ([`OutputSet::durable`]`(false)`) skips it for users who prefer `cp`'s trade-off; the
//! temp-then-rename protection against errors and signals stays.
//!
//! The set carries the conversion's [`Cancel`] token, so that every writer, holding the
//! set, can check it between tensors and between chunks ([`OutputSet::cancel`]).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cancel::Cancel;
use crate::error::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What every temporary output's name holds, before the writing process's id.
pub(crate) const TEMP_MARKER: &str = ".ckptconv-tmp-";

/// Remove the temporary files that a ckptconv process killed without a chance to clean
/// up (SIGKILL, a power loss) left in `dir`: names holding `marker` then the id of a
/// process that no longer exists. Each directory is swept once per process; a file whose
/// process id is alive again (or unreadable) is left alone.
pub(crate) fn remove_stale_temps(dir: &Path, marker: &str) {
    static SWEPT: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
        let key = (dir.to_path_buf(), marker.to_string());
        if swept.contains(&key) {
            return;
        }
        swept.push(key);
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((_, rest)) = name.split_once(marker) else {
            continue;
        };
        let Some(pid) = rest
            .split('-')
            .next()
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid == std::process::id() as libc::pid_t {
            continue;
        }
        // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether `a` and `b` are the same file (same device and inode), when both exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Refuse targets that would replace an input (always) or an existing file (unless
/// `force`).
pub fn check_targets(targets: &[PathBuf], inputs: &[PathBuf], force: bool) -> Result<()> {
    for t in targets {
        if let Some(i) = inputs.iter().find(|i| same_file(t, i) || *i == t) {
            return Err(Error::Usage(format!(
                "{}: refusing to write over an input ({})",
                t.display(),
                i.display()
            )));
        }
        // A dangling symlink is something there too: replacing it needs --force.
        if (t.exists() || t.symlink_metadata().is_ok()) && !force {
            return Err(Error::Exists(t.clone()));
        }
    }
    Ok(())
}

struct Pending {
    target: PathBuf,
    temp: PathBuf,
}

/// A set of output files being written; see the module docs.
#[derive(Default)]
pub struct OutputSet {
    files: Vec<Pending>,
    cancel: Cancel,
    committed: bool,
    no_sync: bool,
}

impl OutputSet {
    /// An empty set that never fsyncs less than asked and is cancelled by nothing.
    pub fn new() -> Self {
        OutputSet::default()
    }

    /// This set, cancelled by `cancel`: the commit refuses once it is, and writers check
    /// it through [`cancel`](Self::cancel).
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// The token the work writing into this set checks.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// Whether [`commit`](Self::commit) fsyncs files and directories (the default) so the
    /// outputs survive a power loss once the command has returned.
    pub fn durable(mut self, durable: bool) -> Self {
        self.no_sync = !durable;
        self
    }

    /// Reserve a temporary path beside `target` (the file is not created). Use this when
    /// a library (libhdf5) creates the file itself.
    pub fn temp_path(&mut self, target: &Path) -> PathBuf {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
        remove_stale_temps(dir.unwrap_or(Path::new(".")), TEMP_MARKER);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_name = format!(".{name}{TEMP_MARKER}{}-{n}", std::process::id());
        let temp = match dir {
            Some(d) => d.join(temp_name),
            None => PathBuf::from(temp_name),
        };
        self.files.push(Pending {
            target: target.to_path_buf(),
            temp: temp.clone(),
        });
        temp
    }

    /// Create a temporary file beside `target` and return it for writing.
    pub fn create(&mut self, target: &Path) -> Result<File> {
        let temp = self.temp_path(target);
        File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::io(target, "create a temporary file beside", e))
    }

    /// fsync every file, then rename each into place in creation order, then fsync the
    /// directories (no fsync when not [`durable`](Self::durable)).
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        self.cancel.check()?;
        if !self.no_sync {
            for p in &self.files {
                let f = File::open(&p.temp).map_err(|e| Error::io(&p.target, "reopen", e))?;
                f.sync_all().map_err(|e| Error::io(&p.target, "sync", e))?;
            }
        }
        // All or nothing: an output being replaced is first kept under a hard link, so that
        // a rename failing half-way (a full directory, a target turned into a directory)
        // puts back every output already replaced instead of leaving a mix of old and new.
        let mut backups: Vec<Option<PathBuf>> = Vec::with_capacity(self.files.len());
        for p in &self.files {
            let backup = p.target.symlink_metadata().is_ok().then(|| {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                let name = p
                    .target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                p.target.with_file_name(format!(
                    ".{name}{TEMP_MARKER}{}-{n}-old",
                    std::process::id()
                ))
            });
            if let Some(b) = &backup {
                if fs::hard_link(&p.target, b).is_err() {
                    // No hard links here (or a directory in the way): no backup; the rename
                    // below reports the trouble if there is one.
                    backups.push(None);
                    continue;
                }
            }
            backups.push(backup);
        }
        let drop_backups = |backups: &[Option<PathBuf>]| {
            for b in backups.iter().flatten() {
                let _ = fs::remove_file(b);
            }
        };
        for (k, p) in self.files.iter().enumerate() {
            if let Err(e) = fs::rename(&p.temp, &p.target) {
                for (q, b) in self.files[..k].iter().zip(&backups) {
                    match b {
                        Some(b) => {
                            let _ = fs::rename(b, &q.target);
                        }
                        None => {
                            let _ = fs::remove_file(&q.target);
                        }
                    }
                }
                drop_backups(&backups);
                return Err(Error::io(&p.target, "rename into place", e));
            }
        }
        drop_backups(&backups);
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in &self.files {
            let d = p
                .target
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        if !self.no_sync {
            for d in dirs {
                if let Ok(f) = File::open(&d) {
                    let _ = f.sync_all();
                }
            }
        }
        self.committed = true;
        Ok(self.files.iter().map(|p| p.target.clone()).collect())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.committed {
            for p in &self.files {
                match fs::remove_file(&p.temp) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A commit whose second rename fails puts the first output back as it was: all of an
    /// invocation's outputs are replaced, or none.
    #[test]
    fn a_commit_replaces_all_outputs_or_none() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a.index");
        let b = t.path().join("b.data");
        fs::write(&a, b"old a").unwrap();
        let mut set = OutputSet::new().durable(false);
        set.create(&a).unwrap().write_all(b"new a").unwrap();
        set.create(&b).unwrap().write_all(b"new b").unwrap();
        // A non-empty directory where `b` goes: its rename fails.
        fs::create_dir(&b).unwrap();
        fs::write(b.join("x"), b"x").unwrap();
        assert!(set.commit().is_err());
        assert_eq!(fs::read(&a).unwrap(), b"old a");
        let mut names: Vec<String> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.index", "b.data"], "temporaries or backups left");
    }

    #[test]
    fn dropped_sets_leave_nothing_and_commits_rename() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out.bin");
        {
            let mut set = OutputSet::new();
            let mut f = set.create(&target).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        let mut set = OutputSet::new();
        let mut f = set.create(&target).unwrap();
        f.write_all(b"whole").unwrap();
        drop(f);
        set.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_inputs_and_existing_files() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::write(&a, b"x").unwrap();
        let link = d.path().join("b");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(matches!(
            check_targets(std::slice::from_ref(&link), std::slice::from_ref(&a), true),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            check_targets(std::slice::from_ref(&a), &[], false),
            Err(Error::Exists(_))
        ));
        assert!(check_targets(std::slice::from_ref(&a), &[], true).is_ok());
        assert!(check_targets(&[d.path().join("new")], &[a], false).is_ok());
    }
}
