//! Converting many inputs in one invocation (`convert IN... --out-dir DIR`).
//!
//! Each output mirrors its input's path relative to the inputs' common parent directory:
//! `runs/a/weights` and `runs/b/weights` become `DIR/a/weights.h5` and `DIR/b/weights.h5`.
//! The input's own format suffix (`.index`, `.data-…`, a V1 shard's `-00000-of-00002`,
//! `.h5`, `.weights.h5`, `.keras`, `.safetensors`, …) is replaced by the output's. Inputs naming the same checkpoint
//! (its `.index` and its shards, say, as a shell glob gives them) are converted once. Two
//! different inputs that would write the same output are a usage error found before any
//! work starts. A failing input does not stop the others; [`run`] returns every outcome.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::convert::{convert, ConvertOptions, ConvertReport, OutputFormat, Progress};
use crate::error::{Error, Result};

/// One input and where its output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
    /// Another checkpoint goes to the same directory: no single `checkpoint` state file
    /// can name "the latest", so none is written (and the result does not depend on the
    /// order in which jobs finish).
    pub shared_dir: bool,
}

/// What happened to one job.
#[derive(Debug)]
pub enum Outcome {
    Converted(ConvertReport),
    /// `--skip-existing` and the output was there.
    Skipped,
    Failed(Error),
}

/// Suffixes that name a format, longest first.
const SUFFIXES: &[&str] = &[
    ".h5.index.json",
    ".weights.json",
    ".weights.h5",
    ".safetensors",
    ".index",
    ".meta",
    ".hdf5",
    ".keras",
    ".h5",
    ".pb",
];

/// `runs/a/weights.index` → `runs/a/weights`; shards lose their `.data-…` part.
pub fn strip_format_suffix(path: &Path) -> PathBuf {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return path.to_path_buf();
    };
    if let Some(base) = crate::formats::tf::resolve::strip_shard_suffix(name) {
        return path.with_file_name(base);
    }
    // A V1 checkpoint's shard `export-00000-of-00002`: the checkpoint is `export`.
    if let Some((base, _, _)) = crate::formats::tf::v1::shard_name(name) {
        return path.with_file_name(base);
    }
    for s in SUFFIXES {
        if let Some(base) = name.strip_suffix(s) {
            if !base.is_empty() {
                return path.with_file_name(base);
            }
        }
    }
    path.to_path_buf()
}

/// Whether `path` names a TensorFlow checkpoint by one of its parts (prefix, `.index`,
/// `.meta`, a data shard): such names of one checkpoint are the same input.
fn is_tf_part(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".index")
        || name.ends_with(".meta")
        || crate::formats::tf::resolve::strip_shard_suffix(name).is_some()
        || !SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// A path made absolute and lexically normalized (`.` and `..` resolved, trailing `/`
/// dropped), without touching the file system beyond the current directory.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The deepest directory containing every path.
fn common_parent(paths: &[PathBuf]) -> PathBuf {
    let mut iter = paths
        .iter()
        .map(|p| p.parent().unwrap_or(Path::new("/")).to_path_buf());
    let Some(mut common) = iter.next() else {
        return PathBuf::from("/");
    };
    for p in iter {
        while !p.starts_with(&common) {
            if !common.pop() {
                break;
            }
        }
    }
    common
}

/// The output of each input under `out_dir` (see the module docs).
pub fn plan(inputs: &[PathBuf], out_dir: &Path, to: OutputFormat) -> Result<Vec<Job>> {
    let stems: Vec<PathBuf> = inputs
        .iter()
        .map(|i| normalize(&strip_format_suffix(i)))
        .collect();
    let parent = common_parent(&stems);
    let ext = match to {
        OutputFormat::Ckpt => "",
        OutputFormat::H5 => ".h5",
        OutputFormat::Safetensors => ".safetensors",
        OutputFormat::Keras => ".keras",
    };
    let mut jobs: Vec<Job> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new(); // stems of TF checkpoints already planned
    for (input, stem) in inputs.iter().zip(&stems) {
        if is_tf_part(input) {
            if seen.contains(stem) {
                continue; // the same checkpoint named twice (e.g. its .index and a shard)
            }
            seen.push(stem.clone());
        }
        let rel = stem.strip_prefix(&parent).unwrap_or(stem);
        let mut out = out_dir.join(rel).into_os_string();
        out.push(ext);
        let output = PathBuf::from(out);
        if let Some(j) = jobs.iter().find(|j| j.output == output) {
            return Err(Error::Usage(format!(
                "{} and {} would both be written to {}; nothing was converted",
                j.input.display(),
                input.display(),
                output.display()
            )));
        }
        jobs.push(Job {
            input: input.clone(),
            output,
            shared_dir: false,
        });
    }
    check_outputs_against_inputs(&jobs, to)?;
    if to == OutputFormat::Ckpt {
        let dirs: Vec<Option<PathBuf>> = jobs
            .iter()
            .map(|j| j.output.parent().map(Path::to_path_buf))
            .collect();
        for (k, j) in jobs.iter_mut().enumerate() {
            j.shared_dir = dirs
                .iter()
                .enumerate()
                .any(|(m, d)| m != k && *d == dirs[k]);
        }
    }
    Ok(jobs)
}

