//! Writing Keras 3 `.keras` archives (`keras/src/saving/saving_lib.py`, `save_model`):
//!
//! ```text
//! model.keras: a zip of three entries, stored (not compressed)
//! ├── model.weights.h5   the weights in Keras 3's layout ([`crate::keras::keras3`])
//! ├── metadata.json      {"keras_version": …, "date_saved": …}
//! └── config.json        the model's config, as `keras.saving.serialize_keras_object`
//! ```
//!
//! Keras' loader reads `config.json` to build the model, then `model.weights.h5` as a
//! `.weights.h5`; `metadata.json` is informational. It opens the entries by name, so their
//! order is free, and treats any further entry as assets: there are exactly three.
//!
//! The weights entry comes first and is written in place, in one pass, as the archive's
//! own bytes: the HDF5 file is created with a 512-byte *user block*, which libhdf5 leaves
//! alone, and that block becomes the entry's zip local header (padded to its size with an
//! extra field). The entry's data is then the HDF5 file from its superblock on. Its
//! superblock records its base address (512); a reader given the entry alone finds the
//! superblock at 0 and moves the base there, as the HDF5 format specification says it
//! does for files whose contents were moved. Once the data is written, the local header
//! gets its checksum and sizes, and the two JSON entries, the central directory and the
//! end records follow (zip64 records when the weights reach 4 GiB).
//!
//! ```text
//! 0      local header of model.weights.h5 (+ zip64 sizes, padding)   the HDF5 user block
//! 512    HDF5 superblock … datasets                                   the entry's data
//! L      local header + metadata.json, local header + config.json
//!        central directory (3 entries) [zip64 end record + locator] end record
//! ```

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::convert::Progress;
use crate::error::{Error, Result};
use crate::commit::OutputSet;
use crate::plan::Skipped;
use crate::tensor::TensorSource;

/// The Keras version ckptconv's `.keras` archives are tested against, for
/// `metadata.json`.
pub const KERAS_VERSION: &str = "3.15.1";

/// The HDF5 user block that holds the weights entry's local header.
pub const USERBLOCK: u64 = 512;

const WEIGHTS: &str = "model.weights.h5";
/// DOS date of 1980-01-01 00:00 (the zip epoch): the same input gives the same bytes.
const DOS_DATE: u16 = 0x21;
/// An extra field id no zip tool assigns, for padding.
const PAD_ID: u16 = 0x636b;

/// The `.keras` writer: Keras 3's weights layout `layout`, with `config` as the
/// archive's `config.json`.
pub struct KerasArchive<'a> {
    /// Where each weight goes in `model.weights.h5`.
    pub layout: &'a crate::keras::keras3::Layout3,
    /// The model's `config.json`.
    pub config: &'a str,
}

impl crate::write::Writer for KerasArchive<'_> {
    fn check_names(&self, src: &dyn TensorSource, target: &Path) -> Result<()> {
        super::writer::H5Plan::Keras3(self.layout).check_names(src, target)
    }

    fn write(
        &self,
        src: &dyn TensorSource,
        target: &Path,
        out: &mut OutputSet,
        progress: &dyn Progress,
    ) -> Result<Vec<Skipped>> {
        write(src, self.layout, self.config, target, out, progress)
    }
}

