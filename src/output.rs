//! Writing outputs without ever leaving a partial one (design §5).
//!
//! Every output file is written under a temporary name beside its target
//! (`.NAME.ckptconv-tmp-PID-N`), then fsynced and renamed into place by
//! [`OutputSet::commit`], in the order the files were created (a TF checkpoint creates its
//! data shards first and its `.index` last, so a reader never sees an index whose data is
//! missing). If anything fails before the commit — an error, a full disk, Ctrl-C or
//! SIGTERM — dropping the set removes every temporary file.
//!
//! The fsync is what makes the guarantee hold across a power loss or kernel crash: without
//! it the rename can reach the disk before the data does, and the target may come back
//! empty. It is also most of the cost of a conversion when the input is in the page cache
//! (the disk is slower than memory; `cp` does not wait for it). `--no-fsync`
//! ([`OutputSet::durable`]`(false)`) skips it for users who prefer `cp`'s trade-off; the
//! temp-then-rename protection against errors and signals stays.
//!
//! Ctrl-C and SIGTERM set a flag ([`install_interrupt_handler`]); writers call
//! [`check_interrupted`] between tensors and between chunks of large tensors, so the
//! error unwinds normally and the cleanup runs.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::tensor::{write_with_crc, TensorSource, OVERLAP_CRC_MIN};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Route Ctrl-C / SIGTERM / SIGHUP to a flag instead of killing the process, so that
/// temporary files are removed. Safe to call more than once; a second signal while the
/// first is being handled still only sets the flag.
pub fn install_interrupt_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// An error if the user asked us to stop.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(Error::Interrupted)
    } else {
        Ok(())
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
        if t.exists() && !force {
            return Err(Error::Exists(t.clone()));
        }
    }
    Ok(())
}

/// Write `bytes` to `w` (writing `target`) in 8 MiB pieces, reporting progress and
/// checking for Ctrl-C between them.
pub fn write_chunked(
    w: &mut impl io::Write,
    bytes: &[u8],
    target: &Path,
    progress: &dyn Fn(u64),
) -> Result<()> {
    for chunk in bytes.chunks(8 << 20) {
        check_interrupted()?;
        w.write_all(chunk)
            .map_err(|e| Error::io(target, "write", e))?;
        progress(chunk.len() as u64);
    }
    Ok(())
}

/// Append tensors `run` of `src`, in that order, to `w` (which writes `target`),
/// checking the source's stored checksums on the way ([`TensorSource::read_unchecked`]);
/// returns each tensor's crc32c when `want_crc`.
///
/// When the tensors lie back to back in one file ([`TensorSource::file_range`]) and make
/// at least [`OVERLAP_CRC_MIN`] bytes, the kernel copies the whole run at once
/// (`copy_file_range`, what `cp` does) while a second thread checksums it from the map:
/// one long copy is much faster than one per tensor, and fastest when it starts on a page
/// boundary of the source and a 64 KiB boundary of the output (the writers place runs so).
/// Anything else is written from the map.
pub fn append_run(
    src: &dyn TensorSource,
    run: &[usize],
    w: &mut io::BufWriter<File>,
    target: &Path,
    want_crc: bool,
    progress: &dyn Fn(u64),
) -> Result<Vec<Option<u32>>> {
    use std::os::unix::io::AsRawFd;
    let mut parts = Vec::with_capacity(run.len());
    for &i in run {
        parts.push(src.read_unchecked(i)?);
    }
    let bytes: Vec<&[u8]> = parts
        .iter()
        .map(|(d, _)| d.as_bytes().expect("numeric tensor"))
        .collect();
    let need_crc = want_crc || parts.iter().any(|(_, c)| c.is_some());
    let total: usize = bytes.iter().map(|b| b.len()).sum();
    // The file range of the whole run, if its tensors are back to back in one file.
    let ranges: Option<Vec<(&File, u64)>> = run.iter().map(|&i| src.file_range(i)).collect();
    let whole = ranges.and_then(|r| {
        let contiguous = r.windows(2).zip(&bytes).all(|(pair, b)| {
            pair[0].0.as_raw_fd() == pair[1].0.as_raw_fd()
                && pair[0].1.checked_add(b.len() as u64) == Some(pair[1].1)
        });
        contiguous.then(|| r[0])
    });
    // Checksum each tensor from the map and let its pages go at once: the kernel copies
    // from the page cache, not from this process's map, so resident memory stays at one
    // tensor however long the run.
    let crcs_of = |bytes: &[&[u8]]| -> Vec<u32> {
        bytes
            .iter()
            .zip(run)
            .map(|(b, &i)| {
                let c = crc32c::crc32c(b);
                src.release(i);
                c
            })
            .collect()
    };
    let crcs: Option<Vec<u32>> = match whole {
        Some((from, offset)) if total >= OVERLAP_CRC_MIN => {
            std::thread::scope(|s| -> Result<Option<Vec<u32>>> {
                let h = need_crc.then(|| s.spawn(|| crcs_of(&bytes)));
                let r = copy_range(w, from, offset, &bytes, target, progress);
                let crcs = h.map(|h| h.join().expect("crc32c does not panic"));
                r.map(|()| crcs)
            })?
        }
        _ => {
            let mut crcs = Vec::with_capacity(bytes.len());
            for b in &bytes {
                let ((), crc) =
                    write_with_crc(b, need_crc, || write_chunked(w, b, target, progress))?;
                crcs.extend(crc);
            }
            need_crc.then_some(crcs)
        }
    };
    for ((_, check), crc) in parts.iter().zip(crcs.iter().flatten()) {
        if let Some(c) = check {
            c.check(*crc)?;
        }
    }
    drop(parts);
    for &i in run {
        src.release(i);
    }
    Ok(match crcs {
        Some(c) if want_crc => c.into_iter().map(Some).collect(),
        _ => vec![None; run.len()],
    })
}

