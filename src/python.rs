//! The Python extension module `ckptconv._ckptconv` (feature `python`), wrapped by the
//! package in `python/ckptconv/` (see docs/python.md).
//!
//! Thin on purpose: the Python package builds the numpy arrays and the friendly API; this
//! module opens sources, hands out tensor bytes (the address of bytes borrowed from the
//! source's own map, or an owned copy), runs commands through the CLI's own code paths
//! (argument parsing included, so that `ckptconv.convert` and `ckptconv convert` write
//! the same bytes), and maps [`Error`] variants to exception classes. The GIL is released
//! during all I/O.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyException, PyIndexError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::cli::{Cli, Command};
use crate::error::Error as CrateError;
use crate::tensor::{TensorData, TensorSource};

pyo3::create_exception!(ckptconv, Error, PyException, "Any ckptconv error.");
pyo3::create_exception!(
    ckptconv,
    CorruptError,
    Error,
    "The input file is malformed."
);
pyo3::create_exception!(
    ckptconv,
    UnsupportedError,
    Error,
    "The input holds something ckptconv does not handle."
);
pyo3::create_exception!(
    ckptconv,
    NotFoundError,
    Error,
    "Nothing usable at the given path."
);
pyo3::create_exception!(
    ckptconv,
    IoError,
    Error,
    "The operating system refused (permissions, a missing shard, a full disk)."
);
pyo3::create_exception!(
    ckptconv,
    UsageError,
    Error,
    "Arguments that cannot work together."
);
pyo3::create_exception!(
    ckptconv,
    ExistsError,
    Error,
    "An output exists and force was not given."
);
pyo3::create_exception!(
    ckptconv,
    LimitError,
    Error,
    "The work would go over a limit (max_alloc, or a format's ceiling)."
);
pyo3::create_exception!(
    ckptconv,
    InterruptedError,
    Error,
    "The work was interrupted; nothing was written."
);

/// The exception for `e`, carrying the CLI's one-line message.
fn to_py(e: CrateError) -> PyErr {
    let msg = crate::error::chain(&e);
    match e {
        CrateError::Input {
            kind: crate::InputErrorKind::NotFound,
            ..
        } => NotFoundError::new_err(msg),
        CrateError::Input { .. } => CorruptError::new_err(msg),
        CrateError::Unsupported { .. } => UnsupportedError::new_err(msg),
        CrateError::Limit { .. } => LimitError::new_err(msg),
        CrateError::Io { .. } => IoError::new_err(msg),
        CrateError::Usage(_) => UsageError::new_err(msg),
        CrateError::Exists(_) => ExistsError::new_err(msg),
        CrateError::Interrupted => InterruptedError::new_err(msg),
    }
}

/// A source that may move between threads. Every reader [`crate::formats::open_with`]
/// returns is `Send` (checked below at compile time); the trait object just does not say
/// so.
struct SendSource(Box<dyn TensorSource>);

// SAFETY: `open_with` only ever boxes the five reader types asserted `Send` here.
unsafe impl Send for SendSource {}

#[allow(dead_code)]
fn readers_are_send() {
    fn send<T: Send + Sync>() {}
    send::<crate::formats::tf::Bundle>();
    send::<crate::formats::tf::v1::V1Checkpoint>();
    send::<crate::formats::tf::graphdef::GraphDef>();
    send::<crate::formats::h5::H5Source>();
    send::<crate::formats::safetensors::SafetensorsSource>();
}

/// An open weights file.
#[pyclass(module = "ckptconv._ckptconv", frozen)]
struct Reader {
    src: SendSource,
}

fn read_options(mmap: bool) -> crate::formats::ReadOptions {
    crate::formats::ReadOptions::default().with_mmap(mmap)
}

