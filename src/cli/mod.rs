//! The command line: clap definitions, one module per command, output helpers.
//!
//! The binary (`src/main.rs`) calls [`crate::run_cli`], which is [`main`] here: as in
//! ripgrep, argument parsing, tables, progress bars and signal handling belong to the
//! program, not to the library API. Commands print results to stdout and logs to stderr,
//! and return the process exit code: 0 success, 1 bad input or failed work, 2 usage.

pub mod convert;
pub mod diff;
pub mod inspect;
pub(crate) mod json;
pub mod output;
pub(crate) mod signals;
pub mod show;
pub mod summary;
pub mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;

const ABOUT: &str = "Convert model weights between TensorFlow checkpoints, Keras HDF5 and \
safetensors — no Python or TensorFlow needed.";

const AFTER_HELP: &str = "\
INPUT for a TensorFlow checkpoint may be the prefix (model.ckpt), its .index
file, any .data-NNNNN-of-NNNNN shard, a directory with a `checkpoint` state
file (its latest checkpoint is used), or a SavedModel directory.

Exit codes: 0 success, 1 the input is bad or the work failed, 2 usage error.

Examples:
  ckptconv convert model.ckpt -o model.h5       # TF checkpoint → Keras HDF5
  ckptconv convert weights.h5 -o ckpt/model     # Keras HDF5 → TF checkpoint
  ckptconv inspect model.ckpt
  ckptconv inspect --json runs/exp1/           # latest checkpoint of a run
  ckptconv verify runs/*/model.ckpt.index      # every checksum of many files";

/// The program: the HDF5 probe child's entry (see `formats::h5::set_isolation`), or
/// parse the arguments, run the command, print an error with its causes, and return the
/// exit code.
pub(crate) fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() >= 3 && args[1] == "__h5probe" {
        let emit = args.len() == 4 && args[2] == "--emit";
        let file = std::path::Path::new(&args[args.len() - 1]);
        return ExitCode::from(crate::formats::h5::probe(file, emit));
    }
    signals::set_cli_signal_dispositions();
    if let Ok(exe) = std::env::current_exe() {
        crate::formats::h5::set_isolation(exe);
    }
    let code = match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ckptconv: error: {}", crate::error::chain(&e));
            exit_code(&e)
        }
    };
    signals::die_if_interrupted();
    ExitCode::from(code)
}

/// The process exit code for an error: 2 for usage errors, 128 + the signal after an
/// interruption, else 1.
pub(crate) fn exit_code(e: &crate::error::Error) -> u8 {
    use crate::error::Error;
    match e {
        Error::Usage(_) => 2,
        Error::Interrupted => signals::interrupted_exit_code(),
        _ => 1,
    }
}

/// Top-level arguments.
#[derive(Debug, Parser)]
#[command(
    name = "ckptconv",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    max_term_width = 80
)]
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
    pub(crate) fn read_options(&self) -> Result<crate::formats::ReadOptions> {
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
    /// Print a tensor's values (numpy's layout), or their statistics.
    #[command(after_help = show::AFTER_HELP)]
    Show(ShowArgs),
    /// Convert weights between TF checkpoints, Keras HDF5 and safetensors.
    #[command(after_help = convert::AFTER_HELP)]
    Convert(ConvertArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  ckptconv completions bash > /etc/bash_completion.d/ckptconv\n  ckptconv completions zsh > \"${fpath[1]}/_ckptconv\""
    )]
    Completions(CompletionsArgs),
    /// Print a man page (roff): ckptconv(1), or ckptconv-COMMAND(1).
    #[command(
        after_help = "Examples:\n  ckptconv man convert | man -l -\n  ckptconv man --out-dir /usr/local/share/man/man1   # every page"
    )]
    Man(ManArgs),
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

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The weights file (see INPUT in `ckptconv --help`).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// The tensor, by its name as `inspect` lists it.
    #[arg(value_name = "TENSOR")]
    pub tensor: String,
    /// Summarize tensors of more than N elements with `...` (0: print every value).
    #[arg(long, value_name = "N", default_value_t = crate::show::DEFAULT_LIMIT)]
    pub limit: u64,
    /// Print min, max, mean, std and the NaN and Inf counts instead of the values.
    #[arg(long)]
    pub stats: bool,
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
    /// Output format [default: from OUT's extension].
    #[arg(long, value_name = "FORMAT", value_parser = format_values())]
    pub to: Option<String>,
    /// Output layout: tf1, object or keep (checkpoints); keras, keras3 or flat (h5).
    #[arg(long, value_name = "LAYOUT", value_parser = layout_values())]
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
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
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
    /// Cast floating tensors to this dtype (otherwise bit-exact).
    #[arg(long, value_name = "DTYPE", value_parser = dtype_values())]
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

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The command whose page to print (ckptconv-COMMAND(1)) [default: ckptconv(1)].
    #[arg(value_name = "COMMAND", value_parser = ["inspect", "verify", "summary", "diff", "show", "convert", "completions", "man"])]
    pub command: Option<String>,
    /// Write every page (ckptconv.1, ckptconv-convert.1, …) into DIR instead.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
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
    /// Print one JSON object per line, one per input, instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--to`'s values, with the aliases `convert` accepts (offered by completions and help).
fn format_values() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue as V;
    clap::builder::PossibleValuesParser::new([
        V::new("ckpt")
            .aliases(["tf", "checkpoint"])
            .help("TensorFlow checkpoint (PREFIX.index + data files)"),
        V::new("h5")
            .alias("hdf5")
            .help("Keras HDF5 (.h5; .weights.h5 for Keras 3)"),
        V::new("keras").help("Keras 3 .keras archive"),
        V::new("safetensors").help("safetensors"),
    ])
}

/// `--layout`'s values (which apply depends on the output format; `convert` checks).
fn layout_values() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue as V;
    clap::builder::PossibleValuesParser::new([
        V::new("tf1").help("checkpoint: variables by name, as tf.compat.v1.train.Saver"),
        V::new("object").help("checkpoint: tf-keras object graph, for model.load_weights"),
        V::new("keep").help("checkpoint: the input's own keys"),
        V::new("keras").help("HDF5: Keras 2 layer groups"),
        V::new("keras3").help("HDF5: Keras 3 .weights.h5 layout"),
        V::new("flat").help("HDF5: one dataset per tensor, by name"),
    ])
}

/// `--dtype`'s values.
fn dtype_values() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue as V;
    clap::builder::PossibleValuesParser::new([
        V::new("float16").alias("half"),
        V::new("bfloat16"),
        V::new("float32").alias("float"),
    ])
}

/// The man pages: the top-level one, and one per command named `ckptconv-COMMAND`, as
/// the top-level page's SEE ALSO section refers to them.
fn man_pages() -> Vec<(String, clap::Command)> {
    let mut top = <Cli as clap::CommandFactory>::command();
    // Propagates global options (--no-mmap, --max-alloc) into each command.
    top.build();
    let mut pages = vec![("ckptconv".to_string(), top.clone())];
    for sub in top.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("ckptconv-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    pages
}

fn man(args: &ManArgs) -> Result<u8> {
    use crate::error::Error;
    let pages = man_pages();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
        for (name, cmd) in pages {
            let path = dir.join(format!("{name}.1"));
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .map_err(|e| Error::io(&path, "render", e))?;
            std::fs::write(&path, buf).map_err(|e| Error::io(&path, "write", e))?;
            println!("{}", path.display());
        }
        return Ok(0);
    }
    let want = match &args.command {
        Some(c) => format!("ckptconv-{c}"),
        None => "ckptconv".to_string(),
    };
    let (_, cmd) = pages
        .into_iter()
        .find(|(n, _)| *n == want)
        .ok_or_else(|| Error::Usage(format!("no man page {want}")))?;
    clap_mangen::Man::new(cmd)
        .render(&mut std::io::stdout().lock())
        .map_err(|e| Error::io("stdout", "write", e))?;
    Ok(0)
}

/// `--jobs`: a whole number of at least 1.
fn parse_jobs(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 jobs would convert nothing; give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
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
        Command::Show(a) => show::run(&a, read),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "ckptconv", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man(a) => man(&a),
    }
}
