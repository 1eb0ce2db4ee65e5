//! The command line as a shell user meets it: help that fits 80 columns, man pages for
//! every command, completions that offer option values, usage errors for values that
//! mean nothing, a hint for an unexpanded glob, and `--json` lines with the same keys
//! whether a conversion worked or not.

mod common;

use common::{ckptconv, copy_dir, stderr, stdout, testdata};

const COMMANDS: [&str; 8] = [
    "inspect",
    "verify",
    "summary",
    "diff",
    "show",
    "convert",
    "completions",
    "man",
];

#[test]
fn help_fits_in_80_columns() {
    let mut all = vec![vec!["--help".to_string()]];
    for c in COMMANDS {
        all.push(vec![c.to_string(), "--help".into()]);
    }
    for args in all {
        let o = ckptconv(&args);
        assert!(o.status.success(), "{args:?}");
        for line in stdout(&o).lines() {
            assert!(
                line.chars().count() <= 80,
                "{args:?}: a line of {} columns:\n{line}",
                line.chars().count()
            );
        }
    }
}

#[test]
fn a_man_page_for_every_command() {
    for c in COMMANDS {
        let o = ckptconv(["man", c]);
        assert!(o.status.success(), "{c}: {}", stderr(&o));
        let page = stdout(&o);
        assert!(page.contains(&format!(".TH ckptconv-{c}")), "{c}:\n{page}");
    }
    let convert = stdout(&ckptconv(["man", "convert"]));
    for opt in [
        "like",
        "layout",
        "dtype",
        "no\\-mmap",
        "max\\-alloc",
        "update\\-state",
    ] {
        assert!(convert.contains(opt), "ckptconv-convert(1) lacks --{opt}");
    }
    let t = tempfile::tempdir().unwrap();
    let o = ckptconv(["man".as_ref(), "--out-dir".as_ref(), t.path().as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<String> = COMMANDS.iter().map(|c| format!("ckptconv-{c}.1")).collect();
    want.push("ckptconv.1".into());
    want.sort();
    assert_eq!(names, want);
    // The top page's SEE ALSO names pages that now exist.
    let top = std::fs::read_to_string(t.path().join("ckptconv.1")).unwrap();
    assert!(top.contains("ckptconv\\-convert(1)"), "{top}");
}

#[test]
fn completions_offer_the_values_of_every_enum_option() {
    for shell in ["bash", "zsh", "fish"] {
        let o = ckptconv(["completions", shell]);
        assert!(o.status.success());
        let script = stdout(&o);
        for v in ["safetensors", "keras3", "object", "bfloat16", "float16"] {
            assert!(script.contains(v), "{shell} completions lack {v}");
        }
    }
}

#[test]
fn meaningless_values_are_usage_errors() {
    let src = testdata().join("keras2/full.h5");
    let src = src.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["convert", src, "-o", "/tmp/x.h5", "--jobs", "0"],
            "0 jobs",
        ),
        (
            vec!["convert", src, "-o", "/tmp/x", "--to", "onnx"],
            "possible values",
        ),
        (
            vec!["convert", src, "-o", "/tmp/x.h5", "--layout", "nchw"],
            "possible values",
        ),
        (
            vec!["convert", src, "-o", "/tmp/x.h5", "--dtype", "int8"],
            "possible values",
        ),
    ] {
        let o = ckptconv(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // Aliases still work.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x");
    let o = ckptconv(["convert", src, "-o", out.to_str().unwrap(), "--to", "tf"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_unexpanded_glob_gets_a_hint() {
    let o = ckptconv(["inspect", "runs/*/weights"]);
    common::assert_clean_failure(
        &o,
        &["pattern", "runs/*/weights.index", "runs/*/", "not a file"],
    );
}

#[test]
fn convert_says_which_checkpoint_a_directory_named_and_json_keys_never_change() {
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    copy_dir(&testdata().join("tf/tf2_object"), &run);
    let out = t.path().join("out");
    let o = ckptconv([
        "convert".as_ref(),
        run.as_os_str(),
        t.path().join("missing").as_os_str(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        "--to".as_ref(),
        "safetensors".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&lines[0]), keys(&lines[1]));
    let ok = lines.iter().find(|l| l["status"] == "ok").unwrap();
    assert!(ok["path"].as_str().unwrap().ends_with("ckpt-2"), "{ok}");
    let failed = lines.iter().find(|l| l["status"] == "failed").unwrap();
    assert!(failed["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing"));

    let o = ckptconv([
        "convert".as_ref(),
        run.as_os_str(),
        "-o".as_ref(),
        t.path().join("one.safetensors").as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("checkpoint "), "{}", stdout(&o));
    assert!(stdout(&o).contains("ckpt-2"), "{}", stdout(&o));
}
