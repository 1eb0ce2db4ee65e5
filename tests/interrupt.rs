//! Ctrl-C (SIGINT) and SIGTERM in the middle of a large conversion leave no output and no
//! temporary file behind.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn interrupt_during(signal: i32, out_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    common::big_safetensors(&input, 96, 8); // 768 MiB
    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ckptconv"))
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(outdir.join(out_name))
        .args(if out_name.ends_with(".h5") {
            &["--layout", "flat"][..]
        } else {
            &[]
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the conversion is writing (a temporary file exists), then signal.
    let start = Instant::now();
    loop {
        let writing = fs::read_dir(&outdir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains("ckptconv-tmp")
        });
        if writing || start.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc_kill(child.id() as i32, signal);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let left: Vec<_> = fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // 128 + the signal, as a shell expects of a command a signal stopped: a loop of
    // conversions stops at Ctrl-C.
    assert_eq!(out.status.code(), Some(128 + signal), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn sigint_leaves_nothing() {
    interrupt_during(2, "model");
}

#[test]
fn sigterm_leaves_nothing() {
    interrupt_during(15, "model.h5");
}
