//! Memory stays flat for every command: a cast or a comparison of a 256 MiB tensor runs
//! in a few MiB, as a plain copy does (the peak RSS of the built binary, measured).
//!
//! How: the child's `ru_maxrss` from `wait4`. Linux counts in it the peak of the process
//! that spawned it (the memory the child shared before its `exec`), so this test binary
//! holds only these tests and keeps its own memory small: inputs are written a MiB at a
//! time, outputs are checked by `pread`ing a few elements.

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ckptconv::tensor::TensorSource;
use ckptconv::DType;

/// The limit of the issue ("Hardening II", item 7).
const LIMIT_KIB: i64 = 64 << 10;

/// Run the built binary with `args`; its exit code, stdout and peak RSS in KiB.
fn run_measured(args: &[&std::ffi::OsStr], dir: &Path) -> (Option<i32>, String, i64) {
    let out_path = dir.join("stdout.txt");
    // Waited for by `wait4` below, which gives its rusage (`Child::wait` does not).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_ckptconv"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run ckptconv");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for (`child` is never waited on: dropping
    // a `Child` does not wait); `status` and `usage` are valid for writes.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    eprintln!("ckptconv {args:?}: peak RSS {} KiB", usage.ru_maxrss);
    (
        code,
        std::fs::read_to_string(&out_path).unwrap(),
        usage.ru_maxrss,
    )
}

/// This process's own peak RSS in KiB (which the children's include).
fn own_peak_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Elements `k` of float32 tensor 0 of `input` and of tensor 0 of `output`, read with
/// `pread` (never the whole tensors).
fn element_pair(input: &dyn TensorSource, output: &dyn TensorSource, k: u64) -> (f32, Vec<u8>) {
    let size = output.tensors()[0].dtype.size().unwrap() as u64;
    let r = input.file_range(0).unwrap();
    let (f, at) = (r.file, r.offset);
    let mut x = [0u8; 4];
    f.read_exact_at(&mut x, at + 4 * k).unwrap();
    let r = output.file_range(0).unwrap();
    let (g, at) = (r.file, r.offset);
    let mut y = vec![0u8; size as usize];
    g.read_exact_at(&mut y, at + size * k).unwrap();
    (f32::from_le_bytes(x), y)
}

#[test]
fn cast_and_diff_of_256_mib_stay_under_64_mib() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a.safetensors");
    common::big_safetensors(&a, 1, 256);
    let elements = (256u64 << 20) / 4;

    // convert --dtype float16: the cast is written a buffer at a time.
    let out = t.path().join("half.safetensors");
    let (code, _, peak) = run_measured(
        &[
            "convert".as_ref(),
            a.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--dtype".as_ref(),
            "float16".as_ref(),
        ],
        t.path(),
    );
    assert_eq!(code, Some(0));
    assert!(
        peak <= LIMIT_KIB,
        "convert --dtype float16 of 256 MiB peaked at {peak} KiB (this test: {} KiB)",
        own_peak_kib()
    );
    let (src, half) = (
        ckptconv::formats::open(&a).unwrap(),
        ckptconv::formats::open(&out).unwrap(),
    );
    assert_eq!(half.tensors()[0].dtype, DType::Float16);
    assert_eq!(half.tensors()[0].byte_len, elements * 2);
    for k in [
        0,
        1,
        1023,
        1024,
        65_535,
        65_536,
        elements / 2 + 7,
        elements - 1,
    ] {
        let (x, y) = element_pair(src.as_ref(), half.as_ref(), k);
        let want = half::f16::from_f64(f64::from(x)).to_le_bytes();
        assert_eq!(y, want, "element {k} ({x})");
    }
    drop((src, half));

    // diff of two 256 MiB files that differ in one element: compared a piece at a time.
    let b = t.path().join("b.safetensors");
    std::fs::copy(&a, &b).unwrap();
    {
        let bs = ckptconv::formats::open(&b).unwrap();
        let at = bs.file_range(0).unwrap().offset;
        let f = File::options().write(true).open(&b).unwrap();
        f.write_all_at(&2.5f32.to_le_bytes(), at + 4 * 12_345_678)
            .unwrap();
    }
    let (code, stdout, peak) =
        run_measured(&["diff".as_ref(), a.as_os_str(), b.as_os_str()], t.path());
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("t0000: 1 of {elements} elements")),
        "{stdout}"
    );
    assert!(
        peak <= LIMIT_KIB,
        "diff of two 256 MiB files peaked at {peak} KiB (this test: {} KiB)",
        own_peak_kib()
    );
}