/// Append the bytes at `offset` of `from` (as many as `parts` hold together) to `w`'s
/// file with `copy_file_range`, falling back to writing `parts` (the same bytes, mapped)
/// where the kernel or file system cannot copy between these files.
fn copy_range(
    w: &mut io::BufWriter<File>,
    from: &File,
    offset: u64,
    parts: &[&[u8]],
    target: &Path,
    progress: &dyn Fn(u64),
) -> Result<()> {
    use std::os::unix::io::AsRawFd;
    let werr = |e: io::Error| Error::io(target, "write", e);
    io::Write::flush(w).map_err(werr)?;
    let total: usize = parts.iter().map(|b| b.len()).sum();
    let mut done = 0usize;
    while done < total {
        check_interrupted()?;
        let want = (total - done).min(64 << 20);
        let Some(mut off_in) = offset
            .checked_add(done as u64)
            .and_then(|o| i64::try_from(o).ok())
        else {
            break;
        };
        // SAFETY: both descriptors are open for the whole call (`from` and `w` are
        // borrowed); `off_in` is a valid local; a null output offset means "at the output
        // file's position, advancing it", which is where `w` continues after the flush.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut off_in,
                w.get_ref().as_raw_fd(),
                std::ptr::null_mut(),
                want,
                0,
            )
        };
        if n > 0 {
            done += n as usize;
            progress(n as u64);
            continue;
        }
        let e = io::Error::last_os_error();
        let unsupported = n == 0
            || matches!(
                e.raw_os_error(),
                Some(
                    libc::EXDEV
                        | libc::EINVAL
                        | libc::ENOSYS
                        | libc::EOPNOTSUPP
                        | libc::EBADF
                        | libc::EPERM
                )
            );
        if !unsupported {
            return Err(werr(e));
        }
        break;
    }
    // Whatever the kernel did not copy, from the map.
    let mut skip = done;
    for b in parts {
        if skip >= b.len() {
            skip -= b.len();
            continue;
        }
        write_chunked(w, &b[skip..], target, progress)?;
        skip = 0;
    }
    Ok(())
}

/// Size of the buffers [`write_at_offsets`] copies through. Large enough that a syscall
/// per buffer costs little; small enough that the page cache gives the output small
/// folios: on Linux 6.18 / ext4, 4 MiB writes made the kernel's copy 4× slower than 256 KiB
/// ones (large folios), and 1 MiB ones were sometimes 2× slower.
const COPY_BUF: usize = 256 << 10;

