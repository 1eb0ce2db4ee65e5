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
use crate::tensor::{write_with_crc, Pieces, TensorSource, OVERLAP_CRC_MIN};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The signal that interrupted us (SIGINT when none was recorded).
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(libc::SIGINT);
static COUNTER: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    SIGNAL.store(sig, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Route SIGINT / SIGTERM / SIGHUP to a flag instead of killing the process, so that
/// temporary files are removed and the process then exits with 128 + the signal's
/// number, as a shell expects of a command that a signal stopped (130 for Ctrl-C: a
/// `for` loop of conversions stops). Safe to call more than once.
pub fn install_interrupt_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: `on_signal` only stores to atomics, which is async-signal-safe; the
            // sigaction struct is zeroed (no flags, empty mask) apart from the handler.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

/// The exit code after an interruption: 128 + the signal's number.
pub fn interrupted_exit_code() -> u8 {
    (128 + SIGNAL.load(Ordering::SeqCst)).clamp(0, 255) as u8
}

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

/// Process-wide signal dispositions of the `ckptconv` binary (not of the library):
/// - SIGPIPE back to its default, so that `ckptconv inspect … | head` ends quietly when
///   `head` closes the pipe, as `cat` does, instead of failing on every later write;
/// - SIGXFSZ ignored, so that a write past `ulimit -f` fails with EFBIG, an ordinary
///   write error that removes the temporary files, instead of killing the process.
pub fn set_cli_signal_dispositions() {
    // SAFETY: setting a signal to SIG_DFL or SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Ask running work to stop, as Ctrl-C would (for a host that handles signals itself,
/// like the Python module): writers then fail with [`Error::Interrupted`].
pub fn request_interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Forget a [`request_interrupt`], once the interrupted work has unwound.
pub fn clear_interrupt() {
    INTERRUPTED.store(false, Ordering::SeqCst);
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
        // A dangling symlink is something there too: replacing it needs --force.
        if (t.exists() || t.symlink_metadata().is_ok()) && !force {
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
/// A run of at least `OVERLAP_CRC_MIN` bytes goes through [`write_at_offsets`]'s
/// two-thread pipeline (read and checksum on one core, write on the other); a smaller
/// one is written from the source's data on this thread, where a thread would cost more
/// than it saves.
pub fn append_run(
    src: &dyn TensorSource,
    run: &[usize],
    w: &mut io::BufWriter<File>,
    target: &Path,
    want_crc: bool,
    progress: &dyn Fn(u64),
) -> Result<Vec<Option<u32>>> {
    use std::io::Seek;
    let werr = |e: io::Error| Error::io(target, "write", e);
    let total = run
        .iter()
        .try_fold(0u64, |acc, &i| acc.checked_add(src.tensors()[i].byte_len))
        .ok_or_else(|| Error::corrupt(src.path(), "tensor sizes overflow"))?;
    if total >= OVERLAP_CRC_MIN as u64 {
        io::Write::flush(w).map_err(werr)?;
        let start = w.stream_position().map_err(werr)?;
        let mut jobs = Vec::with_capacity(run.len());
        let mut at = start;
        for &i in run {
            jobs.push((i, at));
            at = at
                .checked_add(src.tensors()[i].byte_len)
                .ok_or_else(|| Error::corrupt(src.path(), "tensor sizes overflow"))?;
        }
        let crcs = write_at_offsets(src, &jobs, w.get_ref(), target, want_crc, progress)?;
        w.seek(io::SeekFrom::Start(at)).map_err(werr)?;
        return Ok(crcs);
    }
    let mut crcs = Vec::with_capacity(run.len());
    for &i in run {
        let (data, check) = src.read_unchecked(i)?;
        let bytes = data.as_bytes().expect("numeric tensor");
        let need = want_crc || check.is_some();
        let ((), crc) = write_with_crc(bytes, need, || write_chunked(w, bytes, target, progress))?;
        if let (Some(c), Some(crc)) = (&check, crc) {
            c.check(crc)?;
        }
        drop(data);
        src.release(i);
        crcs.push(crc.filter(|_| want_crc));
    }
    Ok(crcs)
}

/// Size of the buffers [`write_at_offsets`] copies through. Large enough that a syscall
/// per buffer costs little; small enough that the page cache gives the output small
/// folios: on Linux 6.18 / ext4, 4 MiB writes made the kernel's copy 4× slower than 256 KiB
/// ones (large folios), and 1 MiB ones were sometimes 2× slower.
const COPY_BUF: usize = 256 << 10;

/// Write each tensor `jobs[k].0` of `src` at offset `jobs[k].1` of `out` (which writes
/// `target`), checking the source's stored checksums ([`TensorSource::read_unchecked`]);
/// returns each tensor's crc32c when `want_crc`.
///
/// The copy is a pipeline over two threads: one reads the source into a few buffers
/// ([`Pieces`]: with `pread` where the source's bytes lie in a file,
/// [`TensorSource::file_range`], so this process never maps them; else from the source's
/// data; a tensor cast by `--dtype`, [`TensorSource::cast_of`], is cast buffer by buffer)
/// and checksums them, the other writes them out with `pwrite`. Unlike `copy_file_range`, which is as fast as `cp` only
/// when the source offset is page-aligned and the output's 64 KiB-aligned, this runs at
/// `cp`'s speed at any offsets, and its memory is the buffers.
pub fn write_at_offsets(
    src: &dyn TensorSource,
    jobs: &[(usize, u64)],
    out: &File,
    target: &Path,
    want_crc: bool,
    progress: &dyn Fn(u64),
) -> Result<Vec<Option<u32>>> {
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
        let reader = s.spawn(move || -> Result<Vec<Option<u32>>> {
            let mut crcs = Vec::with_capacity(jobs.len());
            for &(i, at) in jobs {
                let mut piece = Pieces::open(src, i, want_crc)?;
                let len = piece.len();
                let mut done = 0usize;
                while done < len {
                    // The writer is gone (it failed): stop, it reports why.
                    let Ok(mut buf) = empty_rx.recv() else {
                        return Ok(crcs);
                    };
                    let n = (len - done).min(COPY_BUF);
                    buf.resize(n.max(buf.len()), 0);
                    piece.read_into(&mut buf[..n])?;
                    if full_tx.send((buf, n, at + done as u64)).is_err() {
                        return Ok(crcs);
                    }
                    done += n;
                }
                let crc = piece.finish()?;
                src.release(i);
                crcs.push(crc);
            }
            Ok(crcs)
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

    /// The temporary path reserved last, if any.
    pub fn last_temp(&self) -> Option<&Path> {
        self.files.last().map(|p| p.temp.as_path())
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
    use crate::tensor::{Crc32cCheck, Format, TensorData, TensorInfo};
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

    /// Tensors held in memory, optionally also in a file (so `file_range` is offered).
    struct Mem {
        infos: Vec<TensorInfo>,
        data: Vec<Vec<u8>>,
        file: Option<(File, Vec<u64>)>,
        corrupt: Option<usize>,
    }

    impl TensorSource for Mem {
        fn format(&self) -> Format {
            Format::Safetensors
        }
        fn path(&self) -> &Path {
            Path::new("mem")
        }
        fn tensors(&self) -> &[TensorInfo] {
            &self.infos
        }
        fn read(&self, i: usize) -> Result<TensorData<'_>> {
            Ok(TensorData::Bytes(self.data[i].as_slice().into()))
        }
        fn read_unchecked(&self, i: usize) -> Result<(TensorData<'_>, Option<Crc32cCheck>)> {
            let mut expected = crc32c::crc32c(&self.data[i]);
            if self.corrupt == Some(i) {
                expected ^= 1;
            }
            let check = Crc32cCheck {
                expected,
                file: "mem".into(),
                tensor: self.infos[i].name.clone(),
                part: String::new(),
            };
            Ok((self.read(i)?, Some(check)))
        }
        fn file_range(&self, i: usize) -> Option<crate::tensor::FileRange<'_>> {
            let (file, offs) = self.file.as_ref()?;
            let check = self.read_unchecked(i).ok()?.1;
            Some(crate::tensor::FileRange {
                file,
                offset: offs[i],
                check,
            })
        }
    }

    fn mem(sizes: &[usize], in_file: Option<&Path>) -> Mem {
        let data: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|j| (j * 31 + k * 7) as u8).collect())
            .collect();
        let infos = data
            .iter()
            .enumerate()
            .map(|(k, d)| TensorInfo {
                name: format!("t{k}"),
                variable: format!("t{k}"),
                dtype: crate::dtype::DType::UInt8,
                shape: vec![d.len() as u64],
                byte_len: d.len() as u64,
                shard: None,
                slices: 0,
                object_path: None,
            })
            .collect();
        let file = in_file.map(|p| {
            // Odd offsets, with a gap: the pipeline must read exactly each range.
            let mut all = vec![0xEEu8; 3];
            let mut offs = Vec::new();
            for d in &data {
                offs.push(all.len() as u64);
                all.extend_from_slice(d);
                all.push(0xEE);
            }
            fs::write(p, &all).unwrap();
            (File::open(p).unwrap(), offs)
        });
        Mem {
            infos,
            data,
            file,
            corrupt: None,
        }
    }

    #[test]
    fn write_at_offsets_places_every_byte_and_checks_checksums() {
        let d = tempfile::tempdir().unwrap();
        // Empty, tiny, one buffer and a bit, several buffers and an odd tail.
        let sizes = [0, 5, COPY_BUF + 1, 4 * COPY_BUF + 12345];
        for in_file in [None, Some(d.path().join("src.bin"))] {
            let src = mem(&sizes, in_file.as_deref());
            // Out of order, at odd offsets, with holes between.
            let mut jobs = Vec::new();
            let mut at = 7u64;
            for i in (0..sizes.len()).rev() {
                jobs.push((i, at));
                at += sizes[i] as u64 + 1001;
            }
            let out_path = d.path().join("out.bin");
            let out = File::create(&out_path).unwrap();
            let done = std::cell::Cell::new(0u64);
            let crcs = write_at_offsets(&src, &jobs, &out, &out_path, true, &|n| {
                done.set(done.get() + n)
            })
            .unwrap();
            drop(out);
            let got = fs::read(&out_path).unwrap();
            for (k, &(i, at)) in jobs.iter().enumerate() {
                let at = at as usize;
                if sizes[i] > 0 {
                    assert_eq!(
                        &got[at..at + sizes[i]],
                        src.data[i].as_slice(),
                        "tensor {i}"
                    );
                }
                assert_eq!(crcs[k], Some(crc32c::crc32c(&src.data[i])));
            }
            assert_eq!(done.get(), sizes.iter().sum::<usize>() as u64);

            // A stored checksum that does not match fails, naming the tensor.
            let mut bad = mem(&sizes, in_file.as_deref());
            bad.corrupt = Some(3);
            let out = File::create(&out_path).unwrap();
            let e = write_at_offsets(&bad, &jobs, &out, &out_path, false, &|_| {})
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("\"t3\"") && e.contains("checksum mismatch"),
                "{e}"
            );
        }
    }

    #[test]
    fn write_at_offsets_casts_piece_by_piece() {
        use crate::dtype::DType;
        use crate::transform::{cast_floats, Transform, Transformed};
        let d = tempfile::tempdir().unwrap();
        // float32 tensors: empty, one element, several buffers of output and an odd tail.
        let sizes = [0, 4, 4 * COPY_BUF + 12, 2 * COPY_BUF + 4096 + 8];
        for in_file in [None, Some(d.path().join("src.bin"))] {
            let float32 = |corrupt: Option<usize>| {
                let mut m = mem(&sizes, in_file.as_deref());
                for t in &mut m.infos {
                    t.dtype = DType::Float32;
                    t.shape = vec![t.byte_len / 4];
                }
                m.corrupt = corrupt;
                m
            };
            let src = float32(None);
            for to in [DType::Float16, DType::BFloat16] {
                let t = Transform::new(&[], &[], &[], false, Some(to.name())).unwrap();
                let cast = Transformed::new(&src, &t).unwrap();
                let mut jobs = Vec::new();
                let mut at = 3u64;
                for (i, info) in cast.tensors().iter().enumerate() {
                    assert_eq!(info.byte_len, sizes[i] as u64 / 2);
                    jobs.push((i, at));
                    at += info.byte_len + 17;
                }
                let out_path = d.path().join("out.bin");
                let out = File::create(&out_path).unwrap();
                let crcs = write_at_offsets(&cast, &jobs, &out, &out_path, true, &|_| {}).unwrap();
                drop(out);
                let got = fs::read(&out_path).unwrap();
                for (k, &(i, at)) in jobs.iter().enumerate() {
                    let want = cast_floats(DType::Float32, to, &src.data[i]).unwrap();
                    let at = at as usize;
                    assert!(got[at..at + want.len()] == want[..], "{to} tensor {i}");
                    assert_eq!(crcs[k], Some(crc32c::crc32c(&want)), "{to} tensor {i}");
                    let read = cast.read(i).unwrap();
                    assert!(read.as_bytes() == Some(&want[..]), "{to} read {i}");
                }
                // The stored checksum is checked over the stored bytes, through the cast.
                let bad = float32(Some(2));
                let bad_cast = Transformed::new(&bad, &t).unwrap();
                let out = File::create(&out_path).unwrap();
                let e = write_at_offsets(&bad_cast, &jobs, &out, &out_path, false, &|_| {})
                    .unwrap_err()
                    .to_string();
                assert!(
                    e.contains("\"t2\"") && e.contains("checksum mismatch"),
                    "{e}"
                );
                assert!(bad_cast.read(2).is_err());
            }
        }
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
