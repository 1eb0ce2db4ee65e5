//! Conversions: open any input, plan names under the chosen layout, write any output
//! atomically.
//!
//! The plan maps each source tensor to its name in the output:
//!
//! | output | layout | names |
//! |---|---|---|
//! | TF checkpoint | `keep` (default from a TF checkpoint) | the source keys, object graph included |
//! | TF checkpoint | `tf1` (default otherwise) | canonical variable names (`dense/kernel`) |
//! | TF checkpoint | `object` | `layer_with_weights-N/…/.ATTRIBUTES/VARIABLE_VALUE` for Keras layers, object paths from variable names otherwise, plus a new `_CHECKPOINTABLE_OBJECT_GRAPH` |
//! | HDF5 | `keras` (default) | Keras 2 `save_weights` layout, by layer |
//! | HDF5 | `flat` | one dataset per tensor at its variable name |
//! | safetensors | — | canonical variable names |
//!
//! Nothing is written until every target is known to be writable: an output that is an
//! input is refused, an existing output needs `force`, and all files are written under
//! temporary names and renamed into place only when everything succeeded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::formats::h5::writer::H5Plan;
use crate::formats::tf::object_graph::{GraphBuilder, OBJECT_GRAPH_KEY};
use crate::formats::tf::writer::TfWriteOptions;
use crate::formats::{self, tf};
use crate::keras;
use crate::naming;
use crate::cancel::Cancel;
use crate::write::Writer;
use crate::commit::{check_targets, OutputSet};
use crate::plan::{Planned, Skipped};
use crate::tensor::{Format, TensorSource};

/// The formats ckptconv writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutputFormat {
    /// A TensorFlow checkpoint (TensorBundle: `PREFIX.index` + data shards).
    Ckpt,
    /// A Keras HDF5 file (`.h5`; Keras 3's layout for `.weights.h5`).
    H5,
    /// A safetensors file.
    Safetensors,
    /// A Keras 3 `.keras` archive.
    Keras,
}

impl OutputFormat {
    /// Parse `ckpt`, `h5`, `keras` or `safetensors` (and the aliases `tf`, `checkpoint`,
    /// `hdf5`).
    pub fn from_name(s: &str) -> Option<OutputFormat> {
        match s {
            "ckpt" | "tf" | "checkpoint" => Some(OutputFormat::Ckpt),
            "h5" | "hdf5" => Some(OutputFormat::H5),
            "safetensors" => Some(OutputFormat::Safetensors),
            "keras" => Some(OutputFormat::Keras),
            _ => None,
        }
    }

    /// From OUT's extension: `.h5`/`.hdf5` → h5, `.safetensors` →
    /// safetensors, none (or a checkpoint's own: `.ckpt`, `.ckpt-1000`, a step number) →
    /// a TF checkpoint prefix; anything else → `None` (a typo such as `.safetensor`, or a
    /// format ckptconv does not write, such as `.pt`).
    pub fn from_path(p: &Path) -> Option<OutputFormat> {
        match p.extension().and_then(|e| e.to_str()) {
            Some("h5") | Some("hdf5") => Some(OutputFormat::H5),
            Some("keras") => Some(OutputFormat::Keras),
            Some("safetensors") => Some(OutputFormat::Safetensors),
            None => Some(OutputFormat::Ckpt),
            Some(e)
                if e == "ckpt"
                    || e.strip_prefix("ckpt-")
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                    || e.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(OutputFormat::Ckpt)
            }
            Some(_) => None,
        }
    }

    /// The name `--to` takes.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Ckpt => "ckpt",
            OutputFormat::H5 => "h5",
            OutputFormat::Safetensors => "safetensors",
            OutputFormat::Keras => "keras",
        }
    }
}

/// How an output arranges its tensors (`--layout`). Each applies to one output format;
/// `None` in [`ConvertOptions::layout`] picks the format's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// `.h5`: Keras 2's weights layout (`model.load_weights` of tf-keras); the default.
    Keras,
    /// `.h5`: Keras 3's `.weights.h5` layout; the default for names ending `.weights.h5`.
    Keras3,
    /// `.h5`: one dataset per tensor under its variable name, no Keras structure.
    Flat,
    /// Checkpoint: TF1 variable names (`tf.compat.v1.train.Saver`); the default for
    /// inputs that are not checkpoints.
    Tf1,
    /// Checkpoint: tf-keras' object-graph paths (`model.load_weights` of a TF-format
    /// checkpoint, `tf.train.Checkpoint`).
    Object,
    /// Checkpoint: the input checkpoint's own keys and object graph; the default for
    /// checkpoint inputs.
    Keep,
}

impl Layout {
    /// Every layout, in the order the command line lists them.
    pub(crate) const ALL: [Layout; 6] = [
        Layout::Keras,
        Layout::Keras3,
        Layout::Flat,
        Layout::Tf1,
        Layout::Object,
        Layout::Keep,
    ];

    /// The name `--layout` takes.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Keras => "keras",
            Layout::Keras3 => "keras3",
            Layout::Flat => "flat",
            Layout::Tf1 => "tf1",
            Layout::Object => "object",
            Layout::Keep => "keep",
        }
    }

    /// The layout named `name` (as [`name`](Layout::name) gives it).
    pub fn from_name(name: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// True when OUT names a Keras 3 weights file (`x.weights.h5`), which gets Keras 3's
/// layout rather than Keras 2's.
fn is_keras3_weights(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".weights.h5"))
}