/// Without memory maps (`--no-mmap`) large tensors are still copied, checked and compared
/// a piece at a time with `pread`: every reader (safetensors, checkpoint, HDF5) stays flat.
#[test]
fn no_mmap_reads_of_256_mib_stay_under_64_mib() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a.safetensors");
    common::big_safetensors(&a, 1, 256);
    let ckpt = t.path().join("ckpt/model");
    let h5 = t.path().join("b.h5");
    let runs: [(&str, Vec<&std::ffi::OsStr>, i32); 6] = [
        (
            "convert safetensors → ckpt",
            vec![
                "convert".as_ref(),
                a.as_os_str(),
                "-o".as_ref(),
                ckpt.as_os_str(),
            ],
            0,
        ),
        (
            "convert ckpt → h5",
            vec![
                "convert".as_ref(),
                ckpt.as_os_str(),
                "-o".as_ref(),
                h5.as_os_str(),
                "--layout".as_ref(),
                "flat".as_ref(),
            ],
            0,
        ),
        (
            "verify safetensors",
            vec!["verify".as_ref(), a.as_os_str()],
            0,
        ),
        ("verify ckpt", vec!["verify".as_ref(), ckpt.as_os_str()], 0),
        ("verify h5", vec!["verify".as_ref(), h5.as_os_str()], 0),
        (
            "diff ckpt h5",
            vec!["diff".as_ref(), ckpt.as_os_str(), h5.as_os_str()],
            0,
        ),
    ];
    let mut failures = Vec::new();
    for (what, args, want) in runs {
        let mut all: Vec<&std::ffi::OsStr> = vec!["--no-mmap".as_ref()];
        all.extend(args);
        let (code, stdout, peak) = run_measured(&all, t.path());
        assert_eq!(code, Some(want), "{what}: {stdout}");
        if peak > LIMIT_KIB {
            failures.push(format!("{what} peaked at {peak} KiB"));
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:?} (this test: {} KiB)",
        own_peak_kib()
    );
}

/// Element `k` of string tensor `seed`: `len` bytes (`len + k % 7` when `len > 0`) of
/// lowercase letters (no NUL, valid UTF-8), different for every element.
fn string_element(seed: u64, k: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    let len = if len > 0 { len + (k % 7) as usize } else { 0 };
    let start = (seed * 7 + k * 13) % 26;
    out.extend((0..len as u64).map(|j| b'a' + ((start + j + j / 26) % 26) as u8));
}

