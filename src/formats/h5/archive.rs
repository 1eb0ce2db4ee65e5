//! Writing Keras 3 `.keras` archives (`keras/src/saving/saving_lib.py`, `save_model`):
//!
//! ```text
//! model.keras (zip, entries stored uncompressed as Keras writes them)
//! ├── metadata.json      {"keras_version": …, "date_saved": …}
//! ├── config.json        the model's config, as `keras.saving.serialize_keras_object`
//! └── model.weights.h5   the weights in Keras 3's layout ([`crate::keras::keras3`])
//! ```
//!
//! Keras' loader reads `config.json` to build the model, then `model.weights.h5` as a
//! `.weights.h5`; `metadata.json` is informational. The weights file is written first to
//! a temporary file beside the output, then copied into the archive, which is itself a
//! temporary file until the whole conversion commits.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::output::{check_interrupted, OutputSet};
use crate::plan::Skipped;
use crate::tensor::TensorSource;

/// The Keras version ckptconv's `.keras` archives are tested against, for
/// `metadata.json` when the source does not say.
pub const KERAS_VERSION: &str = "3.15.1";

/// Write `layout` from `src` with `config_json` as a `.keras` archive at `target`.
pub fn write(
    src: &dyn TensorSource,
    layout: &crate::keras::keras3::Layout3,
    config_json: &str,
    target: &Path,
    out: &mut OutputSet,
    progress: &dyn Fn(u64),
) -> Result<Vec<Skipped>> {
    let werr = |e: String| Error::io(target, "write", std::io::Error::other(e));
    // The weights: a temporary file of its own, removed when `scratch` is dropped.
    let mut scratch = OutputSet::new();
    let weights_target = target.with_file_name(format!(
        "{}.weights.h5",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let skipped = super::writer::write(
        src,
        super::writer::H5Plan::Keras3(layout),
        &weights_target,
        &mut scratch,
        progress,
    )?;
    let weights_path = scratch
        .last_temp()
        .ok_or_else(|| werr("no weights file was written".into()))?
        .to_path_buf();
    let file = out.create(target)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let opts = || {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true)
    };
    let metadata = serde_json::json!({
        "keras_version": KERAS_VERSION,
        "date_saved": date_saved(),
        "converted_by": format!("ckptconv {}", env!("CARGO_PKG_VERSION")),
    });
    zip.start_file("metadata.json", opts())
        .map_err(|e| werr(e.to_string()))?;
    zip.write_all(metadata.to_string().as_bytes())
        .map_err(|e| Error::io(target, "write", e))?;
    zip.start_file("config.json", opts())
        .map_err(|e| werr(e.to_string()))?;
    zip.write_all(config_json.as_bytes())
        .map_err(|e| Error::io(target, "write", e))?;
    zip.start_file("model.weights.h5", opts())
        .map_err(|e| werr(e.to_string()))?;
    let mut weights =
        std::fs::File::open(&weights_path).map_err(|e| Error::io(&weights_path, "reopen", e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        check_interrupted()?;
        let n = std::io::Read::read(&mut weights, &mut buf)
            .map_err(|e| Error::io(&weights_path, "read", e))?;
        if n == 0 {
            break;
        }
        zip.write_all(&buf[..n])
            .map_err(|e| Error::io(target, "write", e))?;
    }
    let w = zip.finish().map_err(|e| werr(e.to_string()))?;
    w.into_inner()
        .map_err(|e| Error::io(target, "write", e.into_error()))?
        .flush()
        .map_err(|e| Error::io(target, "write", e))?;
    drop(scratch);
    Ok(skipped)
}

/// Now, as Keras writes `date_saved` (`%Y-%m-%d@%H:%M:%S`, UTC here); the Unix epoch
/// when `SOURCE_DATE_EPOCH` asks for reproducible output.
fn date_saved() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}@{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        std::env::set_var("SOURCE_DATE_EPOCH", "1764506096");
        assert_eq!(super::date_saved(), "2025-11-30@12:34:56");
        std::env::remove_var("SOURCE_DATE_EPOCH");
    }
}