/// What a conversion should do. Start from `ConvertOptions::default()` (the output
/// format from the output's name, its default layout, every tensor as it is) and set
/// fields:
///
/// ```
/// let mut opts = ckptconv::ConvertOptions::default();
/// opts.to = Some(ckptconv::OutputFormat::Ckpt);
/// opts.layout = Some(ckptconv::Layout::Object);
/// opts.transform = ckptconv::Transform::default().weights_only(true);
/// ```
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub struct ConvertOptions {
    /// Output format; `None` = from the output's extension.
    pub to: Option<OutputFormat>,
    /// The output's layout; `None` = the format's default ([`Layout`]).
    pub layout: Option<Layout>,
    /// Replace existing outputs.
    pub force: bool,
    /// Fail instead of skipping tensors the output format cannot hold.
    pub strict: bool,
    /// For TF checkpoints: the largest data file, in bytes.
    pub max_shard_size: Option<u64>,
    /// Selection, renames and casts ([`Transform`](crate::Transform)).
    pub transform: crate::transform::Transform,
    /// For TF checkpoints: do not write the `checkpoint` state file.
    pub no_state_file: bool,
    /// Rename outputs into place without fsyncing them first: faster, as `cp` is, but an
    /// output may come back empty after a power loss (errors and cancellation still leave
    /// nothing behind).
    pub no_fsync: bool,
    /// For TF checkpoints: when the directory's `checkpoint` state file names other
    /// checkpoints, add this one as the latest, as `tf.train.CheckpointManager` would
    /// (otherwise that file is left alone).
    pub update_state: bool,
    /// Write the output in the layout of this template: a Keras file (or TF-format
    /// checkpoint) of the target model, whose weights are matched to the source's by layer
    /// order, class and shape (refused where that is ambiguous).
    pub like: Option<PathBuf>,
    /// How inputs (and a `--like` template) are read: mapped or not, and the budget for
    /// whole-tensor buffers.
    pub read: crate::formats::ReadOptions,
    /// Stops the conversion once cancelled, from any thread: it then fails with
    /// [`Error::Interrupted`] and leaves no output.
    pub cancel: Cancel,
}

/// Receives a conversion's progress, in bytes of tensor data (see [`convert_with`]).
/// Every method has an empty default.
pub trait Progress {
    /// Writing begins; `total_bytes` will be written.
    fn start(&self, _total_bytes: u64) {}
    /// `bytes` more were written.
    fn advance(&self, _bytes: u64) {}
    /// Every byte is written; the outputs are being flushed to the disk (fsync), which
    /// for a large output can take as long as the writing did.
    fn syncing(&self) {}
    /// The outputs are in place.
    fn finish(&self) {}
}