/// Write `layout` from `src` with `config_json` as a `.keras` archive at `target`.
fn write(
    src: &dyn TensorSource,
    layout: &crate::keras::keras3::Layout3,
    config_json: &str,
    target: &Path,
    out: &mut OutputSet,
    progress: &dyn Progress,
) -> Result<Vec<Skipped>> {
    let werr = |e: std::io::Error| Error::io(target, "write", e);
    let temp = out.temp_path(target);
    let cancel = out.cancel().clone();
    let skipped = super::writer::write_at(
        src,
        super::writer::H5Plan::Keras3(layout),
        target,
        &temp,
        USERBLOCK,
        &cancel,
        progress,
    )?;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&temp)
        .map_err(|e| Error::io(target, "reopen", e))?;
    let end = f.seek(SeekFrom::End(0)).map_err(werr)?;
    let size = end.checked_sub(USERBLOCK).ok_or_else(|| {
        werr(std::io::Error::other(
            "the HDF5 file is shorter than its user block",
        ))
    })?;
    // The entry's checksum: its bytes, just written, from the page cache.
    f.seek(SeekFrom::Start(USERBLOCK)).map_err(werr)?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        cancel.check()?;
        let n = f.read(&mut buf).map_err(werr)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
    }
    let weights = Entry {
        name: WEIGHTS,
        offset: 0,
        crc: crc.finalize(),
        size,
    };
    f.seek(SeekFrom::Start(0)).map_err(werr)?;
    f.write_all(&local_header(&weights, Some(USERBLOCK)))
        .map_err(werr)?;
    // Then the JSON entries and the directory, after the HDF5 file.
    let metadata = serde_json::json!({
        "keras_version": KERAS_VERSION,
        "date_saved": date_saved(),
        "converted_by": format!("ckptconv {}", env!("CARGO_PKG_VERSION")),
    })
    .to_string();
    let mut tail: Vec<u8> = Vec::new();
    let mut entries = vec![weights];
    for (name, data) in [
        ("metadata.json", metadata.as_bytes()),
        ("config.json", config_json.as_bytes()),
    ] {
        let e = Entry {
            name,
            offset: end + tail.len() as u64,
            crc: crc32fast::hash(data),
            size: data.len() as u64,
        };
        tail.extend(local_header(&e, None));
        tail.extend_from_slice(data);
        entries.push(e);
    }
    let cd_offset = end + tail.len() as u64;
    let mut cd = Vec::new();
    for e in &entries {
        cd.extend(central_header(e));
    }
    tail.extend_from_slice(&cd);
    tail.extend(end_records(
        entries.len() as u64,
        cd.len() as u64,
        cd_offset,
    ));
    f.seek(SeekFrom::Start(end)).map_err(werr)?;
    f.write_all(&tail).map_err(werr)?;
    f.flush().map_err(werr)?;
    Ok(skipped)
}

/// One stored entry.
struct Entry<'a> {
    name: &'a str,
    offset: u64,
    crc: u32,
    size: u64,
}

const U32_MAX: u64 = 0xFFFF_FFFF;

fn le16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn le64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// A local file header; `pad_to`: pad it with an extra field to exactly that many bytes.
fn local_header(e: &Entry<'_>, pad_to: Option<u64>) -> Vec<u8> {
    let zip64 = e.size >= U32_MAX;
    let mut extra = Vec::new();
    if zip64 {
        le16(&mut extra, 0x0001);
        le16(&mut extra, 16);
        le64(&mut extra, e.size);
        le64(&mut extra, e.size);
    }
    let fixed = 30 + e.name.len() as u64;
    if let Some(total) = pad_to {
        // total = fixed + extra + 4 + padding; the caller's 512 leaves room.
        let pad = total - fixed - extra.len() as u64 - 4;
        le16(&mut extra, PAD_ID);
        le16(&mut extra, pad as u16);
        extra.resize(extra.len() + pad as usize, 0);
    }
    let mut v = Vec::new();
    le32(&mut v, 0x0403_4b50);
    le16(&mut v, if zip64 { 45 } else { 20 });
    le16(&mut v, 0); // flags
    le16(&mut v, 0); // stored
    le16(&mut v, 0); // time
    le16(&mut v, DOS_DATE);
    le32(&mut v, e.crc);
    let s = if zip64 { U32_MAX as u32 } else { e.size as u32 };
    le32(&mut v, s);
    le32(&mut v, s);
    le16(&mut v, e.name.len() as u16);
    le16(&mut v, extra.len() as u16);
    v.extend_from_slice(e.name.as_bytes());
    v.extend_from_slice(&extra);
    v
}