#[pyfunction]
#[pyo3(signature = (path, mmap = true))]
fn open(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<Reader> {
    let src = py
        .allow_threads(|| crate::formats::open_with(&path, read_options(mmap)).map(SendSource))
        .map_err(to_py)?;
    Ok(Reader { src })
}

impl Reader {
    fn src(&self) -> &dyn TensorSource {
        self.src.0.as_ref()
    }

    fn index(&self, i: usize) -> PyResult<usize> {
        if i < self.src().tensors().len() {
            Ok(i)
        } else {
            Err(PyIndexError::new_err(format!("no tensor {i}")))
        }
    }
}

#[pymethods]
impl Reader {
    /// "tf-checkpoint", "keras-h5", …
    fn format(&self) -> &'static str {
        self.src().format().name()
    }

    fn path(&self) -> PathBuf {
        self.src().path().to_path_buf()
    }

    /// A safetensors file's `__metadata__` (empty when it has none); `None` for formats
    /// that store no such map.
    fn file_metadata(&self) -> Option<std::collections::HashMap<String, String>> {
        self.src().file_metadata().cloned()
    }

    /// Every tensor as (name, variable, dtype, shape, byte_len, shard, slices,
    /// object_path), in the file's order.
    #[allow(clippy::type_complexity)]
    fn tensors(
        &self,
    ) -> Vec<(
        String,
        String,
        &'static str,
        Vec<u64>,
        u64,
        Option<u32>,
        usize,
        Option<String>,
    )> {
        self.src()
            .tensors()
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.variable.clone(),
                    t.dtype.name(),
                    t.shape.clone(),
                    t.byte_len,
                    t.shard,
                    t.slices,
                    t.object_path.clone(),
                )
            })
            .collect()
    }

    /// The Keras layers the file reveals: a list of dicts (name, class_name, activation,
    /// trainable, weights = tensor indices).
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for l in self.src().layers() {
            let d = PyDict::new(py);
            d.set_item("name", &l.name)?;
            d.set_item("class_name", &l.class_name)?;
            d.set_item("activation", &l.activation)?;
            d.set_item("trainable", l.trainable)?;
            let w: Vec<usize> = l.weights.iter().map(|w| w.tensor).collect();
            d.set_item("weights", w)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Tensor `i`'s bytes, checksum checked: `("ptr", address)` when they are borrowed
    /// from this source (valid while it lives), `("bytes", bytes)` when decoded or
    /// copied, `("strings", [bytes, …])` for a string tensor.
    fn read<'py>(&self, py: Python<'py>, i: usize) -> PyResult<(&'static str, PyObject)> {
        let i = self.index(i)?;
        let src = self.src();
        let data = py.allow_threads(|| src.read(i)).map_err(to_py)?;
        Ok(match data {
            TensorData::Bytes(std::borrow::Cow::Borrowed(b)) => (
                "ptr",
                (b.as_ptr() as usize).into_pyobject(py)?.into_any().unbind(),
            ),
            TensorData::Bytes(std::borrow::Cow::Owned(b)) => {
                ("bytes", PyBytes::new(py, &b).into_any().unbind())
            }
            TensorData::Strings(s) => {
                let l = PyList::empty(py);
                for e in &s {
                    l.append(PyBytes::new(py, e))?;
                }
                ("strings", l.into_any().unbind())
            }
        })
    }

    /// Tensor `i`'s bytes, always copied (for a caller that wants no view of the map).
    fn read_bytes<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyBytes>> {
        let i = self.index(i)?;
        let src = self.src();
        let data = py.allow_threads(|| src.read(i)).map_err(to_py)?;
        match data.as_bytes() {
            Some(b) => Ok(PyBytes::new(py, b)),
            None => Err(UnsupportedError::new_err(format!(
                "{}: tensor {:?}: a string tensor has no bytes",
                src.path().display(),
                src.tensors()[i].name
            ))),
        }
    }
}

/// Parse a command line exactly as the `ckptconv` command does.
fn parse(argv: Vec<OsString>) -> PyResult<Cli> {
    <Cli as clap::Parser>::try_parse_from(argv).map_err(|e| {
        let msg = e.to_string();
        let line = msg
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("bad arguments")
            .trim_start_matches("error: ")
            .to_string();
        UsageError::new_err(line)
    })
}

