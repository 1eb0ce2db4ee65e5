//! The command line: clap definitions, one module per command, output helpers.
//!
//! The binary (`src/main.rs`) only parses arguments and calls [`run`]; everything here is
//! also usable from Rust. Commands print results to stdout and logs to stderr, and return
//! the process exit code (design §3: 0 success, 1 bad input or failed work, 2 usage).

pub mod convert;
pub mod diff;
pub mod inspect;
pub mod output;
pub mod summary;
pub mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;

const ABOUT: &str = "Convert model weights between TensorFlow checkpoints, Keras HDF5 and \
safetensors — no Python or TensorFlow needed.";

const AFTER_HELP: &str = "\
INPUT for a TensorFlow checkpoint may be the prefix (model.ckpt), its .index file, any
.data-NNNNN-of-NNNNN shard, a directory with a `checkpoint` state file (its latest
checkpoint is used), or a SavedModel directory.

Exit codes: 0 success, 1 the input is bad or the work failed, 2 usage error.

Examples:
  ckptconv convert model.ckpt -o model.h5       # TF checkpoint → Keras HDF5
  ckptconv convert weights.h5 -o ckpt/model     # Keras HDF5 → TF checkpoint
  ckptconv inspect model.ckpt
  ckptconv inspect --json runs/exp1/            # latest checkpoint of a training run
  ckptconv verify runs/*/model.ckpt.index       # check every checksum of many files";

/// Top-level arguments.
#[derive(Debug, Parser)]
#[command(name = "ckptconv", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Read inputs with plain reads, never memory-mapped: a file that another process
    /// truncates mid-read then gives an error, not SIGBUS (costs one buffer per tensor).
    #[arg(long, global = true)]
    pub no_mmap: bool,
    /// The largest buffer one tensor may need when read whole (a partitioned variable
    /// reassembled, a compressed HDF5 dataset, a tensor read under --no-mmap), e.g. 2GiB.
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_alloc: Option<String>,
}

impl Cli {
    /// How inputs are read, from `--no-mmap` and `--max-alloc`.
    fn read_options(&self) -> Result<crate::formats::ReadOptions> {
        let max_alloc = match &self.max_alloc {
            Some(s) => Some(
                crate::convert::parse_size(s)
                    .map_err(|e| crate::error::Error::Usage(format!("--max-alloc: {e}")))?,
            ),
            None => None,
        };
        Ok(crate::formats::ReadOptions::default()
            .with_mmap(!self.no_mmap)
            .with_max_alloc(max_alloc))
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
// One value per run, parsed once: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// List the tensors of a weights file: name, dtype, shape, bytes.
    #[command(after_help = inspect::AFTER_HELP)]
    Inspect(InspectArgs),
    /// Read every tensor of every input and check every checksum and bound.
    #[command(after_help = verify::AFTER_HELP)]
    Verify(VerifyArgs),
    /// Keras-style model summary (layers, shapes, parameter counts) from weights alone.
    #[command(after_help = summary::AFTER_HELP)]
    Summary(SummaryArgs),
    /// Compare two weight files of any formats, tensor by tensor.
    #[command(after_help = diff::AFTER_HELP)]
    Diff(DiffArgs),
    /// Convert weights between TF checkpoints, Keras HDF5 and safetensors.
    #[command(after_help = convert::AFTER_HELP)]
    Convert(ConvertArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  ckptconv completions bash > /etc/bash_completion.d/ckptconv\n  ckptconv completions zsh > \"${fpath[1]}/_ckptconv\""
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  ckptconv man > /usr/local/share/man/man1/ckptconv.1")]
    Man,
}

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The first weights file.
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The second weights file.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Absolute tolerance (as numpy.allclose).
    #[arg(long, default_value_t = 0.0, value_name = "X")]
    pub atol: f64,
    /// Relative tolerance (as numpy.allclose).
    #[arg(long, default_value_t = 0.0, value_name = "Y")]
    pub rtol: f64,
    /// Also compare optimizer state and counters.
    #[arg(long)]
    pub include_optimizer: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `summary`.
#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    /// The weights file (see INPUT in `ckptconv --help`).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show, for each layer, the formula that gives its Param # from its weight shapes.
    #[arg(long)]
    pub explain: bool,
}

/// Arguments of `convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// The weights file(s) to convert (see INPUT in `ckptconv --help`).
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write one input: a .h5, a .safetensors, or a checkpoint prefix.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Write each input's output under DIR, mirroring the inputs' relative paths.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Output format: ckpt, h5, keras or safetensors [default: from OUT's extension].
    #[arg(long, value_name = "FORMAT")]
    pub to: Option<String>,
    /// Output layout: tf1, object or keep (checkpoints); keras, keras3 or flat (h5).
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<String>,
    /// Write the output in exactly the layout of TEMPLATE: a .keras, .weights.h5, Keras 2
    /// .h5 or TF-format checkpoint of the target model (any weights, e.g. freshly
    /// initialised). Source weights are matched to the template's by layer and shape;
    /// any weight left over on either side is an error.
    #[arg(long, value_name = "TEMPLATE")]
    pub like: Option<PathBuf>,
    /// Replace existing outputs.
    #[arg(long)]
    pub force: bool,
    /// Leave inputs whose output already exists alone.
    #[arg(long)]
    pub skip_existing: bool,
    /// Convert this many inputs at once [default: the number of cores].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Only tensors whose variable name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out tensors whose variable name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Rename variables: 'REGEX=REPLACEMENT' ($1 for groups); repeatable, applied in order.
    #[arg(long, value_name = "REGEX=REPLACEMENT")]
    pub rename: Vec<String>,
    /// Drop optimizer state and counters.
    #[arg(long)]
    pub weights_only: bool,
    /// Cast floating tensors to float16, bfloat16 or float32 (otherwise bit-exact).
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<String>,
    /// Fail if any tensor cannot be written to the output format (instead of skipping it).
    #[arg(long)]
    pub strict: bool,
    /// Rename outputs into place without waiting for them to reach the disk (as cp does).
    /// Faster; still never leaves a partial output on an error or Ctrl-C, but a power
    /// loss or kernel crash right after the command may leave an output incomplete.
    #[arg(long)]
    pub no_fsync: bool,
    /// When the output directory's `checkpoint` state file names other checkpoints, add
    /// this one as the latest (as tf.train.CheckpointManager does); without it that file
    /// is left alone, so tf.train.latest_checkpoint keeps finding the same checkpoint.
    #[arg(long)]
    pub update_state: bool,
    /// Split a checkpoint's data into files of at most this size (e.g. 2GiB, 500MB).
    #[arg(long, value_name = "SIZE")]
    pub max_shard_size: Option<String>,
    /// Never show a progress bar (it is shown only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Print one JSON line per input.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, powershell or elvish.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The weights file (see INPUT in `ckptconv --help`).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// One or more weights files.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Print one JSON document instead of one line per input.
    #[arg(long)]
    pub json: bool,
}

/// Run a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    let read = cli.read_options()?;
    match cli.command {
        Command::Inspect(a) => inspect::run(&a, read),
        Command::Verify(a) => verify::run(&a, read),
        Command::Convert(a) => convert::run(&a, read),
        Command::Summary(a) => summary::run(&a, read),
        Command::Diff(a) => diff::run(&a, read),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "ckptconv", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| crate::error::Error::io("stdout", "write", e))?;
            Ok(0)
        }
    }
}