fn central_header(e: &Entry<'_>) -> Vec<u8> {
    let big_size = e.size >= U32_MAX;
    let big_offset = e.offset >= U32_MAX;
    let mut extra = Vec::new();
    if big_size || big_offset {
        le16(&mut extra, 0x0001);
        le16(
            &mut extra,
            8 * (2 * u16::from(big_size) + u16::from(big_offset)),
        );
        if big_size {
            le64(&mut extra, e.size);
            le64(&mut extra, e.size);
        }
        if big_offset {
            le64(&mut extra, e.offset);
        }
    }
    let mut v = Vec::new();
    le32(&mut v, 0x0201_4b50);
    le16(&mut v, 3 << 8 | 45); // made by: Unix, zip 4.5
    le16(&mut v, if big_size || big_offset { 45 } else { 20 });
    le16(&mut v, 0);
    le16(&mut v, 0);
    le16(&mut v, 0);
    le16(&mut v, DOS_DATE);
    le32(&mut v, e.crc);
    let s = if big_size {
        U32_MAX as u32
    } else {
        e.size as u32
    };
    le32(&mut v, s);
    le32(&mut v, s);
    le16(&mut v, e.name.len() as u16);
    le16(&mut v, extra.len() as u16);
    le16(&mut v, 0); // comment
    le16(&mut v, 0); // disk
    le16(&mut v, 0); // internal attributes
    le32(&mut v, 0o100644 << 16); // a regular file, rw-r--r--
    le32(
        &mut v,
        if big_offset {
            U32_MAX as u32
        } else {
            e.offset as u32
        },
    );
    v.extend_from_slice(e.name.as_bytes());
    v.extend_from_slice(&extra);
    v
}

/// The end of central directory record, after zip64's when a size or offset needs it.
fn end_records(entries: u64, cd_size: u64, cd_offset: u64) -> Vec<u8> {
    let mut v = Vec::new();
    let zip64 = cd_offset >= U32_MAX || cd_size >= U32_MAX;
    if zip64 {
        let at = cd_offset + cd_size;
        le32(&mut v, 0x0606_4b50);
        le64(&mut v, 44);
        le16(&mut v, 3 << 8 | 45);
        le16(&mut v, 45);
        le32(&mut v, 0);
        le32(&mut v, 0);
        le64(&mut v, entries);
        le64(&mut v, entries);
        le64(&mut v, cd_size);
        le64(&mut v, cd_offset);
        le32(&mut v, 0x0706_4b50);
        le32(&mut v, 0);
        le64(&mut v, at);
        le32(&mut v, 1);
    }
    le32(&mut v, 0x0605_4b50);
    le16(&mut v, 0);
    le16(&mut v, 0);
    le16(&mut v, entries as u16);
    le16(&mut v, entries as u16);
    le32(
        &mut v,
        if zip64 {
            U32_MAX as u32
        } else {
            cd_size as u32
        },
    );
    le32(
        &mut v,
        if zip64 {
            U32_MAX as u32
        } else {
            cd_offset as u32
        },
    );
    le16(&mut v, 0);
    v
}

/// Now, as Keras writes `date_saved` (`%Y-%m-%d@%H:%M:%S`, UTC here); `SOURCE_DATE_EPOCH`
/// when set, for reproducible output.
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
    civil(secs)
}

/// `secs` since the Unix epoch as `%Y-%m-%d@%H:%M:%S` (Howard Hinnant's civil date).
fn civil(secs: u64) -> String {
    let (days, rem) = (secs / 86400, secs % 86400);
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
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil(1_764_506_096), "2025-11-30@12:34:56");
        assert_eq!(civil(0), "1970-01-01@00:00:00");
    }

    #[test]
    fn the_weights_header_fills_the_user_block() {
        for size in [10, U32_MAX - 1, U32_MAX, 5 << 30] {
            let e = Entry {
                name: WEIGHTS,
                offset: 0,
                crc: 7,
                size,
            };
            assert_eq!(local_header(&e, Some(USERBLOCK)).len() as u64, USERBLOCK);
        }
    }

    #[test]
    fn a_small_archive_reads_back() {
        // The layout above with a tiny stand-in for the HDF5 file, read by the zip crate.
        let data = b"weights".to_vec();
        let w = Entry {
            name: WEIGHTS,
            offset: 0,
            crc: crc32fast::hash(&data),
            size: data.len() as u64,
        };
        let mut z = local_header(&w, Some(USERBLOCK));
        z.extend_from_slice(&data);
        let c = b"{}";
        let e = Entry {
            name: "config.json",
            offset: z.len() as u64,
            crc: crc32fast::hash(c),
            size: 2,
        };
        z.extend(local_header(&e, None));
        z.extend_from_slice(c);
        let cd_offset = z.len() as u64;
        let cd: Vec<u8> = [&w, &e].iter().flat_map(|e| central_header(e)).collect();
        z.extend_from_slice(&cd);
        z.extend(end_records(2, cd.len() as u64, cd_offset));
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
        let mut s = String::new();
        a.by_name(WEIGHTS).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "weights");
        s.clear();
        a.by_name("config.json")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "{}");
    }
}