/// Write each tensor `jobs[k].0` of `src` at offset `jobs[k].1` of `out` (which writes
/// `target`), checking the source's stored checksums ([`TensorSource::read_unchecked`]).
///
/// The copy is a pipeline over two threads: one reads the source into a few buffers (with
/// `pread` where the source's bytes lie in a file, [`TensorSource::file_range`], so this
/// process never maps them; else from the source's data) and checksums them, the other
/// writes them out with `pwrite`. Unlike `copy_file_range`, which is as fast as `cp` only
/// when the source offset is page-aligned and the output's 64 KiB-aligned, this runs at
/// `cp`'s speed at any offsets, and its memory is the buffers.
pub fn write_at_offsets(
    src: &dyn TensorSource,
    jobs: &[(usize, u64)],
    out: &File,
    target: &Path,
    progress: &dyn Fn(u64),
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    use std::sync::mpsc;
    const BUFFERS: usize = 8;
    let werr = |e: io::Error| Error::io(target, "write", e);
    // Full buffers go to the writer; the writer hands them back.
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize, u64)>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..BUFFERS {
        empty_tx.send(Vec::new()).expect("the receiver is alive");
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> Result<()> {
            for &(i, at) in jobs {
                let (data, check) = src.read_unchecked(i)?;
                let bytes = data.as_bytes().ok_or_else(|| {
                    Error::Usage(format!("tensor {:?} is not numeric", src.tensors()[i].name))
                })?;
                let from = src.file_range(i);
                let mut crc = 0u32;
                let mut done = 0usize;
                while done < bytes.len() {
                    // The writer is gone (it failed): stop, it reports why.
                    let Ok(mut buf) = empty_rx.recv() else {
                        return Ok(());
                    };
                    let n = (bytes.len() - done).min(COPY_BUF);
                    buf.resize(n.max(buf.len()), 0);
                    match from {
                        Some((f, offset)) => {
                            let pos = offset
                                .checked_add(done as u64)
                                .ok_or_else(|| Error::Usage("source offset overflows".into()))?;
                            f.read_exact_at(&mut buf[..n], pos)
                                .map_err(|e| Error::io(src.path(), "read", e))?;
                        }
                        None => buf[..n].copy_from_slice(&bytes[done..done + n]),
                    }
                    if check.is_some() {
                        crc = crc32c::crc32c_append(crc, &buf[..n]);
                    }
                    if full_tx.send((buf, n, at + done as u64)).is_err() {
                        return Ok(());
                    }
                    done += n;
                }
                drop(data);
                src.release(i);
                if let Some(c) = check {
                    c.check(crc)?;
                }
            }
            Ok(())
        });
        let written = (|| -> Result<()> {
            for (buf, n, at) in full_rx.iter() {
                check_interrupted()?;
                out.write_all_at(&buf[..n], at).map_err(werr)?;
                progress(n as u64);
                // The reader may have finished; then the buffer is simply dropped.
                let _ = empty_tx.send(buf);
            }
            Ok(())
        })();
        // On a write error, closing the channels stops the reader.
        drop(full_rx);
        drop(empty_tx);
        let read = reader.join().expect("the reader does not panic");
        written.and(read)
    })
}

struct Pending {
    target: PathBuf,
    temp: PathBuf,
}

/// A set of output files being written; see the module docs.
#[derive(Default)]
pub struct OutputSet {
    files: Vec<Pending>,
    committed: bool,
    no_sync: bool,
}

impl OutputSet {
    pub fn new() -> Self {
        OutputSet::default()
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
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_name = format!(".{name}.ckptconv-tmp-{}-{n}", std::process::id());
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

    /// The targets, in creation order.
    pub fn targets(&self) -> Vec<PathBuf> {
        self.files.iter().map(|p| p.target.clone()).collect()
    }

    /// fsync every file, then rename each into place in creation order, then fsync the
    /// directories (no fsync when not [`durable`](Self::durable)).
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        check_interrupted()?;
        if !self.no_sync {
            for p in &self.files {
                let f = File::open(&p.temp).map_err(|e| Error::io(&p.target, "reopen", e))?;
                f.sync_all().map_err(|e| Error::io(&p.target, "sync", e))?;
            }
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in &self.files {
            fs::rename(&p.temp, &p.target)
                .map_err(|e| Error::io(&p.target, "rename into place", e))?;
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