/// A TensorFlow checkpoint `prefix` of string tensors, written by hand (TensorFlow's
/// encoding: varint lengths, the masked crc32c of the lengths, the bytes) a MiB at a
/// time: `(name, shape, element length)` each, in key order.
fn string_checkpoint(prefix: &Path, tensors: &[(&str, &[u64], usize)]) {
    use ckptconv::formats::tf::{coding, table};
    use ckptconv::pb;
    use prost::Message;
    use std::io::Write;
    let data = {
        let mut s = prefix.as_os_str().to_os_string();
        s.push(".data-00000-of-00001");
        std::path::PathBuf::from(s)
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, File::create(&data).unwrap());
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut elem = Vec::new();
    for (seed, &(name, shape, len)) in tensors.iter().enumerate() {
        let n: u64 = shape.iter().product();
        let mut crc = 0u32;
        let mut lens = Vec::new();
        let mut total = 0u64;
        for k in 0..n {
            string_element(seed as u64, k, len.min(1), &mut elem);
            let l = if len > 0 { len as u64 + k % 7 } else { 0 };
            total += l;
            coding::put_varint64(&mut lens, l);
            crc = coding::crc32c_extend(crc, &(l as u32).to_le_bytes());
        }
        let masked = coding::mask(crc).to_le_bytes();
        crc = coding::crc32c_extend(crc, &masked);
        w.write_all(&lens).unwrap();
        w.write_all(&masked).unwrap();
        for k in 0..n {
            string_element(seed as u64, k, len, &mut elem);
            crc = coding::crc32c_extend(crc, &elem);
            w.write_all(&elem).unwrap();
        }
        let size = lens.len() as u64 + 4 + total;
        entries.push((
            name,
            pb::BundleEntryProto {
                dtype: DType::String.to_tf(),
                shape: Some(pb::TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&d| pb::tensor_shape_proto::Dim {
                            size: d as i64,
                            name: String::new(),
                        })
                        .collect(),
                    unknown_rank: false,
                }),
                shard_id: 0,
                offset: offset as i64,
                size: size as i64,
                crc32c: coding::mask(crc),
                slices: vec![],
            },
        ));
        offset += size;
    }
    w.flush().unwrap();
    let mut index = prefix.as_os_str().to_os_string();
    index.push(".index");
    let mut tb = table::TableBuilder::new(
        std::io::BufWriter::new(File::create(index).unwrap()),
        table::TableOptions::default(),
    );
    let header = pb::BundleHeaderProto {
        num_shards: 1,
        endianness: 0,
        version: Some(pb::VersionDef {
            producer: 1,
            min_consumer: 0,
            bad_consumers: vec![],
        }),
        ..Default::default()
    };
    tb.add(b"", &header.encode_to_vec()).unwrap();
    for (name, e) in entries {
        tb.add(name.as_bytes(), &e.encode_to_vec()).unwrap();
    }
    tb.finish().unwrap().flush().unwrap();
}

/// Whether two files hold the same bytes, compared a MiB at a time.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut f, mut g) = (File::open(a).unwrap(), File::open(b).unwrap());
    if f.metadata().unwrap().len() != g.metadata().unwrap().len() {
        return false;
    }
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = f.read(&mut x).unwrap();
        if n == 0 {
            return true;
        }
        g.read_exact(&mut y[..n]).unwrap();
        if x[..n] != y[..n] {
            return false;
        }
    }
}

#[test]
fn string_tensors_of_every_rank_round_trip_through_hdf5() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let prefix = src.join("model");
    string_checkpoint(
        &prefix,
        &[
            ("a_scalar", &[], 5),
            ("b_empty", &[0], 3),
            ("c_blank", &[4], 0),
            ("d_rank3", &[3, 70_000, 2], 3),
            ("e_long", &[2, 3], 9 << 20),
        ],
    );
    let h5 = t.path().join("s.h5");
    let back = t.path().join("back");
    for args in [
        vec!["verify".as_ref(), prefix.as_os_str()],
        vec![
            "convert".as_ref(),
            prefix.as_os_str(),
            "-o".as_ref(),
            h5.as_os_str(),
            "--layout".as_ref(),
            "flat".as_ref(),
        ],
        vec!["verify".as_ref(), h5.as_os_str()],
        vec!["diff".as_ref(), prefix.as_os_str(), h5.as_os_str()],
        vec![
            "convert".as_ref(),
            h5.as_os_str(),
            "-o".as_ref(),
            back.join("model").as_os_str(),
        ],
    ] {
        let o = common::ckptconv(&args);
        assert!(o.status.success(), "{args:?}: {}", common::stderr(&o));
    }
    assert!(same_file(
        &src.join("model.data-00000-of-00001"),
        &back.join("model.data-00000-of-00001")
    ));
    // One element changed in the middle of a window: diff counts it.
    let changed = t.path().join("changed.h5");
    std::fs::copy(&h5, &changed).unwrap();
    {
        let f = hdf5::File::open_rw(&changed).unwrap();
        let ds = f.dataset("d_rank3").unwrap();
        let v: hdf5::types::VarLenUnicode = "changed".parse().unwrap();
        ds.write_slice(&[v], (1, 40_000..40_001, 1)).unwrap();
    }
    let o = common::ckptconv(["diff".as_ref(), h5.as_os_str(), changed.as_os_str()]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stdout(&o));
    assert!(
        common::stdout(&o).contains("d_rank3: 1 of 420000 elements"),
        "{}",
        common::stdout(&o)
    );
}

