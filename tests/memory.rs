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

use ckptconv::{DType, TensorSource};

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
    let (f, at) = input.file_range(0).unwrap();
    let mut x = [0u8; 4];
    f.read_exact_at(&mut x, at + 4 * k).unwrap();
    let (g, at) = output.file_range(0).unwrap();
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
        let (_, at) = bs.file_range(0).unwrap();
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
