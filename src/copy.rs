//! The copy engine: tensor bytes from a source to an output file, at `cp`'s speed, in
//! bounded memory, checking stored checksums on the way and the [`Cancel`] token between
//! pieces. Writers decide where each tensor goes; this module moves the bytes.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::cancel::Cancel;
use crate::convert::Progress;
use crate::error::{Error, Result};
use crate::tensor::{write_with_crc, Pieces, TensorSource, OVERLAP_CRC_MIN};

/// Write `bytes` to `w` (writing `target`) in 8 MiB pieces, reporting progress and
/// checking for Ctrl-C between them.
pub fn write_chunked(
    w: &mut impl io::Write,
    bytes: &[u8],
    target: &Path,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Result<()> {
    for chunk in bytes.chunks(8 << 20) {
        cancel.check()?;
        w.write_all(chunk)
            .map_err(|e| Error::io(target, "write", e))?;
        progress.advance(chunk.len() as u64);
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
    cancel: &Cancel,
    progress: &dyn Progress,
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
        let crcs = write_at_offsets(src, &jobs, w.get_ref(), target, want_crc, cancel, progress)?;
        w.seek(io::SeekFrom::Start(at)).map_err(werr)?;
        return Ok(crcs);
    }
    let mut crcs = Vec::with_capacity(run.len());
    for &i in run {
        let (data, check) = src.read_unchecked(i)?;
        let bytes = data.as_bytes().expect("numeric tensor");
        let need = want_crc || check.is_some();
        let ((), crc) = write_with_crc(bytes, need, || write_chunked(w, bytes, target, cancel, progress))?;
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
    cancel: &Cancel,
    progress: &dyn Progress,
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
                cancel.check()?;
                out.write_all_at(&buf[..n], at).map_err(werr)?;
                progress.advance(n as u64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{Crc32cCheck, Format, TensorData, TensorInfo};
    use std::fs;

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
            let crcs = write_at_offsets(&src, &jobs, &out, &out_path, true, &Cancel::new(), &|n| {
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
            let e = write_at_offsets(&bad, &jobs, &out, &out_path, false, &Cancel::new(), &|_| {})
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
                let t = Transform::default().cast(to).unwrap();
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
                let crcs = write_at_offsets(&cast, &jobs, &out, &out_path, true, &Cancel::new(), &|_| {}).unwrap();
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
                let e = write_at_offsets(&bad_cast, &jobs, &out, &out_path, false, &Cancel::new(), &|_| {})
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

}