/// The limit for string tensors of about 1.1 GiB (issue 17): a few windows of elements.
const STRING_LIMIT_KIB: i64 = 96 << 10;

#[test]
fn gib_of_strings_streams_through_every_command() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let prefix = src.join("model");
    // 1024 strings of 1 MiB, and 512 Ki strings of 200 bytes in two dimensions.
    string_checkpoint(
        &prefix,
        &[("big", &[1024], 1 << 20), ("small", &[512, 1024], 200)],
    );
    let data = src.join("model.data-00000-of-00001");
    let mut failures = Vec::new();
    let mut measure = |what: &str, args: &[&std::ffi::OsStr], want: i32| -> String {
        let (code, stdout, peak) = run_measured(args, t.path());
        assert_eq!(code, Some(want), "{what}: {stdout}");
        if peak > STRING_LIMIT_KIB {
            failures.push(format!("{what} peaked at {peak} KiB"));
        }
        stdout
    };
    let p = prefix.as_os_str();

    let out = measure("inspect", &["inspect".as_ref(), p], 0);
    assert!(
        out.contains("small") && out.contains("[512, 1024]"),
        "{out}"
    );
    measure("verify", &["verify".as_ref(), p], 0);

    // Checkpoint to checkpoint: the stored bytes, copied as they are.
    let ck = t.path().join("ck");
    let ck_prefix = ck.join("model");
    measure(
        "convert to a checkpoint",
        &["convert".as_ref(), p, "-o".as_ref(), ck_prefix.as_os_str()],
        0,
    );
    assert!(same_file(&data, &ck.join("model.data-00000-of-00001")));

    // To HDF5 and back: the same bytes again.
    let h5 = t.path().join("strings.h5");
    measure(
        "convert to HDF5",
        &[
            "convert".as_ref(),
            p,
            "-o".as_ref(),
            h5.as_os_str(),
            "--layout".as_ref(),
            "flat".as_ref(),
        ],
        0,
    );
    measure("inspect HDF5", &["inspect".as_ref(), h5.as_os_str()], 0);
    measure("verify HDF5", &["verify".as_ref(), h5.as_os_str()], 0);
    let back = t.path().join("back");
    let back_prefix = back.join("model");
    measure(
        "convert HDF5 to a checkpoint",
        &[
            "convert".as_ref(),
            h5.as_os_str(),
            "-o".as_ref(),
            back_prefix.as_os_str(),
        ],
        0,
    );
    assert!(same_file(&data, &back.join("model.data-00000-of-00001")));
    measure(
        "diff checkpoint HDF5",
        &["diff".as_ref(), p, h5.as_os_str()],
        0,
    );
    measure(
        "diff checkpoint checkpoint",
        &["diff".as_ref(), p, ck_prefix.as_os_str()],
        0,
    );

    // safetensors cannot hold strings: they are skipped, never read.
    let st = t.path().join("s.safetensors");
    measure(
        "convert to safetensors",
        &["convert".as_ref(), p, "-o".as_ref(), st.as_os_str()],
        0,
    );
    assert!(
        failures.is_empty(),
        "{failures:?} (limit {STRING_LIMIT_KIB} KiB; this test: {} KiB)",
        own_peak_kib()
    );
}

/// Dataset `seed` of `f`: one variable-length string of `len` bytes. Returns where its
/// one element (a length and a global heap id, 16 bytes) lies in the file.
fn write_seed(f: &hdf5::File, len: usize) -> u64 {
    use hdf5::types::VarLenUnicode;
    let big: VarLenUnicode = "x".repeat(len).parse().unwrap();
    let seed = f
        .new_dataset::<VarLenUnicode>()
        .shape([1])
        .create("seed")
        .unwrap();
    seed.write(&[big]).unwrap();
    seed.offset().unwrap()
}

/// The seed's element as read back from the file: its length is the string's.
fn check_seed_element(element: &[u8; 16], len: usize) {
    assert_eq!(
        u32::from_le_bytes(element[..4].try_into().unwrap()),
        len as u32
    );
}