/// A closure is a progress receiver: it is called with each count of bytes written.
impl<F: Fn(u64)> Progress for F {
    fn advance(&self, bytes: u64) {
        self(bytes)
    }
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What a conversion did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConvertReport {
    /// The input as given.
    pub input: PathBuf,
    /// What was read: the input itself, or for a directory or `checkpoint` state file the
    /// checkpoint prefix it named.
    pub source: PathBuf,
    /// The output (for a checkpoint, its prefix).
    pub output: PathBuf,
    /// The format written.
    pub format: OutputFormat,
    /// How many tensors were written.
    pub tensors: usize,
    /// How many bytes of tensor data were written.
    pub bytes: u64,
    /// Tensors the output format cannot hold, or that the options left out, and why.
    pub skipped: Vec<Skipped>,
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// Wall-clock time taken.
    pub seconds: f64,
    /// Things the user should know (a state file left alone), one line each.
    pub notes: Vec<String>,
    /// Under `--like`: which source tensor filled which template tensor, as (template
    /// key, source key), in the template's order.
    pub mapping: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CkptLayout {
    Keep,
    Tf1,
    Object,
}

/// Convert `input` to `output` (see [`ConvertOptions`]): read, plan, write to temporary
/// files, and rename them into place; on error nothing is left at `output`.
pub fn convert(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    opts: &ConvertOptions,
) -> Result<ConvertReport> {
    convert_with(input, output, opts, &NoProgress)
}

/// [`convert`], reporting progress in bytes to `progress`.
pub fn convert_with(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    opts: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    let (input, output) = (input.as_ref(), output.as_ref());
    let started = Instant::now();
    let (output, format) = resolve_output(input, output, opts.to)?;
    let opts = &ConvertOptions {
        to: Some(format),
        ..opts.clone()
    };
    let output = output.as_path();
    let src = formats::open_with(input, opts.read)?;
    if opts.transform.is_identity() {
        return convert_like(src.as_ref(), input, output, opts, progress, started);
    }
    let shaped = crate::transform::Transformed::new(src.as_ref(), &opts.transform)?;
    convert_like(&shaped, input, output, opts, progress, started)
}

/// [`convert_source`], through the `--like` template when there is one.
fn convert_like(
    src: &dyn TensorSource,
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    progress: &dyn Progress,
    started: Instant,
) -> Result<ConvertReport> {
    let Some(t) = &opts.like else {
        return convert_source(src, input, output, opts, progress, started);
    };
    let template = formats::open_with(t, opts.read)?;
    let like = crate::like::retarget(src, template.as_ref())?;
    let mut opts = opts.clone();
    // A checkpoint in the template's layout is a tf-keras one: its object paths.
    if opts.to == Some(OutputFormat::Ckpt) && opts.layout.is_none() {
        opts.layout = Some(Layout::Object);
    }
    let mut r = convert_source(&like, input, output, &opts, progress, started)?;
    r.skipped.extend(crate::like::left_out(src, &like));
    r.mapping = like.pairs();
    Ok(r)
}

/// Where OUT really is and which format it gets: `-o DIR/` or an existing
/// directory means "into it, named after the input" (with `--to`); an extension picks
/// the format, and one ckptconv does not write, or one that contradicts `--to`, is an
/// error rather than a file of another format under that name.
pub fn resolve_output(
    input: &Path,
    output: &Path,
    to: Option<OutputFormat>,
) -> Result<(PathBuf, OutputFormat)> {
    let as_str = output.as_os_str().to_string_lossy();
    if as_str.ends_with('/') || output.is_dir() {
        let to = to.ok_or_else(|| {
            Error::Usage(format!(
                "-o {}: a directory; say which format to write into it with --to ckpt|h5|keras|safetensors",
                output.display()
            ))
        })?;
        let stem = crate::batch::strip_format_suffix(input);
        // `.` or `dir/..` have no name of their own: take the directory's.
        let name = std::path::absolute(&stem)
            .ok()
            .and_then(|a| {
                crate::batch::normalize(&a)
                    .file_name()
                    .map(|n| n.to_owned())
            })
            .ok_or_else(|| {
                Error::Usage(format!("{}: no name to give the output", input.display()))
            })?;
        let mut name = name.into_string().map_err(|n| {
            Error::Usage(format!("{}: a name that is not UTF-8", n.to_string_lossy()))
        })?;
        name.push_str(match to {
            OutputFormat::Ckpt => "",
            OutputFormat::H5 => ".h5",
            OutputFormat::Safetensors => ".safetensors",
            OutputFormat::Keras => ".keras",
        });
        return Ok((output.join(name), to));
    }
    match (OutputFormat::from_path(output), to) {
        (Some(f), None) => Ok((output.to_path_buf(), f)),
        (None, Some(t)) => Ok((output.to_path_buf(), t)),
        (None, None) => Err(Error::Usage(format!(
            "{}: .{} is not a format ckptconv writes (.h5, .weights.h5, .keras, .safetensors, or a checkpoint prefix with no extension); say --to ckpt|h5|keras|safetensors to write one under this name",
            output.display(),
            output.extension().map(|e| e.to_string_lossy()).unwrap_or_default()
        ))),
        (Some(f), Some(t)) if f == t || (f == OutputFormat::Ckpt && output.extension().is_none()) => {
            Ok((output.to_path_buf(), t))
        }
        (Some(f), Some(t)) => Err(Error::Usage(format!(
            "{}: the name says {} but --to says {}",
            output.display(),
            f.name(),
            t.name()
        ))),
    }
}

/// Convert an opened source.
pub fn convert_source(
    src: &dyn TensorSource,
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    progress: &dyn Progress,
    started: Instant,
) -> Result<ConvertReport> {
    let (_, format) = resolve_output(input, output, opts.to)?;
    let inputs = protected_inputs(input, src);
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(dir, "create the output directory", e))?;
    }
    opts.cancel.check()?;
    let mut out = OutputSet::new()
        .durable(!opts.no_fsync)
        .with_cancel(opts.cancel.clone());
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // Tensors written once for several of the same bytes: duplicate → the one written.
    let mut aliases: HashMap<usize, usize> = HashMap::new();
    let total: u64;
    let mut written: usize;
    match format {
        OutputFormat::Safetensors => {
            if opts.layout.is_some() {
                return Err(Error::Usage(
                    "--layout does not apply to safetensors output".into(),
                ));
            }
            check_targets(&[output.to_path_buf()], &inputs, opts.force)?;
            let plan = plan_variables(src, &mut skipped);
            let plan = dedupe(src, plan, &mut skipped, &mut aliases)?;
            total = plan_bytes(src, &plan);
            // No `format` key: transformers reads `format: tf` as its own TF naming
            // (`bert/…:0`), which these canonical names are not.
            let mut meta = HashMap::new();
            meta.insert("source_format".to_string(), src.format().name().to_string());
            if let Some(json) = layers_json(src, &plan, &aliases) {
                meta.insert(keras::record::METADATA_KEY.to_string(), json);
            }
            meta.insert(
                "converted_by".to_string(),
                format!("ckptconv {}", env!("CARGO_PKG_VERSION")),
            );
            let w = formats::safetensors::SafetensorsWriter {
                plan: &plan,
                metadata: meta,
            };
            w.check_names(src, output)?;
            progress.start(total);
            let s = w.write(src, output, &mut out, progress)?;
            written = plan.len() - s.len();
            skipped.extend(s);
        }
        OutputFormat::H5
            if opts.layout == Some(Layout::Keras3)
                || (opts.layout.is_none() && is_keras3_weights(output)) =>
        {
            check_targets(&[output.to_path_buf()], &inputs, opts.force)?;
            let plan = plan_variables(src, &mut skipped);
            let l = keras3_layout(src, &plan)?;
            H5Plan::Keras3(&l).check_names(src, output)?;
            skipped.extend(l.skipped.iter().cloned());
            total = plan_bytes(src, &l.planned().cloned().collect::<Vec<_>>());
            written = l.planned().count();
            progress.start(total);
            let s = H5Plan::Keras3(&l).write(src, output, &mut out, progress)?;
            written -= s.len();
            skipped.extend(s);
        }
        OutputFormat::Keras => {
            if opts.layout.is_some() {
                return Err(Error::Usage(
                    "--layout does not apply to .keras output (always Keras 3's own)".into(),
                ));
            }
            check_targets(&[output.to_path_buf()], &inputs, opts.force)?;
            let config = keras3_config(src, &mut notes)?;
            let plan = plan_variables(src, &mut skipped);
            let l = keras3_layout(src, &plan)?;
            let w = formats::h5::archive::KerasArchive {
                layout: &l,
                config: &config,
            };
            w.check_names(src, output)?;
            skipped.extend(l.skipped.iter().cloned());
            total = plan_bytes(src, &l.planned().cloned().collect::<Vec<_>>());
            written = l.planned().count();
            progress.start(total);
            let s = w.write(src, output, &mut out, progress)?;
            written -= s.len();
            skipped.extend(s);
        }
        OutputFormat::H5 => {
            let explicit = match opts.layout {
                None => None,
                Some(Layout::Keras) if is_keras3_weights(output) => {
                    return Err(Error::Usage(format!(
                        "{}: Keras 3 reads a .weights.h5 only in its own layout; write --layout keras (Keras 2's) to a name that does not end in .weights.h5",
                        output.display()
                    )))
                }
                Some(Layout::Keras) => Some(true),
                Some(Layout::Flat) => Some(false),
                Some(other) => {
                    return Err(Error::Usage(format!(
                        "--layout {} does not apply to h5 output (choose keras, keras3 or flat)",
                        other.name()
                    )))
                }
            };
            check_targets(&[output.to_path_buf()], &inputs, opts.force)?;
            let plan = plan_variables(src, &mut skipped);
            let model = keras::describe(src);
            let keras_layout = explicit.unwrap_or(true);
            if explicit.is_none() && !keras_like(&model, src) {
                return Err(Error::unsupported(
                    src.path(),
                    "a Keras .h5: the file records no Keras model (no Keras layers, and no layer with Keras weight names), so Keras could not load it; write --layout flat for a plain HDF5 file of its tensors",
                ));
            }
            let s = if keras_layout {
                keras::layout::check_loadable(&model, src, "a Keras .h5")?;
                let g = keras::layout::groups(src, &model, &plan)?;
                H5Plan::Keras(&g).check_names(src, output)?;
                skipped.extend(g.skipped.iter().cloned());
                total = g
                    .layers
                    .iter()
                    .flat_map(|(_, w)| w)
                    .chain(&g.optimizer)
                    .map(|p| src.tensors()[p.index].byte_len)
                    .sum();
                written = g.layers.iter().map(|(_, w)| w.len()).sum::<usize>() + g.optimizer.len();
                progress.start(total);
                H5Plan::Keras(&g).write(src, output, &mut out, progress)?
            } else {
                let plan = dedupe(src, plan, &mut skipped, &mut aliases)?;
                H5Plan::Flat(&plan).check_names(src, output)?;
                total = plan_bytes(src, &plan);
                written = plan.len();
                progress.start(total);
                H5Plan::Flat(&plan).write(src, output, &mut out, progress)?
            };
            written -= s.len();
            skipped.extend(s);
        }
        OutputFormat::Ckpt => {
            let layout = match opts.layout {
                Some(Layout::Keep) if opts.transform.renames() => {
                    return Err(Error::Usage(
                        "--rename changes variable names, which --layout keep does not use".into(),
                    ))
                }
                None if matches!(src.format(), Format::TfCheckpoint | Format::TfCheckpointV1)
                    && !opts.transform.renames() =>
                {
                    CkptLayout::Keep
                }
                None | Some(Layout::Tf1) => CkptLayout::Tf1,
                Some(Layout::Object) => CkptLayout::Object,
                Some(Layout::Keep) => CkptLayout::Keep,
                Some(other) => {
                    return Err(Error::Usage(format!(
                        "--layout {} does not apply to checkpoint output (choose tf1, object or keep)",
                        other.name()
                    )))
                }
            };
            let mut wopts = TfWriteOptions {
                max_shard_size: opts.max_shard_size,
                extra_strings: Vec::new(),
                state_file: None,
                layers_json: None,
            };
            let plan = match layout {
                CkptLayout::Keep => (0..src.tensors().len())
                    .map(|i| Planned {
                        index: i,
                        name: src.tensors()[i].name.clone(),
                    })
                    .collect(),
                CkptLayout::Tf1 => {
                    let plan = plan_variables(src, &mut skipped);
                    dedupe(src, plan, &mut skipped, &mut aliases)?
                }
                CkptLayout::Object => {
                    let (plan, graph) = plan_object(src, &mut skipped)?;
                    wopts
                        .extra_strings
                        .push((OBJECT_GRAPH_KEY.to_string(), graph));
                    plan
                }
            };
            tf::writer::CheckpointWriter {
                plan: &plan,
                opts: &wopts,
            }
            .check_names(src, output)?;
            if layout != CkptLayout::Keep {
                wopts.layers_json = layers_json(src, &plan, &aliases);
            }
            let index = tf::bundle::index_path(output);
            let mut targets = vec![index];
            let stale = existing_shards(output);
            targets.extend(stale.iter().cloned());
            check_targets(&targets, &inputs, opts.force)?;
            wopts.state_file = state_file_plan(output, &src.files(), opts, &mut notes);
            total = plan_bytes(src, &plan);
            progress.start(total);
            let w = tf::writer::CheckpointWriter {
                plan: &plan,
                opts: &wopts,
            };
            w.write(src, output, &mut out, progress)?;
            written = plan.len();
        }
    }
    if opts.strict && !skipped.is_empty() {
        return Err(strict_error(src, &skipped));
    }
    // Data files at this prefix that the new checkpoint does not use (an older one's, or
    // those of a conversion racing to the same prefix with another shard count) would be
    // left stale: remove them after the commit. Commits into one directory take turns
    // (a lock on the directory), so the index just renamed into place is the one on disk
    // while its stale shards are removed; those that were there at the start were checked
    // against the inputs and `--force` above.
    let lock = (format == OutputFormat::Ckpt).then(|| DirLock::new(output));
    if !opts.no_fsync {
        progress.syncing();
    }
    let files = out.commit()?;
    if format == OutputFormat::Ckpt {
        for s in existing_shards(output) {
            if !files.contains(&s) && !inputs.iter().any(|i| crate::commit::same_file(i, &s)) {
                let _ = std::fs::remove_file(&s);
            }
        }
    }
    drop(lock);
    progress.finish();
    Ok(ConvertReport {
        input: input.to_path_buf(),
        source: src.path().to_path_buf(),
        output: output.to_path_buf(),
        format,
        tensors: written,
        bytes: total,
        skipped,
        files,
        seconds: started.elapsed().as_secs_f64(),
        notes,
        mapping: Vec::new(),
    })
}

