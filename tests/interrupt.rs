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
    // Killed by the signal itself once the temporary files are gone: a shell reports
    // 128 + the signal and, for Ctrl-C, stops a loop of conversions.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "{:?} {stderr}",
        out.status
    );
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

/// Ctrl-C in a terminal signals the whole foreground process group: the shell running a
/// `for` loop and the conversion in it. bash stops the loop only if the command died of
/// SIGINT (an exit status of 130 tells it the command handled Ctrl-C itself, and it
/// carries on with the next file).
#[test]
fn ctrl_c_stops_a_shell_loop() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    common::big_safetensors(&input, 96, 8); // 768 MiB
    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).unwrap();
    let script = format!(
        "for i in 1 2 3; do {:?} convert {:?} -o {:?}/m$i.safetensors; echo \"after $i: $?\"; done; echo loop-ended",
        env!("CARGO_BIN_EXE_ckptconv"),
        input,
        outdir
    );
    let child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !fs::read_dir(&outdir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("ckptconv-tmp")
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never started writing"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: signalling the process group of our own child (its pid is the group id).
    unsafe {
        libc_kill(-(child.id() as i32), 2);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("loop-ended"), "the loop ran on: {stdout}");
    assert!(!stdout.contains("after 2"), "the loop ran on: {stdout}");
    let left: Vec<_> = fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