/// An HDF5 file of a few MB whose variable-length string dataset `strs` (`n` elements)
/// has every element point at the same global heap object of `len` bytes: libhdf5
/// decodes `n × len` bytes from it. Written with libhdf5 (one `len`-byte string in a
/// dataset `seed`, `n` empty strings in `strs`), then each element of `strs` (a length
/// and a heap id, 16 bytes) overwritten with the seed's.
fn aliasing_h5(path: &Path, n: usize, len: usize) {
    use hdf5::types::VarLenUnicode;
    let (seed_at, strs_at) = {
        let f = hdf5::File::create(path).unwrap();
        let seed_at = write_seed(&f, len);
        let strs = f
            .new_dataset::<VarLenUnicode>()
            .shape([n])
            .create("strs")
            .unwrap();
        let empty: VarLenUnicode = "".parse().unwrap();
        strs.write(&vec![empty; n]).unwrap();
        (seed_at, strs.offset().unwrap())
    };
    let f = File::options().read(true).write(true).open(path).unwrap();
    let mut element = [0u8; 16];
    f.read_exact_at(&mut element, seed_at).unwrap();
    check_seed_element(&element, len);
    let block: Vec<u8> = element.iter().copied().cycle().take(16 * n).collect();
    f.write_all_at(&block, strs_at).unwrap();
}

#[test]
fn vlen_strings_sharing_one_heap_object_are_bounded() {
    let t = tempfile::tempdir().unwrap();
    let h5 = t.path().join("alias.h5");
    // 100,000 × 40 KB = 4 GB of strings from a file of a few MB.
    aliasing_h5(&h5, 100_000, 40_000);
    let size = std::fs::metadata(&h5).unwrap().len();
    assert!(size < 8 << 20, "{size} bytes");
    let mut failures = Vec::new();
    let mut measure = |what: &str, args: &[&std::ffi::OsStr], want: i32| -> String {
        let (code, stdout, peak) = run_measured(args, t.path());
        assert_eq!(code, Some(want), "{what}: {stdout}");
        if peak > LIMIT_KIB {
            failures.push(format!("{what} peaked at {peak} KiB"));
        }
        stdout
    };
    let f = h5.as_os_str();
    let out = measure("inspect", &["inspect".as_ref(), f], 0);
    assert!(out.contains("strs") && out.contains("[100000]"), "{out}");
    let out = measure("verify", &["verify".as_ref(), f], 1);
    assert!(out.contains("strs") || out.is_empty(), "{out}");
    let ck = t.path().join("ck");
    measure(
        "convert to a checkpoint",
        &[
            "convert".as_ref(),
            f,
            "-o".as_ref(),
            ck.join("model").as_os_str(),
        ],
        1,
    );
    assert!(!ck.join("model.index").exists());
    measure(
        "convert to HDF5",
        &[
            "convert".as_ref(),
            f,
            "-o".as_ref(),
            t.path().join("out.h5").as_os_str(),
            "--layout".as_ref(),
            "flat".as_ref(),
        ],
        1,
    );
    assert!(
        failures.is_empty(),
        "{failures:?} (limit {LIMIT_KIB} KiB; this test: {} KiB)",
        own_peak_kib()
    );
    // The errors name the file, the dataset and what is wrong.
    let o = common::ckptconv([
        "convert".as_ref(),
        f,
        "-o".as_ref(),
        ck.join("m").as_os_str(),
    ]);
    common::assert_clean_failure(&o, &["alias.h5", "strs", "decode to more than"]);
    let o = common::ckptconv(["verify".as_ref(), f]);
    common::assert_clean_failure(&o, &["alias.h5", "strs", "decode to more than"]);
}

