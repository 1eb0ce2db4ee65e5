//! `ckptconv convert INPUT... (-o OUT | --out-dir DIR) [--to …] [--layout …] …`

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::json::{Schema, Style, Unknown};
use super::output::human_bytes;
use super::ConvertArgs;
use crate::batch::{self, Job, Outcome};
use crate::convert::{
    convert_with, parse_size, ConvertOptions, ConvertReport, Layout, OutputFormat, Progress,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::transform::Transform;

pub(crate) const AFTER_HELP: &str = "\
The input format is detected from the file's content; the output format comes
from --to or OUT's extension: .weights.h5 → Keras 3 weights, .h5/.hdf5 → Keras
2 HDF5, .keras → a Keras 3 archive, .safetensors → safetensors, none (or
.ckpt, a step number) → a TensorFlow checkpoint prefix (OUT.index +
OUT.data-*, and a `checkpoint` state file).

Layouts, checkpoint output:
  tf1     keys are variable names (dense/kernel); read by
          tf.train.load_checkpoint, tf.compat.v1.train.Saver and tf-keras
          load_weights (by name)
  object  TF2 object-based keys (layer_with_weights-0/kernel/.ATTRIBUTES/…)
          and an object graph, as tf-keras save_weights writes them
  keep    the source's own keys (default when the input is a checkpoint)
Layouts, HDF5 output:
  keras   Keras 2 save_weights layout (default); tf-keras and Keras 3 read it
  keras3  Keras 3's own layout (default for OUT ending in .weights.h5)
  flat    one dataset per tensor at its variable name

--like TEMPLATE writes the output in exactly the layout of TEMPLATE (a .keras,
.weights.h5, Keras 2 .h5 or TF-format checkpoint of the target model, any
weights): weights are matched by layer and shape, and anything left over on
either side is an error with a table.

Many inputs: with --out-dir DIR (and --to), each output mirrors its input's
path relative to the inputs' common parent: runs/a/weights → DIR/a/weights.h5.
Inputs run in parallel (--jobs); a failing input does not stop the others, and
the exit status is then 1.

Conversions are bit-exact unless --dtype casts floating tensors. Filters and
renames act on canonical variable names (dense/kernel). Tensors the output
cannot hold (strings and complex128 in safetensors) are skipped with a note on
stderr; --strict makes that an error. Outputs are written to temporary files
and renamed into place only when complete; an existing output is kept unless
--force; an input's own files are never written.

Examples:
  ckptconv convert model.ckpt -o model.h5
  ckptconv convert weights.h5 -o ckpt/model --layout object
  ckptconv convert runs/*/ --out-dir out --to h5   # each run's latest
  ckptconv convert runs/*/weights.index --out-dir out --to h5
  ckptconv convert big.ckpt -o small.safetensors --dtype bfloat16 \\
      --weights-only
  ckptconv convert m.h5 -o m.safetensors --include 'encoder/*' \\
      --rename '^encoder/=enc/'
  ckptconv convert ckpt/model -o model.weights.h5  # tf-keras → Keras 3
  ckptconv convert ckpt/model -o model.keras --like template.keras";

struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn start(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
        }
    }
    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
    fn syncing(&self) {
        if let Some(b) = &self.0 {
            b.set_message("syncing to disk");
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Bar {
    /// Batch mode: name the input converted last beside the overall bar.
    fn current(&self, input: &std::path::Path) {
        if let Some(b) = &self.0 {
            b.set_message(input.display().to_string());
        }
    }

    /// Run `f` (which prints) with the bar hidden, so that no stale bar is left in the
    /// scrollback between printed lines.
    fn suspend(&self, f: impl FnOnce()) {
        match &self.0 {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }
}

fn bar(enabled: bool, template: &str, len: u64) -> Bar {
    if !enabled || !std::io::stderr().is_terminal() {
        return Bar(None);
    }
    let b = ProgressBar::new(len);
    b.set_style(ProgressStyle::with_template(template).expect("valid template"));
    b.enable_steady_tick(Duration::from_millis(200));
    Bar(Some(b))
}

/// `--include`, `--exclude`, `--rename REGEX=REPLACEMENT`, `--weights-only`, `--dtype` as
/// a typed [`Transform`].
fn transform(args: &ConvertArgs) -> Result<Transform> {
    let mut t = Transform::default().weights_only(args.weights_only);
    for p in &args.include {
        t = t.include(p)?;
    }
    for p in &args.exclude {
        t = t.exclude(p)?;
    }
    for spec in &args.rename {
        let (pat, rep) = spec.split_once('=').ok_or_else(|| {
            Error::Usage(format!("--rename {spec:?}: expected REGEX=REPLACEMENT"))
        })?;
        t = t.rename(pat, rep)?;
    }
    if let Some(d) = &args.dtype {
        let to = DType::from_name(d)
            .ok_or_else(|| Error::Usage(format!("--dtype {d:?}: choose float16, bfloat16 or float32")))?;
        t = t.cast(to)?;
    }
    Ok(t)
}

pub(crate) fn options(
    args: &ConvertArgs,
    read: crate::formats::ReadOptions,
) -> Result<ConvertOptions> {
    let to = match &args.to {
        Some(t) => Some(OutputFormat::from_name(t).ok_or_else(|| {
            Error::Usage(format!(
                "unknown --to {t:?} (choose ckpt, h5, keras or safetensors)"
            ))
        })?),
        None => None,
    };
    let max_shard_size = match &args.max_shard_size {
        Some(s) => Some(parse_size(s).map_err(|e| Error::Usage(format!("--max-shard-size: {e}")))?),
        None => None,
    };
    Ok(ConvertOptions {
        to,
        layout: match &args.layout {
            Some(l) => Some(
                Layout::from_name(l)
                    .ok_or_else(|| Error::Usage(format!("unknown --layout {l:?}")))?,
            ),
            None => None,
        },
        force: args.force,
        strict: args.strict,
        max_shard_size,
        transform: transform(args)?,
        no_state_file: false,
        no_fsync: args.no_fsync,
        update_state: args.update_state,
        like: args.like.clone(),
        read,
        cancel: super::signals::token(),
    })
}

/// `convert --json`'s own keys (docs/json.md).
pub(crate) const JSON: Schema = Schema {
    command: "convert",
    keys: &[
        ("output", Unknown::Null),
        ("status", Unknown::Null),
        ("path", Unknown::Null),
        ("output_format", Unknown::Null),
        ("tensors", Unknown::Null),
        ("bytes", Unknown::Null),
        ("seconds", Unknown::Null),
        ("skipped", Unknown::List),
        ("files", Unknown::List),
        ("mapping", Unknown::List),
    ],
    style: Style::Line,
};

/// One input's `--json` line; `status` is `ok`, `skipped` or `failed`.
pub(crate) fn report_json(
    input: &str,
    output: &str,
    status: &str,
    r: Option<&ConvertReport>,
    err: Option<&Error>,
) -> String {
    let mut own = json!({"output": output, "status": status});
    if let Some(r) = r {
        own["path"] = json!(r.source.display().to_string());
        own["output_format"] = json!(r.format.name());
        own["tensors"] = json!(r.tensors);
        own["bytes"] = json!(r.bytes);
        own["seconds"] = json!(r.seconds);
        own["skipped"] = json!(r
            .skipped
            .iter()
            .map(|s| json!({"name": s.name, "reason": s.reason}))
            .collect::<Vec<_>>());
        own["files"] = json!(r
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>());
        own["mapping"] = json!(r
            .mapping
            .iter()
            .map(|(t, s)| json!({"template": t, "source": s}))
            .collect::<Vec<_>>());
    }
    JSON.render(&JSON.object(input, own, err))
}

fn print_outcome(job: &Job, outcome: &Outcome, json_lines: bool) {
    let (i, o) = (
        job.input.display().to_string(),
        job.output.display().to_string(),
    );
    let mut out = std::io::stdout().lock();
    // Another process's bar (xargs -P, a shell's `&`) may sit on the terminal's current
    // line: clear it first, so that no fragment of it stays beside this line.
    if !json_lines && std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        let _ = write!(out, "\r\x1b[2K");
    }
    match outcome {
        Outcome::Converted(r) => {
            for n in &r.notes {
                eprintln!("ckptconv: note: {n}");
            }
            // One note per reason (optimizer state can be thousands of tensors); the
            // full list is in --json.
            let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
            for s in &r.skipped {
                match reasons.iter_mut().find(|(why, _)| *why == s.reason) {
                    Some((_, names)) => names.push(&s.name),
                    None => reasons.push((&s.reason, vec![&s.name])),
                }
            }
            for (why, names) in reasons {
                let shown: Vec<String> = names.iter().take(3).map(|n| format!("{n:?}")).collect();
                let more = if names.len() > 3 {
                    format!(" and {} more", names.len() - 3)
                } else {
                    String::new()
                };
                eprintln!("ckptconv: {i}: skipped {}{more}: {why}", shown.join(", "));
            }
            // A directory or state file names a checkpoint: say which was picked.
            let picked =
                if job.input.is_dir() || job.input.file_name() == Some("checkpoint".as_ref()) {
                    format!("checkpoint {}; ", r.source.display())
                } else {
                    String::new()
                };
            if json_lines {
                let _ = writeln!(out, "{}", report_json(&i, &o, "ok", Some(r), None));
            } else {
                let _ = writeln!(
                    out,
                    "{i} -> {o} ({picked}{}, {} tensors, {}, {:.2} s)",
                    r.format.name(),
                    r.tensors,
                    human_bytes(r.bytes),
                    r.seconds
                );
            }
        }
        Outcome::Skipped => {
            if json_lines {
                let _ = writeln!(out, "{}", report_json(&i, &o, "skipped", None, None));
            } else {
                let _ = writeln!(out, "{i} -> {o} (skipped: output exists)");
            }
        }
        Outcome::Failed(e) => {
            if json_lines {
                let _ = writeln!(out, "{}", report_json(&i, &o, "failed", None, Some(e)));
            }
            eprintln!("ckptconv: error: {}", crate::error::chain(e));
        }
    }
}

pub(crate) fn run(args: &ConvertArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    super::signals::install_interrupt_handler();
    let opts = options(args, read)?;
    match (&args.output, &args.out_dir) {
        (Some(_), Some(_)) => Err(Error::Usage(
            "give either -o OUT or --out-dir DIR, not both".into(),
        )),
        (None, None) => Err(Error::Usage(
            "where to? give -o OUT (one input) or --out-dir DIR".into(),
        )),
        (Some(out), None) => {
            if args.inputs.len() != 1 {
                return Err(Error::Usage(format!(
                    "-o takes one input ({} given); use --out-dir DIR for many",
                    args.inputs.len()
                )));
            }
            let job = Job {
                input: args.inputs[0].clone(),
                output: out.clone(),
                shared_dir: false,
            };
            if args.skip_existing && batch::exists_output(&job.output, &opts) {
                print_outcome(&job, &Outcome::Skipped, args.json);
                return Ok(0);
            }
            let progress = bar(
                !args.no_progress && !args.json,
                "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                0,
            );
            let result = convert_with(&job.input, &job.output, &opts, &progress);
            progress.finish();
            match result {
                Ok(r) => {
                    print_outcome(&job, &Outcome::Converted(r), args.json);
                    Ok(0)
                }
                Err(e) if args.json => {
                    let code = crate::cli::exit_code(&e);
                    print_outcome(&job, &Outcome::Failed(e), true);
                    Ok(code)
                }
                Err(e) => Err(e),
            }
        }
        (None, Some(dir)) => {
            let to = opts
                .to
                .ok_or_else(|| Error::Usage("--out-dir needs --to ckpt|h5|safetensors".into()))?;
            let jobs = batch::plan(&args.inputs, dir, to)?;
            let workers = args
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let progress = bar(
                !args.no_progress && !args.json,
                "{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len} inputs ETA {eta} {msg}",
                jobs.len() as u64,
            );
            let json_lines = args.json;
            let outcomes = batch::run(
                &jobs,
                &opts,
                workers,
                args.skip_existing,
                &progress,
                &|job, o| {
                    progress.suspend(|| print_outcome(job, o, json_lines));
                    progress.current(&job.input);
                },
            );
            progress.finish();
            let failed: Vec<(&Job, &Error)> = jobs
                .iter()
                .zip(&outcomes)
                .filter_map(|(j, o)| match o {
                    Outcome::Failed(e) => Some((j, e)),
                    _ => None,
                })
                .collect();
            if failed.is_empty() {
                return Ok(0);
            }
            eprintln!(
                "ckptconv: {} of {} inputs failed:",
                failed.len(),
                jobs.len()
            );
            for (j, e) in &failed {
                eprintln!("  {}: {}", j.input.display(), crate::error::chain(e));
            }
            Ok(1)
        }
    }
}
