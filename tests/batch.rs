//! Many inputs at once, selecting and shaping tensors, and the command-line conventions.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ckptconv::tensor::TensorSource;
use ckptconv::{formats, DType};
use common::{ckptconv, stderr, stdout};

/// `n` TF checkpoints `root/rNN/weights` converted from a Keras fixture.
fn make_runs(root: &Path, n: usize) -> Vec<PathBuf> {
    let src = common::testdata().join("keras2/tf_format");
    (0..n)
        .map(|i| {
            let p = root.join(format!("r{i:02}")).join("weights");
            let o = ckptconv([Path::new("convert"), &src, Path::new("-o"), &p]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            p
        })
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn two_dozen_checkpoints_and_a_broken_one() {
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    let mut inputs = make_runs(&runs, 24);
    let bad = runs.join("r24").join("weights");
    fs::create_dir_all(bad.parent().unwrap()).unwrap();
    fs::write(
        runs.join("r24/weights.index"),
        b"not a checkpoint index at all, sorry",
    )
    .unwrap();
    inputs.push(bad);
    let out = t.path().join("out");
    let mut args: Vec<PathBuf> = vec!["convert".into()];
    args.extend(inputs.iter().cloned());
    // tf-keras TF-format checkpoints → tf-keras object-layout checkpoints (a Keras .h5 of
    // their nested model would be refused: its frozen layers are not recorded).
    args.extend([
        "--out-dir".into(),
        out.clone(),
        "--to".into(),
        "ckpt".into(),
        "--layout".into(),
        "object".into(),
    ]);
    let o = ckptconv(&args);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("1 of 25 inputs failed"), "{err}");
    assert!(err.contains("r24/weights"), "{err}");
    assert_eq!(stdout(&o).lines().count(), 24, "one line per good input");
    for i in 0..24 {
        let p = out.join(format!("r{i:02}/weights"));
        let src = formats::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(src.verify().is_empty());
        assert_eq!(
            src.layers()
                .iter()
                .filter(|l| !l.weights.is_empty())
                .count(),
            6
        );
    }
    assert!(!out.join("r24").exists());
}

#[test]
fn collisions_are_caught_before_any_output() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    fs::create_dir(&a).unwrap();
    fs::copy(common::testdata().join("keras2/weights.h5"), a.join("w.h5")).unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("keras2/weights.h5"),
        Path::new("-o"),
        &a.join("w.safetensors"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = t.path().join("out");
    let o = ckptconv([
        Path::new("convert"),
        &a.join("w.h5"),
        &a.join("w.safetensors"),
        Path::new("--out-dir"),
        &out,
        Path::new("--to"),
        Path::new("ckpt"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("would both be written"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn jobs_1_and_jobs_4_give_identical_bytes() {
    let t = tempfile::tempdir().unwrap();
    let inputs: Vec<PathBuf> = [
        "keras2/full.h5",
        "keras3/model.keras",
        "tf/tf2_object",
        "tf/partitioned",
        "h5/mixed.h5",
    ]
    .iter()
    .map(|p| common::testdata().join(p))
    .collect();
    // `tf/partitioned` records no layer order: a Keras .h5 of it is refused, so h5
    // goes flat here.
    for to in ["h5", "safetensors", "ckpt"] {
        let mut outs = Vec::new();
        for jobs in ["1", "4"] {
            let out = t.path().join(format!("{to}-{jobs}"));
            let mut args: Vec<PathBuf> = vec!["convert".into()];
            args.extend(inputs.iter().cloned());
            args.extend([
                "--out-dir".into(),
                out.clone(),
                "--to".into(),
                to.into(),
                "--jobs".into(),
                jobs.into(),
            ]);
            if to == "h5" {
                args.extend(["--layout".into(), "flat".into()]);
            }
            let o = ckptconv(&args);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            outs.push(out);
        }
        let (a, b) = (files_under(&outs[0]), files_under(&outs[1]));
        assert_eq!(a.len(), b.len());
        assert!(!a.is_empty());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                x.strip_prefix(&outs[0]).unwrap(),
                y.strip_prefix(&outs[1]).unwrap()
            );
            assert!(
                fs::read(x).unwrap() == fs::read(y).unwrap(),
                "{} differs",
                x.display()
            );
        }
    }
}

fn convert_to_safetensors(extra: &[&str]) -> (tempfile::TempDir, Box<dyn TensorSource>) {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o.safetensors");
    let mut args: Vec<PathBuf> = vec![
        "convert".into(),
        common::testdata().join("keras2/full.h5"),
        "-o".into(),
        out.clone(),
    ];
    args.extend(extra.iter().map(PathBuf::from));
    let o = ckptconv(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let src = formats::open(&out).unwrap();
    (t, src)
}

fn names(src: &dyn TensorSource) -> Vec<String> {
    let mut v: Vec<String> = src.tensors().iter().map(|t| t.name.clone()).collect();
    v.sort();
    v
}

#[test]
fn include_exclude_rename_weights_only_and_cast() {
    let (_t, s) = convert_to_safetensors(&["--include", "conv/*", "--include", "out/*"]);
    assert_eq!(
        names(s.as_ref()),
        ["conv/bias", "conv/kernel", "out/bias", "out/kernel"]
    );

    let (_t, s) = convert_to_safetensors(&["--exclude", "*/bias", "--weights-only"]);
    let n = names(s.as_ref());
    assert!(n.iter().all(|x| !x.ends_with("/bias")), "{n:?}");
    assert!(n.contains(&"conv/kernel".to_string()));
    assert!(
        n.iter()
            .all(|x| !x.starts_with("Adam/") && x != "iteration"),
        "{n:?}"
    );

    let (_t, s) = convert_to_safetensors(&[
        "--weights-only",
        "--rename",
        "^lstm/lstm_cell/=rnn/",
        "--rename",
        "kernel$=w",
    ]);
    let n = names(s.as_ref());
    assert!(n.contains(&"rnn/recurrent_w".to_string()), "{n:?}");
    assert!(n.contains(&"conv/w".to_string()), "{n:?}");
    assert!(!n.iter().any(|x| x.starts_with("lstm/")), "{n:?}");

    // Renames that collide are errors, and nothing is written.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x.safetensors");
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("keras2/full.h5"),
        Path::new("-o"),
        &out,
        Path::new("--rename"),
        Path::new("^[a-z]+/=x/"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("would both be named"), "{}", stderr(&o));
    assert!(!out.exists());

    // Casts: floats change dtype and round to nearest; other dtypes stay.
    let orig = formats::open(&common::testdata().join("keras2/full.h5")).unwrap();
    let (_t, s) = convert_to_safetensors(&["--dtype", "float16", "--weights-only"]);
    for t in s.tensors() {
        assert_eq!(t.dtype, DType::Float16, "{}", t.name);
    }
    let k = s.find("conv/kernel").unwrap();
    let cast = s.read(k).unwrap();
    let ok = orig
        .tensors()
        .iter()
        .position(|t| t.variable == "conv/kernel")
        .unwrap();
    let want = ckptconv::transform::cast_floats(
        DType::Float32,
        DType::Float16,
        orig.read(ok).unwrap().as_bytes().unwrap(),
    )
    .unwrap();
    assert_eq!(cast.as_bytes().unwrap(), want.as_slice());
    let (_t, s) = convert_to_safetensors(&["--dtype", "bfloat16"]);
    let it = s.find("iteration").unwrap();
    assert_eq!(s.tensors()[it].dtype, DType::Int64, "integers are not cast");
}

#[test]
fn skip_existing() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("w.safetensors");
    fs::write(&out, b"old").unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &common::testdata().join("keras2/weights.h5"),
        Path::new("-o"),
        &out,
        Path::new("--skip-existing"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("skipped: output exists"));
    assert_eq!(fs::read(&out).unwrap(), b"old");
}

/// The shell loop shown in docs/cli.md, run as written.
#[test]
fn documented_shell_loop() {
    let t = tempfile::tempdir().unwrap();
    make_runs(&t.path().join("runs"), 3);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ckptconv"))
        .parent()
        .unwrap()
        .to_path_buf();
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    let line = doc
        .lines()
        .find(|l| l.starts_with("for f in runs/*/*.index"))
        .expect("docs/cli.md shows the shell loop");
    let o = Command::new("bash")
        .arg("-c")
        .arg(line)
        .current_dir(t.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for i in 0..3 {
        let p = t.path().join(format!("runs/r{i:02}/weights.safetensors"));
        assert!(formats::open(&p).unwrap().verify().is_empty());
    }
}

#[test]
fn conventions() {
    let o = ckptconv(["--version"]);
    assert!(stdout(&o).starts_with("ckptconv "));
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let o = ckptconv(["completions", shell]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("convert"), "{shell}");
    }
    let o = ckptconv(["man"]);
    assert!(stdout(&o).contains(".TH ckptconv"));
    for cmd in ["inspect", "verify", "convert", "summary", "diff"] {
        let o = ckptconv([cmd, "--help"]);
        assert!(
            stdout(&o).contains("Examples:"),
            "{cmd} --help has examples"
        );
    }
    let o = ckptconv(["convert", "a", "b", "-o", "c"]);
    assert_eq!(o.status.code(), Some(2));
    let o = ckptconv(["convert", "a", "--out-dir", "d"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--to"));
}

/// An --out-dir inside the input tree: a job would write over another job's input. The
/// whole batch is refused before anything is converted, and no input changes.
#[test]
fn a_batch_never_writes_over_any_input() {
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    for r in ["a", "b"] {
        fs::create_dir_all(runs.join(r)).unwrap();
        fs::copy(
            common::testdata().join("keras2/weights.h5"),
            runs.join(r).join("w.h5"),
        )
        .unwrap();
    }
    let before = fs::read(runs.join("a/w.h5")).unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &runs.join("a/w.h5"),
        &runs.join("b/w.h5"),
        Path::new("--out-dir"),
        &runs,
        Path::new("--to"),
        Path::new("h5"),
        Path::new("--force"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("would write over"), "{}", stderr(&o));
    assert_eq!(fs::read(runs.join("a/w.h5")).unwrap(), before);
}