/// A Keras 2 weights file whose root attribute `layer_names` holds `n` variable-length
/// strings that all point at one global heap object of `len` bytes (libhdf5 decodes an
/// attribute whole: `n × len` bytes). Written with libhdf5 (one `len`-byte string in a
/// dataset `seed`, `n` one-letter names in the attribute), then each of the attribute's
/// elements (a length, a heap collection address, an index: 16 bytes, found as the run
/// of records of length 1 in one collection) overwritten with the seed's. `latest`: the
/// newest file format (version 2 object headers; an attribute over 64 KiB is then kept
/// in dense storage, outside the header).
fn aliasing_attr_h5(path: &Path, n: usize, len: usize, latest: bool, patch: bool) {
    use hdf5::types::VarLenUnicode;
    let seed_at = {
        let f = if latest {
            hdf5::File::with_options()
                .with_fapl(|p| p.libver_latest())
                .create(path)
                .unwrap()
        } else {
            hdf5::File::create(path).unwrap()
        };
        let seed_at = write_seed(&f, len);
        let q: VarLenUnicode = "q".parse().unwrap();
        f.new_attr::<VarLenUnicode>()
            .shape([n])
            .create("layer_names")
            .unwrap()
            .write(&vec![q; n])
            .unwrap();
        seed_at
    };
    if !patch {
        return;
    }
    let mut b = std::fs::read(path).unwrap();
    let element: [u8; 16] = b[seed_at as usize..seed_at as usize + 16]
        .try_into()
        .unwrap();
    check_seed_element(&element, len);
    let one = 1u32.to_le_bytes();
    let mut patched = 0;
    let mut i = 0;
    while i + 32 <= b.len() {
        let run =
            b[i..i + 4] == one && b[i + 16..i + 20] == one && b[i + 4..i + 12] == b[i + 20..i + 28];
        if !run {
            i += 1;
            continue;
        }
        let heap: [u8; 8] = b[i + 4..i + 12].try_into().unwrap();
        while i + 16 <= b.len() && b[i..i + 4] == one && b[i + 4..i + 12] == heap {
            b[i..i + 16].copy_from_slice(&element);
            patched += 1;
            i += 16;
        }
    }
    assert!(
        patched + 16 >= n && patched <= n,
        "{patched} of {n} elements patched"
    );
    std::fs::write(path, b).unwrap();
}

/// A vlen-string attribute bomb (found by an independent tester: an 853 KB file made
/// every command peak at 1.6 GB): `layer_names` of 100,000 elements (dense storage) and
/// of 3,000 (in a version 1 object header) all pointing at one 40 KB string. Every
/// command refuses it with a limit error naming the attribute, in a few MiB, before
/// libhdf5 decodes it. (A version 2 header is checksummed, so the same patch there
/// makes the header unreadable instead; the unpatched file shows its attribute is
/// found and bounded in such a header, and read: the error is then Keras' own.)
#[test]
fn vlen_attribute_elements_sharing_one_heap_object_are_bounded() {
    let t = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, n, latest, patch, words) in [
        ("dense.h5", 100_000, true, true, "dense attribute storage"),
        (
            "compact_v1.h5",
            3_000,
            false,
            true,
            "decode to 120000000 bytes",
        ),
        (
            "honest_v2.h5",
            3_000,
            true,
            false,
            "but there is no group /q",
        ),
    ] {
        let h5 = t.path().join(name);
        aliasing_attr_h5(&h5, n, 40_000, latest, patch);
        let size = std::fs::metadata(&h5).unwrap().len();
        assert!(size < 8 << 20, "{size} bytes");
        let f = h5.as_os_str();
        let ck = t.path().join("ck");
        for (what, args) in [
            ("inspect", vec!["inspect".as_ref(), f]),
            ("verify", vec!["verify".as_ref(), f]),
            ("summary", vec!["summary".as_ref(), f]),
            (
                "convert",
                vec![
                    "convert".as_ref(),
                    f,
                    "-o".as_ref(),
                    ck.join("model").as_os_str(),
                ],
            ),
        ] {
            let (code, _, peak) = run_measured(&args, t.path());
            assert_eq!(code, Some(1), "{name} {what}");
            if peak > LIMIT_KIB {
                failures.push(format!("{name} {what} peaked at {peak} KiB"));
            }
        }
        assert!(!ck.exists());
        let o = common::ckptconv(["inspect".as_ref(), f, "--json".as_ref()]);
        let out = common::stdout(&o) + &common::stderr(&o);
        assert!(
            out.contains(name) && out.contains("layer_names") && out.contains(words),
            "{name}: {out}"
        );
        assert_eq!(
            out.contains("\"limit\""),
            patch,
            "{name}: a limit error when patched: {out}"
        );
    }
    assert!(
        failures.is_empty(),
        "{failures:?} (limit {LIMIT_KIB} KiB; this test: {} KiB)",
        own_peak_kib()
    );
}