fn strict_error(src: &dyn TensorSource, skipped: &[Skipped]) -> Error {
    let first = &skipped[0];
    Error::unsupported(
        src.path(),
        format!(
            "--strict: {} tensor(s) cannot be written to this format, e.g. {:?}: {}",
            skipped.len(),
            first.name,
            first.reason
        ),
    )
}

/// What to do with the `checkpoint` state file beside a new checkpoint: TensorFlow's
/// `tf.train.latest_checkpoint` reads it, so a training directory's must keep naming the
/// same latest checkpoint. Written (naming the new one) when there is none, or when it
/// names only this checkpoint; left alone, with a note, when it names others (unless
/// `update_state`: then the new one is added as the latest), when it cannot be read, or
/// when it is an input.
fn state_file_plan(
    output: &Path,
    inputs: &[PathBuf],
    opts: &ConvertOptions,
    notes: &mut Vec<String>,
) -> Option<Vec<String>> {
    let state = output.with_file_name("checkpoint");
    let name = output.file_name()?.to_string_lossy().into_owned();
    if opts.no_state_file || inputs.iter().any(|i| crate::commit::same_file(i, &state)) {
        return None;
    }
    let text = match std::fs::read_to_string(&state) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(vec![name]),
        Err(e) => {
            notes.push(format!("{}: left alone ({e})", state.display()));
            return None;
        }
        Ok(t) => t,
    };
    let st = match tf::state::parse_checkpoint_state(&text) {
        Ok(st) => st,
        Err(e) => {
            notes.push(format!(
                "{}: left alone: not a checkpoint state file ckptconv can read ({e})",
                state.display()
            ));
            return None;
        }
    };
    let is_this = |p: &str| {
        let p = Path::new(p);
        let p = if p.is_relative() {
            output.with_file_name(p)
        } else {
            p.to_path_buf()
        };
        p == output || p.file_name() == output.file_name() && p.parent() == output.parent()
    };
    let mut others: Vec<String> = Vec::new();
    for p in st
        .all_model_checkpoint_paths
        .iter()
        .chain(std::iter::once(&st.model_checkpoint_path))
    {
        if !p.is_empty() && !is_this(p) && !others.contains(p) {
            others.push(p.clone());
        }
    }
    if others.is_empty() {
        return Some(vec![name]);
    }
    if opts.update_state {
        others.push(name);
        return Some(others);
    }
    notes.push(format!(
        "{}: left alone: it names other checkpoints (latest {:?}), so tf.train.latest_checkpoint still finds that one; --update-state adds this one as the latest",
        state.display(),
        st.model_checkpoint_path
    ));
    None
}

