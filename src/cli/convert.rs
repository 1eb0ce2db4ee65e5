//! `ckptconv convert INPUT -o OUT [--to …] [--layout …] [--force] …`

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::output::human_bytes;
use super::ConvertArgs;
use crate::convert::{convert, parse_size, ConvertOptions, OutFormat, Progress};
use crate::error::{Error, Result};

pub(crate) const AFTER_HELP: &str = "\
The input format is detected from the file's content; the output format comes from --to or
OUT's extension: .h5/.hdf5 → Keras HDF5, .safetensors → safetensors, anything else → a
TensorFlow checkpoint prefix (OUT.index + OUT.data-*, and a `checkpoint` state file).

Layouts:
  checkpoint  tf1     keys are variable names (dense/kernel); loads with tf.train.load_checkpoint,
                      tf.compat.v1.train.Saver, and tf-keras load_weights (by name)
              object  TF2 object-based keys (layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE)
                      and an object graph, as tf-keras save_weights writes them
              keep    the source's own keys (default when the input is a checkpoint)
  h5          keras   Keras 2 save_weights layout (default); tf-keras and Keras 3 load_weights read it
              flat    one dataset per tensor at its variable name

Conversions are bit-exact. Tensors the output cannot hold (strings and complex128 in
safetensors) are skipped with a note on stderr; --strict makes that an error. Outputs are
written to temporary files and renamed into place only when complete; an existing output
is kept unless --force; an output that is one of the input's files is always refused.

Examples:
  ckptconv convert model.ckpt -o model.h5
  ckptconv convert weights.h5 -o ckpt/model --layout object
  ckptconv convert runs/exp1/ -o exp1.safetensors
  ckptconv convert big.ckpt -o resharded/big --max-shard-size 2GiB";

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
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

fn bar(enabled: bool) -> Bar {
    if !enabled || !std::io::stderr().is_terminal() {
        return Bar(None);
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .expect("valid template"),
    );
    b.enable_steady_tick(Duration::from_millis(200));
    Bar(Some(b))
}

pub(crate) fn run(args: &ConvertArgs) -> Result<u8> {
    crate::output::install_interrupt_handler();
    let to = match &args.to {
        Some(t) => Some(OutFormat::from_name(t).ok_or_else(|| {
            Error::Usage(format!(
                "unknown --to {t:?} (choose ckpt, h5 or safetensors)"
            ))
        })?),
        None => None,
    };
    let max_shard_size = match &args.max_shard_size {
        Some(s) => Some(parse_size(s).map_err(|e| Error::Usage(format!("--max-shard-size: {e}")))?),
        None => None,
    };
    let opts = ConvertOptions {
        to,
        layout: args.layout.clone(),
        force: args.force,
        strict: args.strict,
        max_shard_size,
    };
    let progress = bar(!args.no_progress && !args.json);
    let result = convert(&args.input, &args.output, &opts, &progress);
    progress.finish();
    let report = result?;
    for s in &report.skipped {
        eprintln!("ckptconv: skipped {:?}: {}", s.name, s.reason);
    }
    if !report.skipped.is_empty() {
        eprintln!("ckptconv: {} tensor(s) skipped", report.skipped.len());
    }
    if args.json {
        let doc = json!({
            "input": report.input.display().to_string(),
            "output": report.output.display().to_string(),
            "format": report.format.name(),
            "tensors": report.tensors,
            "bytes": report.bytes,
            "seconds": report.seconds,
            "status": "ok",
            "skipped": report.skipped.iter().map(|s| json!({"name": s.name, "reason": s.reason})).collect::<Vec<_>>(),
            "files": report.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string(&doc).expect("JSON of plain values")
        );
    } else {
        println!(
            "{} -> {} ({}, {} tensors, {}, {:.2} s)",
            report.input.display(),
            report.output.display(),
            report.format.name(),
            report.tensors,
            human_bytes(report.bytes),
            report.seconds
        );
    }
    Ok(0)
}