/// The files an input is made of, as far as its name tells (no file is opened): the
/// file itself and its siblings named after its stem (a checkpoint's `.index`, `.meta`
/// and shards, a sharded Keras file's parts), or every file below a directory.
fn input_files(input: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if input.is_dir() {
        let mut stack = vec![input.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten().take(100_000) {
                let p = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() && out.len() < 100_000 => stack.push(p),
                    Ok(_) => out.push(normalize(&p)),
                    Err(_) => {}
                }
            }
        }
        return out;
    }
    out.push(normalize(input));
    let stem = strip_format_suffix(input);
    if let (Some(dir), Some(base)) = (stem.parent(), stem.file_name().and_then(|n| n.to_str())) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if name
                    .strip_prefix(base)
                    .is_some_and(|r| r.starts_with('.') || r.starts_with('_'))
                {
                    out.push(normalize(&dir.join(name)));
                }
            }
        }
    }
    out
}

/// Before any work starts: no job may write any file of any job's input (an `--out-dir`
/// inside the input tree would otherwise let one job overwrite another's input, which
/// would then be converted in its altered form).
fn check_outputs_against_inputs(jobs: &[Job], to: OutputFormat) -> Result<()> {
    let mut inputs: Vec<(PathBuf, &Path)> = Vec::new();
    for j in jobs {
        inputs.extend(
            input_files(&j.input)
                .into_iter()
                .map(|f| (f, j.input.as_path())),
        );
    }
    for j in jobs {
        let out = normalize(&j.output);
        let hits = |f: &Path| match to {
            OutputFormat::Ckpt => {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let base = out.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                f.parent() == out.parent()
                    && (name == format!("{base}.index")
                        || name.starts_with(&format!("{base}.data-"))
                        || (!j.shared_dir && name == "checkpoint"))
            }
            _ => f == out,
        };
        if let Some((f, input)) = inputs.iter().find(|(f, _)| hits(f)) {
            return Err(Error::Usage(format!(
                "{} would write over {}, a file of input {}; nothing was converted (choose an --out-dir outside the inputs)",
                j.output.display(),
                f.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Convert every job with `jobs` worker threads; `done` is called as each finishes (from
/// the worker thread, one at a time). Returns the outcomes in job order.
pub fn run(
    list: &[Job],
    opts: &ConvertOptions,
    workers: usize,
    skip_existing: bool,
    progress: &(dyn Progress + Sync),
    done: &(dyn Fn(&Job, &Outcome) + Sync),
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..list.len()).map(|_| None).collect());
    let report = Mutex::new(());
    let workers = workers.clamp(1, list.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = list.get(i) else { break };
                let outcome = if opts.cancel.is_cancelled() {
                    Outcome::Failed(Error::Interrupted)
                } else if skip_existing && exists_output(&job.output, opts) {
                    Outcome::Skipped
                } else {
                    let shared;
                    let o = if job.shared_dir {
                        shared = ConvertOptions {
                            no_state_file: true,
                            ..opts.clone()
                        };
                        &shared
                    } else {
                        opts
                    };
                    match convert(&job.input, &job.output, o) {
                        Ok(r) => Outcome::Converted(r),
                        Err(e) => Outcome::Failed(e),
                    }
                };
                {
                    let _g = report.lock().unwrap_or_else(|p| p.into_inner());
                    progress.advance(1);
                    done(job, &outcome);
                }
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(outcome);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Failed(Error::Interrupted)))
        .collect()
}

/// Whether an output is already there (for a checkpoint: its `.index`).
pub fn exists_output(output: &Path, opts: &ConvertOptions) -> bool {
    match opts
        .to
        .or_else(|| OutputFormat::from_path(output))
        .unwrap_or(OutputFormat::Ckpt)
    {
        OutputFormat::Ckpt => crate::formats::tf::bundle::index_path(output).exists(),
        _ => output.exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_relative_paths() {
        let inputs = vec![
            PathBuf::from("/r/runs/a/weights"),
            PathBuf::from("/r/runs/b/weights.index"),
            PathBuf::from("/r/runs/b/weights.data-00000-of-00001"),
            PathBuf::from("/r/runs/c/m.weights.h5"),
        ];
        let jobs = plan(&inputs, Path::new("/out"), OutputFormat::H5).unwrap();
        let outs: Vec<_> = jobs.iter().map(|j| j.output.clone()).collect();
        assert_eq!(
            outs,
            [
                PathBuf::from("/out/a/weights.h5"),
                PathBuf::from("/out/b/weights.h5"),
                PathBuf::from("/out/c/m.h5")
            ]
        );
        let one = plan(
            &[PathBuf::from("/x/y/model.h5")],
            Path::new("o"),
            OutputFormat::Ckpt,
        )
        .unwrap();
        assert_eq!(one[0].output, PathBuf::from("o/model"));
    }

    #[test]
    fn collisions_are_found_before_work() {
        let inputs = vec![
            PathBuf::from("/r/a/w.h5"),
            PathBuf::from("/r/a/w.safetensors"),
        ];
        let e = plan(&inputs, Path::new("/o"), OutputFormat::Ckpt).unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
        assert!(e.to_string().contains("/o/w"), "{e}");
    }

    #[test]
    fn suffixes() {
        assert_eq!(
            strip_format_suffix(Path::new("a/m.weights.json")),
            PathBuf::from("a/m")
        );
        assert_eq!(
            strip_format_suffix(Path::new("a/ckpt-3.meta")),
            PathBuf::from("a/ckpt-3")
        );
        assert_eq!(
            strip_format_suffix(Path::new("a/model.ckpt")),
            PathBuf::from("a/model.ckpt")
        );
        assert_eq!(
            strip_format_suffix(Path::new("a/.h5")),
            PathBuf::from("a/.h5")
        );
        assert_eq!(
            strip_format_suffix(Path::new("a/export-00001-of-00002")),
            PathBuf::from("a/export")
        );
        assert_eq!(
            strip_format_suffix(Path::new("a/tf_model-00001-of-00002.h5")),
            PathBuf::from("a/tf_model-00001-of-00002")
        );
    }
}