/// An exclusive `flock` on an output's directory, held while a checkpoint is committed and
/// its stale shards removed; none where the file system does not lock.
struct DirLock(#[allow(dead_code)] Option<std::fs::File>);

impl DirLock {
    fn new(output: &Path) -> DirLock {
        let dir = output
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let Ok(f) = std::fs::File::open(dir) else {
            return DirLock(None);
        };
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns, open for the call.
        let ok = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0;
        DirLock(ok.then_some(f))
    }
}

/// Data files `PREFIX.data-*-of-*` already present.
fn existing_shards(prefix: &Path) -> Vec<PathBuf> {
    let dir = prefix
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(base) = prefix.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(tf::resolve::strip_shard_suffix)
                        .is_some_and(|b| b == base)
                })
                .map(|e| prefix.with_file_name(e.file_name()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The source's Keras model, its weights named by their keys in the output (a tied
/// weight written once under the name of its first copy), for the record ckptconv keeps
/// in checkpoints and safetensors ([`keras::record`]).
fn layers_json(
    src: &dyn TensorSource,
    plan: &[Planned],
    aliases: &HashMap<usize, usize>,
) -> Option<String> {
    if src.layers().is_empty() {
        return None;
    }
    let key: HashMap<usize, &str> = plan.iter().map(|p| (p.index, p.name.as_str())).collect();
    let name = |i: usize| {
        key.get(&i)
            .or_else(|| aliases.get(&i).and_then(|j| key.get(j)))
            .map(|k| k.to_string())
    };
    Some(keras::record::encode(
        &keras::describe(src),
        src.h5_weight_order(),
        &name,
    ))
}

/// Keras 3's layout of the source's model; a source that is no Keras model is refused
/// (`--layout flat` writes its tensors).
fn keras3_layout(src: &dyn TensorSource, plan: &[Planned]) -> Result<keras::keras3::Layout3> {
    let model = keras::describe(src);
    if !src.keras3_paths() && !keras_like(&model, src) {
        return Err(Error::unsupported(
            src.path(),
            "a Keras 3 file: the file records no Keras model (no Keras layers, and no layer with Keras weight names), so Keras could not load it; write --layout flat for a plain HDF5 file of its tensors",
        ));
    }
    keras::keras3::layout(src, &model, plan)
}

/// The Keras 3 `config.json` of the source's model: a Keras 3 source's own, or a Keras 2
/// model config translated ([`keras::config3`]).
fn keras3_config(src: &dyn TensorSource, notes: &mut Vec<String>) -> Result<String> {
    match src.keras_config() {
        Some(keras::KerasConfig::Keras3(c)) => Ok(c.to_string()),
        Some(keras::KerasConfig::Keras2(c)) => {
            let v: serde_json::Value = serde_json::from_str(c).map_err(|e| {
                Error::corrupt(src.path(), format!("the model config is not JSON: {e}"))
            })?;
            let k3 = keras::config3::from_keras2(&v).map_err(|w| {
                Error::unsupported(
                    src.path(),
                    format!("a .keras archive: the model config cannot be translated to Keras 3's: {w}; write .weights.h5, or pass --like with a .keras saved by the Keras 3 model"),
                )
            })?;
            let mut k3 = k3;
            let mut names = Vec::new();
            layer_names(&k3, &mut names, 0);
            let slashed: Vec<&String> = names.iter().filter(|n| n.contains('/')).collect();
            if !slashed.is_empty() {
                // Keras 3 refuses `/` in layer names (tf-keras allowed it: DenseNet's
                // `conv1/conv`). Its weights do not depend on names, so the config takes
                // `_` instead, where that makes no two names one.
                let renamed: HashMap<String, String> = slashed
                    .iter()
                    .map(|n| (n.to_string(), n.replace('/', "_")))
                    .collect();
                let mut after: Vec<&String> = names
                    .iter()
                    .map(|n| renamed.get(n).unwrap_or(n))
                    .collect();
                after.sort();
                let before = after.len();
                after.dedup();
                if after.len() != before {
                    return Err(Error::unsupported(
                        src.path(),
                        format!("a .keras archive: layer {:?} has a '/' in its name, which Keras 3 does not allow, and with '_' instead it would take another layer's name; write .weights.h5, or pass --like with a .keras saved by the Keras 3 model", slashed[0]),
                    ));
                }
                rename_strings(&mut k3, &renamed, 0);
                notes.push(format!(
                    "{} layer names with '/' (Keras 3 does not allow it) are written with '_' in config.json, e.g. {:?} → {:?}; weights do not depend on names",
                    renamed.len(),
                    slashed[0],
                    renamed[slashed[0].as_str()]
                ));
            }
            Ok(k3.to_string())
        }
        None => Err(Error::unsupported(
            src.path(),
            "a .keras archive needs the model's config, and this file holds none (only a full-model .h5 or a .keras does); write .weights.h5 (Keras 3's load_weights), or pass --like with a .keras saved by the Keras 3 model",
        )),
    }
}

/// Every layer name in a Keras 3 config (each object with a `class_name` and a
/// `config.name`), nested models' included.
fn layer_names(v: &serde_json::Value, out: &mut Vec<String>, depth: usize) {
    if depth > 256 {
        return;
    }
    match v {
        serde_json::Value::Object(o) => {
            if o.contains_key("class_name") {
                if let Some(n) = o
                    .get("config")
                    .and_then(|c| c.get("name"))
                    .and_then(|n| n.as_str())
                {
                    if !out.iter().any(|x| x == n) {
                        out.push(n.to_string());
                    }
                }
            }
            for x in o.values() {
                layer_names(x, out, depth + 1);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                layer_names(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Replace every string that is exactly one of `renamed`'s keys (a layer's name, or a
/// reference to it in a node or in the model's inputs and outputs).
fn rename_strings(v: &mut serde_json::Value, renamed: &HashMap<String, String>, depth: usize) {
    if depth > 256 {
        return;
    }
    match v {
        serde_json::Value::String(s) => {
            if let Some(n) = renamed.get(s.as_str()) {
                *s = n.clone();
            }
        }
        serde_json::Value::Object(o) => {
            for x in o.values_mut() {
                rename_strings(x, renamed, depth + 1);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                rename_strings(x, renamed, depth + 1);
            }
        }
        _ => {}
    }
}

fn plan_bytes(src: &dyn TensorSource, plan: &[Planned]) -> u64 {
    plan.iter().map(|p| src.tensors()[p.index].byte_len).sum()
}

/// Every tensor under its canonical variable name; a source's object graph is left out
/// without a note (it is the format's bookkeeping of its own keys, which do not exist in
/// the output; an output that has one gets its own), and metric state is skipped (a tf-keras SavedModel's
/// `keras_api/metrics/N/count`: several metrics' variables share a name, and no loader of
/// weights restores them).
fn plan_variables(src: &dyn TensorSource, skipped: &mut Vec<Skipped>) -> Vec<Planned> {
    let mut plan = Vec::new();
    for (i, t) in src.tensors().iter().enumerate() {
        if src.format() == Format::TfCheckpoint && t.name == OBJECT_GRAPH_KEY {
            continue;
        }
        if naming::role(&t.name, &t.variable) == naming::Role::Metric {
            skipped.push(Skipped {
                name: t.variable.clone(),
                reason: "metric state (a Keras metric's running total), not a weight".into(),
            });
            continue;
        }
        plan.push(Planned {
            index: i,
            name: t.variable.clone(),
        });
    }
    plan
}

/// True when a source looks like a Keras model: it records its layers, or some inferred
/// layer's weights all have Keras' built-in names. Otherwise a Keras layout is refused
/// (and `--layout flat` suggested) rather than written for a model that is not there.
/// A checkpoint with an object graph but no Keras layers in it (a `tf.Module`) is not.
fn keras_like(model: &keras::Model, src: &dyn TensorSource) -> bool {
    if !src.layers().is_empty() {
        return true;
    }
    if src.find(OBJECT_GRAPH_KEY).is_some() {
        return false;
    }
    model.weighted().any(|l| {
        l.ordered
            && l.tensors().all(|i| {
                let v = &src.tensors()[i].variable;
                let local = keras::layout::local_path(&l.name, v).join("/");
                keras::classes::weight_rank(&local).is_some()
            })
    })
}

/// Names that several tensors share in a flat output: one tensor tracked twice (a
/// SavedModel's `variables/N` beside its layer's path) or a tied weight stored in several
/// places (T5's shared embedding) holds the same bytes everywhere and is written once;
/// different tensors under one name stay in the plan, for the check of its names
/// ([`crate::plan::check_names`]) to refuse.
fn dedupe(
    src: &dyn TensorSource,
    plan: Vec<Planned>,
    skipped: &mut Vec<Skipped>,
    aliases: &mut HashMap<usize, usize>,
) -> Result<Vec<Planned>> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut dup = vec![false; plan.len()];
    for (k, p) in plan.iter().enumerate() {
        let Some(&j) = first.get(p.name.as_str()) else {
            first.insert(&p.name, k);
            continue;
        };
        let (a, b) = (plan[j].index, p.index);
        let (ta, tb) = (&src.tensors()[a], &src.tensors()[b]);
        let same = ta.dtype == tb.dtype
            && ta.shape == tb.shape
            && crate::tensor::same_data(src, a, src, b)?;
        src.release(a);
        src.release(b);
        if !same {
            continue;
        }
        dup[k] = true;
        aliases.insert(b, a);
        skipped.push(Skipped {
            name: tb.name.clone(),
            reason: format!(
                "the same weight as {:?} (tracked twice), written once",
                ta.name
            ),
        });
    }
    Ok(plan
        .into_iter()
        .zip(dup)
        .filter(|(_, d)| !d)
        .map(|(p, _)| p)
        .collect())
}

/// An object-based layout and its graph. A Keras model's weights go where tf-keras
/// tracks them (`layer_with_weights-k/…`, [`keras::layout::object_paths`]); its
/// optimizer state and counters are left out (their paths name the source's objects);
/// tensors of other sources keep their object paths, or take one from their names.
fn plan_object(
    src: &dyn TensorSource,
    skipped: &mut Vec<Skipped>,
) -> Result<(Vec<Planned>, Vec<u8>)> {
    let model = keras::describe(src);
    if !keras_like(&model, src) {
        return Err(Error::unsupported(
            src.path(),
            "a tf-keras checkpoint: the file records no Keras model (no Keras layers, and no layer with Keras weight names), so tf-keras would restore nothing from it; write --layout tf1 (variable names), or --layout keep for a checkpoint's own object graph",
        ));
    }
    // Layers tracked at attribute paths whose weights all have the object path the
    // source's graph records (a `tf.Module`, a subclassed model) are written at those
    // paths: nothing is placed by position, so no order can be mixed up.
    let at_own_paths = model
        .weighted()
        .all(|l| l.tracked_as.is_some() && l.weights.iter().all(|w| w.object_path.is_some()));
    if !at_own_paths {
        keras::layout::check_loadable(&model, src, "a tf-keras checkpoint")?;
    }
    let mut g = GraphBuilder::new();
    let mut plan = Vec::new();
    let mut placed = std::collections::HashSet::new();
    for (i, path) in keras::layout::object_paths(src, &model)? {
        let key = g.add_variable(&path, &src.tensors()[i].variable);
        plan.push(Planned {
            index: i,
            name: key,
        });
        placed.insert(i);
    }
    // Every weight at the key it has in the source (a `tf.Module`'s or a subclassed
    // model's own object graph): the output's root is the source's root, so a counter
    // that root holds (`tf.train.Checkpoint(step=…, net=…)`'s `step`, `save_counter`)
    // keeps its key too, and restores into the same `tf.train.Checkpoint`.
    let same_root = src.format() == Format::TfCheckpoint
        && !plan.is_empty()
        && plan.iter().all(|p| p.name == src.tensors()[p.index].name);
    for (i, t) in src.tensors().iter().enumerate() {
        if placed.contains(&i)
            || (src.format() == Format::TfCheckpoint && t.name == OBJECT_GRAPH_KEY)
        {
            continue;
        }
        // A weight of the model in none of its layers has no path tf-keras would look
        // for: written at its own name it would load as nothing, silently. Training state
        // names the source's objects, and is left out with a note.
        let role = naming::role(&t.name, &t.variable);
        let root_counter = t
            .name
            .strip_suffix(naming::VARIABLE_VALUE_SUFFIX)
            .filter(|local| !local.is_empty() && !local.contains('/'));
        if let (true, naming::Role::Counter, Some(local)) = (same_root, role, root_counter) {
            let path = [crate::formats::tf::object_graph::unescape_local_name(local)];
            let key = g.add_variable(&path, &t.variable);
            plan.push(Planned {
                index: i,
                name: key,
            });
            continue;
        }
        if role == naming::Role::Weight {
            return Err(Error::unsupported(
                src.path(),
                format!(
                    "a tf-keras checkpoint: weight {:?} is in none of the model's layers, so tf-keras would not find it; write --layout tf1",
                    t.variable
                ),
            ));
        }
        skipped.push(Skipped {
            name: t.variable.clone(),
            reason: format!(
                "{} state, which ckptconv does not place in a tf-keras checkpoint (--weights-only leaves it out without a note)",
                role.name()
            ),
        });
    }
    Ok((plan, g.encode()))
}

/// Parse a size: `1000`, `500K`, `64MB`, `2GiB` (powers of 1024).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        u => return Err(format!("unknown size unit {u:?} in {s:?}")),
    };
    let v = n * mult;
    if !(1.0..1.8e19).contains(&v) {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(v as u64)
}

/// Every file no output may be: the source's own files, the named input itself (a
/// `checkpoint` state file, a `saved_model.pb`), the state file beside a checkpoint
/// (training state), and a SavedModel's own files around its `variables/` (its graph
/// and metadata: replacing them would break the SavedModel).
fn protected_inputs(input: &Path, src: &dyn TensorSource) -> Vec<PathBuf> {
    let files = src.files();
    let mut dirs: Vec<PathBuf> = Vec::new();
    if input.is_dir() {
        dirs.push(input.to_path_buf());
    }
    for f in &files {
        let Some(dir) = f.parent() else { continue };
        dirs.push(dir.to_path_buf());
        // `<root>/variables/variables.index`: the SavedModel's root.
        if dir.file_name().is_some_and(|n| n == "variables") {
            if let Some(root) = dir.parent() {
                dirs.push(root.to_path_buf());
            }
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut out = files;
    if input.is_file() {
        out.push(input.to_path_buf());
    }
    for d in dirs {
        for name in [
            "checkpoint",
            "saved_model.pb",
            "saved_model.pbtxt",
            "keras_metadata.pb",
            "fingerprint.pb",
        ] {
            let p = d.join(name);
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_formats() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("1.5MiB").unwrap(), 1_572_864);
        assert_eq!(parse_size("2GB").unwrap(), 2 << 30);
        assert!(parse_size("x").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("5 parsecs").is_err());
        let f = |p: &str| OutputFormat::from_path(Path::new(p));
        assert_eq!(f("a/b.h5"), Some(OutputFormat::H5));
        assert_eq!(f("a/b.safetensors"), Some(OutputFormat::Safetensors));
        assert_eq!(f("a/model.ckpt"), Some(OutputFormat::Ckpt));
        assert_eq!(f("a/model.ckpt-1000"), Some(OutputFormat::Ckpt));
        assert_eq!(f("a/model"), Some(OutputFormat::Ckpt));
        assert_eq!(f("a/x.safetensor"), None);
        assert_eq!(f("a/x.pt"), None);
        assert_eq!(f("a/x.weights.h5"), Some(OutputFormat::H5));
        assert_eq!(f("a/x.keras"), Some(OutputFormat::Keras));
        let r = |o: &str, to| resolve_output(Path::new("in/model.h5"), Path::new(o), to);
        assert_eq!(
            r("out/", Some(OutputFormat::Safetensors)).unwrap().0,
            Path::new("out/model.safetensors")
        );
        assert!(matches!(r("out/", None), Err(Error::Usage(_))));
        assert!(matches!(r("x.pt", None), Err(Error::Usage(_))));
        assert_eq!(r("x.pt", Some(OutputFormat::Ckpt)).unwrap().1, OutputFormat::Ckpt);
        assert!(matches!(
            r("x.safetensors", Some(OutputFormat::H5)),
            Err(Error::Usage(_))
        ));
        assert_eq!(r("ck/model", Some(OutputFormat::H5)).unwrap().1, OutputFormat::H5);
    }
}
