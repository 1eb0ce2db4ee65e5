//! The shell habits of a Unix tool, and the training state it must not disturb: output
//! paths that mean what they say, a training directory's `checkpoint` file that keeps
//! naming the same latest checkpoint, `| head`, `ulimit -f`, filters that select nothing.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{ckptconv, stderr};

fn keras_h5() -> std::path::PathBuf {
    common::testdata().join("keras2/weights.h5")
}

#[test]
fn a_training_directory_keeps_its_latest_checkpoint() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("train");
    common::copy_dir(&common::testdata().join("tf/tf2_object"), &dir);
    let state = dir.join("checkpoint");
    let before = fs::read(&state).unwrap();
    let out = dir.join("converted");
    let o = ckptconv([Path::new("convert"), &keras_h5(), Path::new("-o"), &out]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("left alone"), "{}", stderr(&o));
    assert!(dir.join("converted.index").exists());
    assert_eq!(fs::read(&state).unwrap(), before, "the state file changed");
    // --update-state adds it as the latest, keeping the others.
    let out2 = dir.join("converted2");
    let o = ckptconv([
        Path::new("convert"),
        &keras_h5(),
        Path::new("-o"),
        &out2,
        Path::new("--update-state"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st =
        ckptconv::formats::tf::state::parse_checkpoint_state(&fs::read_to_string(&state).unwrap())
            .unwrap();
    assert_eq!(st.model_checkpoint_path, "converted2");
    assert!(st.all_model_checkpoint_paths.len() >= 3, "{st:?}");
    assert_eq!(st.all_model_checkpoint_paths.last().unwrap(), "converted2");
    // A fresh directory gets a state file naming the new checkpoint.
    let fresh = t.path().join("fresh/model");
    let o = ckptconv([Path::new("convert"), &keras_h5(), Path::new("-o"), &fresh]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = ckptconv::formats::tf::state::parse_checkpoint_state(
        &fs::read_to_string(t.path().join("fresh/checkpoint")).unwrap(),
    )
    .unwrap();
    assert_eq!(st.model_checkpoint_path, "model");
}

#[test]
fn output_paths_mean_what_they_say() {
    let t = tempfile::tempdir().unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> =
            vec!["convert".into(), keras_h5().into(), "-o".into(), out.into()];
        args.extend(extra.iter().map(Into::into));
        ckptconv(args)
    };
    // -o DIR/ and an existing directory: into it, named after the input.
    let o = run(&t.path().join("out/"), &["--to", "safetensors"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(t.path().join("out/weights.safetensors").exists());
    fs::create_dir(t.path().join("existing")).unwrap();
    let o = run(&t.path().join("existing"), &["--to", "ckpt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(t.path().join("existing/weights.index").exists());
    assert!(!t.path().join("existing.index").exists());
    // A directory without --to, an extension we do not write, a contradiction, a layout
    // that a .keras archive cannot have: usage errors, nothing written.
    for (out, extra, needle) in [
        ("dir2/", &[][..], "--to"),
        ("x.safetensor", &[][..], "not a format"),
        ("x.pt", &[][..], "not a format"),
        ("x.safetensors", &["--to", "h5"][..], "--to says"),
        ("x.keras", &["--layout", "flat"][..], "--layout"),
        ("x.weights.h5", &["--layout", "keras"][..], "Keras 3"),
    ] {
        let o = run(&t.path().join(out), extra);
        assert_eq!(o.status.code(), Some(2), "{out}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{out}: {}", stderr(&o));
    }
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        left.iter().all(|n| n == "out" || n == "existing"),
        "{left:?}"
    );
    // `--to` names a format for an extension of our choosing.
    let o = run(&t.path().join("w.bin"), &["--to", "safetensors"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_dangling_symlink_at_the_output_needs_force() {
    let t = tempfile::tempdir().unwrap();
    let link = t.path().join("w.safetensors");
    std::os::unix::fs::symlink(t.path().join("nowhere"), &link).unwrap();
    let o = ckptconv([Path::new("convert"), &keras_h5(), Path::new("-o"), &link]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn filters_that_select_nothing_are_an_error() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x.safetensors");
    let o = ckptconv([
        Path::new("convert"),
        &keras_h5(),
        Path::new("-o"),
        &out,
        Path::new("--include"),
        Path::new("nomatch*"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("select none"), "{}", stderr(&o));
    assert!(!out.exists());
}

/// `| head`: the reader goes away; every command ends quietly (exit 0, or killed by
/// SIGPIPE as `cat` is), never with a panic.
#[test]
fn every_command_survives_a_closed_pipe() {
    let h5 = common::testdata().join("keras2/long_names.h5");
    for args in [
        vec!["inspect", "--json"],
        vec!["inspect"],
        vec!["summary"],
        vec!["verify"],
        vec!["diff", h5.to_str().unwrap()],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ckptconv"))
            .args(&args)
            .arg(&h5)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before a byte is written
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.code() == Some(0) || out.status.signal() == Some(13),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}

/// Past `ulimit -f` a write fails with EFBIG: an ordinary error, temporary files removed.
#[test]
fn a_file_size_limit_is_an_ordinary_write_error() {
    let t = tempfile::tempdir().unwrap();
    let big = t.path().join("big.safetensors");
    common::big_safetensors(&big, 2, 4); // 8 MiB
    let outdir = t.path().join("out");
    fs::create_dir(&outdir).unwrap();
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 1024; exec '{}' convert '{}' -o '{}'",
            env!("CARGO_BIN_EXE_ckptconv"),
            big.display(),
            outdir.join("x").display()
        ))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?} {}", o.status, stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    let left: Vec<_> = fs::read_dir(&outdir).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A temporary output left by a process that was killed (SIGKILL gives no chance to clean
/// up) is removed by the next run that writes into the same directory; one whose process
/// is alive is left alone.
#[test]
fn leftovers_of_dead_runs_are_removed() {
    let t = tempfile::tempdir().unwrap();
    let dead = t.path().join(".w.safetensors.ckptconv-tmp-2147483646-0");
    let alive = t
        .path()
        .join(format!(".w.h5.ckptconv-tmp-{}-0", std::process::id()));
    fs::write(&dead, b"half a file").unwrap();
    fs::write(&alive, b"someone's work in progress").unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &keras_h5(),
        Path::new("-o"),
        &t.path().join("x.safetensors"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!dead.exists(), "the dead run's temporary is still there");
    assert!(alive.exists(), "a live process's temporary was removed");
}

/// A file that is none of the formats is named for what it is, not reported as a
/// checkpoint with a missing index.
#[test]
fn errors_say_what_a_file_really_is() {
    let t = tempfile::tempdir().unwrap();
    for (name, bytes, needle) in [
        ("m.keras", &b"not a zip"[..], "zip archive"),
        (
            "w.safetensors",
            &b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":"[..],
            "header of 16 bytes",
        ),
        ("w.h5", &b"hello"[..], "HDF5 signature"),
        ("notes.txt", &b"hello world\n"[..], "text file"),
        ("empty.safetensors", &b""[..], "empty file"),
    ] {
        let p = t.path().join(name);
        fs::write(&p, bytes).unwrap();
        let o = ckptconv([Path::new("inspect"), &p]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = stderr(&o);
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!err.contains(".index"), "{name}: {err}");
    }
}

/// Conversions racing to one prefix with different shard counts: whichever commits last
/// wins, and no data file of the other is left beside its index.
#[test]
fn racing_conversions_leave_no_stray_shards() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("w.safetensors");
    common::big_safetensors(&src, 6, 1);
    let out = t.path().join("out").join("model");
    let exe = env!("CARGO_BIN_EXE_ckptconv");
    for round in 0..8 {
        let spawn = |shard: &str| {
            std::process::Command::new(exe)
                .arg("convert")
                .arg(&src)
                .arg("-o")
                .arg(&out)
                .args([
                    "--force",
                    "--no-progress",
                    "--no-fsync",
                    "--max-shard-size",
                    shard,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("1MiB"), spawn("3MiB"));
        for c in [a, b] {
            let o = c.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(0), "round {round}: {}", stderr(&o));
        }
        let shards: Vec<String> = fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("model.data-"))
            .collect();
        let v = ckptconv(["verify".as_ref(), out.as_os_str()]);
        assert_eq!(v.status.code(), Some(0), "round {round}: {}", stderr(&v));
        let n = shards.len();
        assert!(n == 6 || n == 2, "round {round}: {shards:?}");
        let of = format!("-of-{n:05}");
        assert!(
            shards.iter().all(|s| s.ends_with(&of)),
            "round {round}: {shards:?}"
        );
    }
}

/// An HDF5 file that a writer holds open (libhdf5's exclusive lock) is refused as locked,
/// with what to do, not reported as damaged.
#[test]
fn an_hdf5_file_locked_by_a_writer_is_named_as_such() {
    use std::os::fd::AsRawFd;
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("busy.h5");
    fs::copy(keras_h5(), &p).unwrap();
    let held = fs::File::open(&p).unwrap();
    // SAFETY: flock on a descriptor this test owns and keeps open for the call's duration.
    let rc = unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock");
    let o = Command::new(env!("CARGO_BIN_EXE_ckptconv"))
        .env_remove("HDF5_USE_FILE_LOCKING")
        .args([Path::new("inspect"), &p])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("busy.h5") && e.contains("locked by another process"),
        "{e}"
    );
    assert!(e.contains("HDF5_USE_FILE_LOCKING=FALSE"), "{e}");
    assert!(!e.contains("corrupt"), "{e}");
    drop(held);
    let o = Command::new(env!("CARGO_BIN_EXE_ckptconv"))
        .env_remove("HDF5_USE_FILE_LOCKING")
        .args([Path::new("inspect"), &p])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The state file that led to the input, and a SavedModel's own graph and metadata, are
/// inputs too: no output may replace them, `--force` or not.
#[test]
fn a_state_file_or_saved_model_graph_is_never_an_output() {
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    common::copy_dir(&common::testdata().join("tf/tf2_object"), &run);
    let sm = t.path().join("sm");
    common::copy_dir(&common::testdata().join("tf/saved_model"), &sm);
    let state = run.join("checkpoint");
    let before = (
        fs::read(&state).unwrap(),
        fs::read(sm.join("saved_model.pb")).unwrap(),
    );
    let cases: [(&Path, std::path::PathBuf); 5] = [
        (&run, state.clone()),
        (&state, state.clone()),
        (&run.join("ckpt-1"), state.clone()),
        (&sm, sm.join("saved_model.pb")),
        (&sm.join("saved_model.pb"), sm.join("fingerprint.pb")),
    ];
    for (input, output) in cases {
        let mut args: Vec<std::ffi::OsString> = vec!["convert".into(), input.into()];
        args.extend(["-o".into(), output.clone().into()]);
        args.extend(["--to", "safetensors", "--force"].map(Into::into));
        let o = ckptconv(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{input:?} -> {output:?}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("refusing to write over an input"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(fs::read(&state).unwrap(), before.0);
    assert_eq!(fs::read(sm.join("saved_model.pb")).unwrap(), before.1);
}

/// A state file is followed only within its own directory: one that came with a
/// downloaded model must not pull in a checkpoint from elsewhere on the machine.
#[test]
fn a_state_file_pointing_out_of_its_directory_is_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("secret");
    common::copy_dir(&common::testdata().join("tf/tf2_object"), &secret);
    let evil = t.path().join("evil");
    fs::create_dir(&evil).unwrap();
    let absolute = secret.join("ckpt-2");
    for named in [absolute.display().to_string(), "../secret/ckpt-2".into()] {
        fs::write(
            evil.join("checkpoint"),
            format!("model_checkpoint_path: {named:?}\n"),
        )
        .unwrap();
        let out = t.path().join("out.safetensors");
        let state = evil.join("checkpoint");
        for args in [
            vec!["inspect".as_ref(), evil.as_os_str()],
            vec![
                "convert".as_ref(),
                state.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
            ],
        ] {
            let o = ckptconv(&args);
            assert_eq!(o.status.code(), Some(1), "{named}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("outside its own directory"),
                "{}",
                stderr(&o)
            );
        }
        assert!(!t.path().join("out.safetensors").exists());
    }
    // The same name beside the state file is its own: a copied run directory reads it.
    common::copy_dir(&secret, &evil);
    fs::write(
        evil.join("checkpoint"),
        format!(
            "model_checkpoint_path: {:?}\n",
            absolute.display().to_string()
        ),
    )
    .unwrap();
    let o = ckptconv(["inspect".as_ref(), evil.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