/// A V1 checkpoint (TensorFlow's tensor-slice table: the tensors are table values) of 64
/// float32 tensors of 4 MiB, 256 MiB in all, written a tensor at a time: tensor `i`'s
/// element `k` is `i * 1e6 + k`.
fn v1_checkpoint(path: &Path, n: usize, elements: usize) {
    use ckptconv::formats::tf::slice::{encode_slice_key, Extent};
    use ckptconv::formats::tf::table::{TableBuilder, TableOptions};
    use ckptconv::pb::{
        tensor_shape_proto::Dim, tensor_slice_proto::Extent as PExtent, SavedSlice, SavedSliceMeta,
        SavedTensorSliceMeta, SavedTensorSlices, TensorProto, TensorShapeProto, TensorSliceProto,
    };
    use prost::Message;
    let full = || TensorSliceProto {
        extent: vec![PExtent {
            start: 0,
            has_length: None,
        }],
    };
    let name = |i: usize| format!("t{i:04}");
    let meta = SavedTensorSlices {
        meta: Some(SavedTensorSliceMeta {
            tensor: (0..n)
                .map(|i| SavedSliceMeta {
                    name: name(i),
                    shape: Some(TensorShapeProto {
                        dim: vec![Dim {
                            size: elements as i64,
                            name: String::new(),
                        }],
                        unknown_rank: false,
                    }),
                    r#type: 1,
                    slice: vec![full()],
                })
                .collect(),
            versions: None,
        }),
        data: None,
    };
    let out = std::io::BufWriter::new(File::create(path).unwrap());
    let mut b = TableBuilder::new(out, TableOptions::default());
    b.add(b"", &meta.encode_to_vec()).unwrap();
    for i in 0..n {
        let value = SavedTensorSlices {
            meta: None,
            data: Some(SavedSlice {
                name: name(i),
                slice: Some(full()),
                data: Some(TensorProto {
                    float_val: (0..elements).map(|k| (i * 1_000_000 + k) as f32).collect(),
                    ..Default::default()
                }),
            }),
        };
        let key = encode_slice_key(
            name(i).as_bytes(),
            &[Extent {
                start: 0,
                length: -1,
            }],
        );
        b.add(&key, &value.encode_to_vec()).unwrap();
    }
    std::io::Write::flush(&mut b.finish().unwrap()).unwrap();
}

#[test]
fn v1_checkpoint_of_256_mib_stays_under_64_mib() {
    let t = tempfile::tempdir().unwrap();
    let ck = t.path().join("big.ckpt");
    let (n, elements) = (64, 1 << 20);
    v1_checkpoint(&ck, n, elements);
    // Each tensor is borrowed from its table block, checked, copied and released in turn.
    let out = t.path().join("big.safetensors");
    let (code, _, peak) = run_measured(
        &[
            "convert".as_ref(),
            ck.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--no-progress".as_ref(),
        ],
        t.path(),
    );
    assert_eq!(code, Some(0));
    assert!(
        peak <= LIMIT_KIB,
        "convert of a 256 MiB V1 checkpoint peaked at {peak} KiB (this test: {} KiB)",
        own_peak_kib()
    );
    let (code, _, peak) = run_measured(&["verify".as_ref(), ck.as_os_str()], t.path());
    assert_eq!(code, Some(0));
    assert!(
        peak <= LIMIT_KIB,
        "verify of a 256 MiB V1 checkpoint peaked at {peak} KiB (this test: {} KiB)",
        own_peak_kib()
    );
    let st = ckptconv::formats::open(&out).unwrap();
    assert_eq!(st.tensors().len(), n);
    for (i, k) in [(0usize, 0u64), (17, 12_345), (63, elements as u64 - 1)] {
        let j = st.find(&format!("t{i:04}")).unwrap();
        let r = st.file_range(j).unwrap();
        let (f, at) = (r.file, r.offset);
        let mut x = [0u8; 4];
        f.read_exact_at(&mut x, at + 4 * k).unwrap();
        assert_eq!(f32::from_le_bytes(x), (i * 1_000_000 + k as usize) as f32);
    }
}