/// Run `work` on a thread of its own while this one waits without the GIL and checks
/// Python's signals: on Ctrl-C (KeyboardInterrupt) the work is asked to stop (its
/// `cancel` token: temporary outputs are removed), waited for, and the KeyboardInterrupt
/// is raised, unless the work had finished: then its outputs exist and its result is
/// returned.
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    cancel: crate::Cancel,
    work: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> PyResult<T> {
    let handle = std::thread::spawn(work);
    loop {
        // Up to 50 ms without the GIL, waking every 2 ms to see whether the work is done.
        let waiting = py.allow_threads(|| {
            for _ in 0..25 {
                if handle.is_finished() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            !handle.is_finished()
        });
        if !waiting {
            break;
        }
        if let Err(e) = py.check_signals() {
            cancel.cancel();
            return match py.allow_threads(|| handle.join()) {
                // The work had already committed its outputs when it was asked to stop:
                // they are in place, so its report stands (as the command exits 0 when
                // a signal comes too late to stop it).
                Ok(Ok(done)) => Ok(done),
                _ => Err(e),
            };
        }
    }
    match handle.join() {
        Ok(r) => r.map_err(to_py),
        Err(_) => Err(Error::new_err("internal error: the work panicked")),
    }
}

/// `ckptconv convert INPUT -o OUT …` (argv as the command takes it, one input), in
/// process; returns the `--json` report line.
#[pyfunction]
fn convert(py: Python<'_>, argv: Vec<OsString>) -> PyResult<String> {
    let cli = parse(argv)?;
    let read = cli.read_options().map_err(to_py)?;
    let Command::Convert(args) = cli.command else {
        return Err(UsageError::new_err("not a convert command line"));
    };
    let (Some(output), [input]) = (args.output.clone(), args.inputs.as_slice()) else {
        return Err(UsageError::new_err("convert takes one input and an output"));
    };
    let input = input.clone();
    let mut opts = crate::cli::convert::options(&args, read).map_err(to_py)?;
    // Python's KeyboardInterrupt, not the command line's signal flag, stops this one.
    opts.cancel = crate::Cancel::new();
    let cancel = opts.cancel.clone();
    let (i, o) = (input.clone(), output.clone());
    let r = interruptible(py, cancel, move || crate::convert::convert(&i, &o, &opts))?;
    Ok(crate::cli::convert::report_json(
        &input.display().to_string(),
        &output.display().to_string(),
        "ok",
        Some(&r),
        None,
    ))
}

/// `ckptconv inspect PATH --json`, as a string.
#[pyfunction]
#[pyo3(signature = (path, mmap = true))]
fn inspect_json(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<String> {
    py.allow_threads(|| {
        let src = crate::formats::open_with(&path, read_options(mmap))?;
        let mut out = Vec::new();
        crate::cli::inspect::write_json(&path.display().to_string(), src.as_ref(), &mut out)
            .map_err(|e| CrateError::io("<buffer>", "write", e))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    })
    .map_err(to_py)
}

/// `ckptconv summary PATH --json`, as a string.
#[pyfunction]
#[pyo3(signature = (path, mmap = true))]
fn summary_json(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<String> {
    py.allow_threads(|| {
        let src = crate::formats::open_with(&path, read_options(mmap))?;
        let s = crate::summary::summarize(src.as_ref());
        Ok(crate::cli::summary::to_json(&path.display().to_string(), src.as_ref(), &s).to_string())
    })
    .map_err(to_py)
}

/// `ckptconv diff A B --json`, as a string.
#[pyfunction]
#[pyo3(signature = (a, b, atol = 0.0, rtol = 0.0, include_optimizer = false, mmap = true))]
fn diff_json(
    py: Python<'_>,
    a: PathBuf,
    b: PathBuf,
    atol: f64,
    rtol: f64,
    include_optimizer: bool,
    mmap: bool,
) -> PyResult<String> {
    let cancel = crate::Cancel::new();
    let opts = crate::diff::DiffOptions {
        cancel: cancel.clone(),
        atol,
        rtol,
        include_optimizer,
    };
    interruptible(py, cancel, move || {
        let (input_a, input_b) = (a.display().to_string(), b.display().to_string());
        let a = crate::formats::open_with(&a, read_options(mmap))?;
        let b = crate::formats::open_with(&b, read_options(mmap))?;
        let r = crate::diff::diff(a.as_ref(), b.as_ref(), &opts)?;
        Ok(crate::cli::diff::json_doc(&input_a, &input_b, a.as_ref(), b.as_ref(), &r).to_string())
    })
}

/// The `ckptconv` command, in process: `argv[0]` is the program name. Returns the exit
/// code, as the binary's `main` does.
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    let cli = match <Cli as clap::Parser>::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code().clamp(0, 255) as u8;
        }
    };
    crate::cli::signals::set_cli_signal_dispositions();
    let code = py.allow_threads(|| match crate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ckptconv: error: {}", crate::error::chain(&e));
            crate::cli::exit_code(&e)
        }
    });
    // The console script is a command like the binary: it dies of the signal that
    // stopped it, so that a shell loop stops too.
    crate::cli::signals::die_if_interrupted();
    code
}

/// The child side of HDF5 isolation (what the binary's `__h5probe` does).
#[pyfunction]
fn h5probe(path: PathBuf, emit: bool) -> u8 {
    crate::formats::h5::probe(&path, emit)
}

/// Open every HDF5 file in a child process first: `argv` runs [`h5probe`] (the Python
/// package passes its interpreter and its probe script).
#[pyfunction]
fn set_isolation(argv: Vec<OsString>) -> PyResult<()> {
    let mut it = argv.into_iter();
    let Some(exe) = it.next() else {
        return Err(UsageError::new_err("set_isolation needs a program"));
    };
    crate::formats::h5::set_isolation_command(PathBuf::from(exe), it.collect());
    Ok(())
}

#[pymodule]
fn _ckptconv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("CorruptError", py.get_type::<CorruptError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("ExistsError", py.get_type::<ExistsError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("InterruptedError", py.get_type::<InterruptedError>())?;
    m.add_class::<Reader>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_json, m)?)?;
    m.add_function(wrap_pyfunction!(summary_json, m)?)?;
    m.add_function(wrap_pyfunction!(diff_json, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(h5probe, m)?)?;
    m.add_function(wrap_pyfunction!(set_isolation, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
