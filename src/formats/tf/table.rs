//! The LevelDB-style sorted table that a TensorBundle `.index` file is.
//!
//! Defined by `tensorflow/tsl/lib/io/table.cc`, `block.cc`, `block_builder.cc`,
//! `table_builder.cc` and `format.cc` (a copy of LevelDB's format):
//!
//! ```text
//! file   := data_block* metaindex_block index_block footer
//! block  := contents type:u8 crc:u32le          (handles do not count type and crc)
//!           crc = mask(crc32c(contents ++ type)); type 0 = raw, 1 = snappy
//! contents := entry* restart:u32le* num_restarts:u32le
//! entry  := shared:varint32 unshared:varint32 value_len:varint32
//!           key_delta[unshared] value[value_len]  (key = prev_key[..shared] ++ key_delta)
//! footer (48 bytes) := metaindex_handle index_handle zero padding to 40 bytes
//!                      magic 0xdb4775248b80fb57 (u64le)
//! handle := offset:varint64 size:varint64
//! ```
//!
//! The index block maps, for each data block, a separator key ≥ its last key to the
//! block's handle. Keys are strictly increasing bytewise over the whole table.
//!
//! The same container holds a V1 checkpoint's tensors (see `v1.rs`), so there are two
//! ways to read one: [`Table::parse`] copies every entry (an `.index` is small), and
//! [`TableIndex`] reads only the footer and index block, then one data block per lookup,
//! borrowing values from the file's bytes (a V1 file is the size of the model).
//!
//! The reader checks every offset, length, count and checksum against the bytes it was
//! given and reports the first problem as a [`TableError`]; it never panics and never
//! allocates more than a small multiple of its input. The [`TableBuilder`] makes the same
//! choices as TensorFlow's writer (no compression, 256 KiB blocks, restart interval 16,
//! shortest separators), so for the same entries it writes the same bytes.

use std::borrow::Cow;
use std::io::{self, Write};

use super::coding::{self, get_fixed32, Cursor};

/// Magic number at the end of every table.
pub const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Size of the footer.
pub const FOOTER_LEN: usize = 48;
/// Bytes after each block: compression type and masked crc.
const BLOCK_TRAILER_LEN: usize = 5;
/// A snappy block may not expand beyond this factor of its compressed size (snappy's own
/// worst case is about 21×); anything larger is a corrupt header, not a real block.
const MAX_SNAPPY_EXPANSION: usize = 32;

/// What is wrong with a table; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError(pub String);

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, TableError> {
    Err(TableError(msg.into()))
}

/// Whether `tail`, a file's last bytes, ends with the table magic: how a checkpoint
/// index is told apart ([`crate::formats::sniff`], which reads only the last 8 bytes of a
/// file of at least [`FOOTER_LEN`]) and checked when read.
pub fn has_table_magic(tail: &[u8]) -> bool {
    tail.ends_with(&TABLE_MAGIC.to_le_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlockHandle {
    offset: u64,
    size: u64,
}

impl BlockHandle {
    fn decode(cur: &mut Cursor<'_>, what: &str) -> Result<Self, TableError> {
        let offset = cur
            .varint64()
            .map_err(|e| TableError(format!("{what} handle offset: {e}")))?;
        let size = cur
            .varint64()
            .map_err(|e| TableError(format!("{what} handle size: {e}")))?;
        Ok(BlockHandle { offset, size })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        coding::put_varint64(out, self.offset);
        coding::put_varint64(out, self.size);
    }
}

/// A parsed table: every key/value pair in key order.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Table {
    /// Parse a whole table, checking every block checksum and the key order. Copies every
    /// entry: for `.index` files, whose entries are small. Tables that hold the tensors
    /// themselves (V1 checkpoints) are read through [`TableIndex`] instead.
    pub fn parse(data: &[u8]) -> Result<Table, TableError> {
        let mut entries = Vec::new();
        walk(data, |key, value| {
            entries.push((key.to_vec(), value.to_vec()));
            Ok(())
        })?;
        Ok(Table { entries })
    }
}

/// The footer's index handle, after checking the file's length and magic.
fn index_handle(data: &[u8]) -> Result<BlockHandle, TableError> {
    if data.is_empty() {
        return err("empty file (not a checkpoint index)");
    }
    if data.len() < FOOTER_LEN {
        return err(format!(
            "file is {} bytes, shorter than the {FOOTER_LEN}-byte table footer (truncated?)",
            data.len()
        ));
    }
    let footer = &data[data.len() - FOOTER_LEN..];
    if !has_table_magic(footer) {
        let magic = u64::from_le_bytes(footer[40..48].try_into().expect("8 bytes"));
        return err(format!(
            "bad table magic {magic:#018x} (expected {TABLE_MAGIC:#018x}): not a checkpoint index, or truncated"
        ));
    }
    let mut cur = Cursor::new(&footer[..40]);
    let _metaindex = BlockHandle::decode(&mut cur, "metaindex")?;
    BlockHandle::decode(&mut cur, "index")
}

/// Call `f` on every entry of the table in order, checking every block checksum, that keys
/// are strictly increasing and that each lies at or below its block's index separator.
/// Holds one block at a time.
pub fn walk(
    data: &[u8],
    f: impl FnMut(&[u8], &[u8]) -> Result<(), TableError>,
) -> Result<(), TableError> {
    TableIndex::open(data)?.walk(data, f, |_| {})
}

/// A key and its value, the value borrowed from the table's bytes when its block is
/// uncompressed.
pub type Entry<'a> = (Vec<u8>, Cow<'a, [u8]>);

/// A table opened for lookups, as TensorFlow's `Table::Get` reads one: the footer and the
/// index block are read and checked at open, a data block only when a key in it is looked
/// up (its checksum checked each time it is read). Values in uncompressed blocks — all
/// that TensorFlow writes — are borrowed from the table's bytes.
#[derive(Debug, Clone)]
pub struct TableIndex {
    /// Per data block: its index separator (≥ each of its keys, < each key of the next
    /// block) and its handle.
    blocks: Vec<(Vec<u8>, BlockHandle)>,
}

impl TableIndex {
    /// Read the footer and index block of the table `data`.
    pub fn open(data: &[u8]) -> Result<TableIndex, TableError> {
        let index = index_handle(data)?;
        let body = &data[..data.len() - FOOTER_LEN];
        let index_block = read_block(body, index, "index block")?;
        let mut blocks: Vec<(Vec<u8>, BlockHandle)> = Vec::new();
        for_each_entry(&index_block, "index block", |sep, value| {
            if blocks
                .last()
                .is_some_and(|(prev, _)| sep <= prev.as_slice())
            {
                return err("index block keys out of order");
            }
            let mut c = Cursor::new(value);
            let handle = BlockHandle::decode(&mut c, "data block")?;
            blocks.push((sep.to_vec(), handle));
            Ok(Step::Next)
        })?;
        Ok(TableIndex { blocks })
    }

    /// [`walk`] the table `data` this index was opened from; `done(i)` is called after data
    /// block `i` (to drop its pages from memory, say).
    pub fn walk(
        &self,
        data: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), TableError>,
        mut done: impl FnMut(usize),
    ) -> Result<(), TableError> {
        let mut last: Option<Vec<u8>> = None;
        for (i, (sep, handle)) in self.blocks.iter().enumerate() {
            let what = format!("data block at offset {}", handle.offset);
            let block = self.block(data, i)?;
            for_each_entry(&block, &what, |key, value| {
                if let Some(prev) = &last {
                    if key <= prev.as_slice() {
                        return err(format!(
                            "{what}: key {:?} {} the previous key {:?} (keys must be unique and sorted)",
                            String::from_utf8_lossy(key),
                            if key == prev.as_slice() { "repeats" } else { "sorts before" },
                            String::from_utf8_lossy(prev)
                        ));
                    }
                }
                if key > sep.as_slice() {
                    return err(format!(
                        "{what}: key {:?} is past its index separator",
                        String::from_utf8_lossy(key)
                    ));
                }
                f(key, value)?;
                match &mut last {
                    Some(prev) => {
                        prev.clear();
                        prev.extend_from_slice(key);
                    }
                    None => last = Some(key.to_vec()),
                }
                Ok(Step::Next)
            })?;
            drop(block);
            done(i);
        }
        Ok(())
    }

    /// The data block that holds `key` if any does: the first whose separator is ≥ `key`.
    pub fn block_for(&self, key: &[u8]) -> Option<usize> {
        let i = self.blocks.partition_point(|(sep, _)| sep.as_slice() < key);
        (i < self.blocks.len()).then_some(i)
    }

    /// Where data block `i` lies in the file: (offset, bytes including its trailer). The
    /// handle has not been checked against the file.
    pub fn block_range(&self, i: usize) -> (u64, u64) {
        let h = self.blocks[i].1;
        (h.offset, h.size.saturating_add(BLOCK_TRAILER_LEN as u64))
    }

    /// The contents of data block `i`, its checksum checked and decompressed if need be.
    pub fn block<'a>(&self, data: &'a [u8], i: usize) -> Result<Cow<'a, [u8]>, TableError> {
        let body = &data[..data.len().saturating_sub(FOOTER_LEN)];
        let handle = self.blocks[i].1;
        read_block(
            body,
            handle,
            &format!("data block at offset {}", handle.offset),
        )
    }

    /// The first entry of the table, if it has any.
    pub fn first<'a>(&self, data: &'a [u8]) -> Result<Option<Entry<'a>>, TableError> {
        for i in 0..self.blocks.len() {
            let block = self.block(data, i)?;
            let what = format!("data block at offset {}", self.blocks[i].1.offset);
            if let Some(found) = lookup(block, &what, |_| true)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The value stored under `key`, if any.
    pub fn get<'a>(&self, data: &'a [u8], key: &[u8]) -> Result<Option<Cow<'a, [u8]>>, TableError> {
        let Some(i) = self.block_for(key) else {
            return Ok(None);
        };
        let block = self.block(data, i)?;
        let what = format!("data block at offset {}", self.blocks[i].1.offset);
        Ok(lookup(block, &what, |k| k == key)?.map(|(_, v)| v))
    }
}

/// The first entry of `block` whose key satisfies `want`, its value borrowed when the block
/// is.
fn lookup<'a>(
    block: Cow<'a, [u8]>,
    what: &str,
    want: impl Fn(&[u8]) -> bool,
) -> Result<Option<Entry<'a>>, TableError> {
    let mut found: Option<(Vec<u8>, std::ops::Range<usize>)> = None;
    let base = block.as_ptr() as usize;
    for_each_entry(&block, what, |key, value| {
        if !want(key) {
            return Ok(Step::Next);
        }
        let start = value.as_ptr() as usize - base;
        found = Some((key.to_vec(), start..start + value.len()));
        Ok(Step::Stop)
    })?;
    Ok(found.map(|(key, range)| {
        let value = match block {
            Cow::Borrowed(b) => Cow::Borrowed(&b[range]),
            Cow::Owned(v) => Cow::Owned(v[range].to_vec()),
        };
        (key, value)
    }))
}

/// Whether [`for_each_entry`] goes on to the next entry.
enum Step {
    Next,
    Stop,
}

/// Read a block's contents, check its trailer crc and decompress it.
fn read_block<'a>(
    body: &'a [u8],
    handle: BlockHandle,
    what: &str,
) -> Result<Cow<'a, [u8]>, TableError> {
    let start = usize::try_from(handle.offset).ok();
    let size = usize::try_from(handle.size).ok();
    let (start, size) = match (start, size) {
        (Some(s), Some(n)) => (s, n),
        _ => return err(format!("{what}: handle out of range")),
    };
    let end = match start
        .checked_add(size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN))
    {
        Some(e) if e <= body.len() => e,
        _ => {
            return err(format!(
                "{what}: offset {start} + size {size} is beyond the end of the file ({} bytes before the footer; truncated?)",
                body.len()
            ))
        }
    };
    let contents = &body[start..start + size];
    let ctype = body[start + size];
    let stored = get_fixed32(body, end - 4).expect("bounds checked above");
    let computed = coding::crc32c(&body[start..start + size + 1]);
    if coding::unmask(stored) != computed {
        return err(format!(
            "{what}: block checksum mismatch (stored {:#010x}, computed {:#010x})",
            coding::unmask(stored),
            computed
        ));
    }
    match ctype {
        0 => Ok(Cow::Borrowed(contents)),
        1 => {
            let n = snap::raw::decompress_len(contents)
                .map_err(|e| TableError(format!("{what}: bad snappy header: {e}")))?;
            if n > contents
                .len()
                .saturating_mul(MAX_SNAPPY_EXPANSION)
                .max(1024)
            {
                return err(format!(
                    "{what}: snappy block claims {n} bytes from {} compressed bytes",
                    contents.len()
                ));
            }
            let out = snap::raw::Decoder::new()
                .decompress_vec(contents)
                .map_err(|e| TableError(format!("{what}: bad snappy data: {e}")))?;
            Ok(Cow::Owned(out))
        }
        t => err(format!("{what}: unknown compression type {t}")),
    }
}

/// Walk a block's entries in order, rebuilding prefix-compressed keys.
fn for_each_entry<'b>(
    block: &'b [u8],
    what: &str,
    mut f: impl FnMut(&[u8], &'b [u8]) -> Result<Step, TableError>,
) -> Result<(), TableError> {
    if block.len() < 4 {
        return err(format!(
            "{what}: {} bytes, too short for a block",
            block.len()
        ));
    }
    let num_restarts = get_fixed32(block, block.len() - 4).expect("len >= 4") as usize;
    let restarts_len = num_restarts
        .checked_mul(4)
        .and_then(|n| n.checked_add(4))
        .filter(|&n| n <= block.len());
    let restarts_off = match restarts_len {
        Some(n) => block.len() - n,
        None => {
            return err(format!(
                "{what}: restart count {num_restarts} does not fit in the block"
            ))
        }
    };
    for i in 0..num_restarts {
        let r = get_fixed32(block, restarts_off + 4 * i).expect("in bounds") as usize;
        if r > restarts_off {
            return err(format!("{what}: restart point {i} ({r}) is out of range"));
        }
    }
    let entries = &block[..restarts_off];
    let mut cur = Cursor::new(entries);
    let mut key: Vec<u8> = Vec::new();
    let mut n = 0usize;
    while !cur.is_empty() {
        let ctx = |field: &str, e: coding::VarintError| {
            TableError(format!("{what}: entry {n}: {field}: {e}"))
        };
        let shared = cur.varint32().map_err(|e| ctx("shared length", e))? as usize;
        let unshared = cur.varint32().map_err(|e| ctx("key length", e))? as usize;
        let value_len = cur.varint32().map_err(|e| ctx("value length", e))? as usize;
        if shared > key.len() {
            return err(format!(
                "{what}: entry {n}: shares {shared} key bytes but the previous key has {}",
                key.len()
            ));
        }
        let delta = cur.take(unshared).ok_or_else(|| {
            TableError(format!(
                "{what}: entry {n}: key length {unshared} runs past the block"
            ))
        })?;
        let value = cur.take(value_len).ok_or_else(|| {
            TableError(format!(
                "{what}: entry {n}: value length {value_len} runs past the block"
            ))
        })?;
        key.truncate(shared);
        key.extend_from_slice(delta);
        if let Step::Stop = f(&key, value)? {
            return Ok(());
        }
        n += 1;
    }
    Ok(())
}

/// Builds one block.
#[derive(Debug)]
struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    fn new(interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            counter: 0,
            interval,
            last_key: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn size_estimate(&self) -> usize {
        self.buf.len() + self.restarts.len() * 4 + 4
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.counter < self.interval {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
            0
        };
        coding::put_varint64(&mut self.buf, shared as u64);
        coding::put_varint64(&mut self.buf, (key.len() - shared) as u64);
        coding::put_varint64(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts = vec![0];
        self.counter = 0;
        self.last_key.clear();
        out
    }
}

/// Options of the table builder; the defaults are TensorFlow's for `.index` files.
#[derive(Debug, Clone, Copy)]
pub struct TableOptions {
    pub block_size: usize,
    pub restart_interval: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size: 262_144,
            restart_interval: 16,
        }
    }
}

/// Writes a table the way TensorFlow does. Keys must be added in strictly increasing order.
pub struct TableBuilder<W: Write> {
    out: W,
    offset: u64,
    opts: TableOptions,
    data: BlockBuilder,
    index: BlockBuilder,
    last_key: Vec<u8>,
    pending: Option<BlockHandle>,
    entries: u64,
}

impl<W: Write> TableBuilder<W> {
    pub fn new(out: W, opts: TableOptions) -> Self {
        TableBuilder {
            out,
            offset: 0,
            opts,
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            last_key: Vec::new(),
            pending: None,
            entries: 0,
        }
    }

    /// Add an entry. Panics in debug builds if keys are not strictly increasing; returns
    /// an error in all builds.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if self.entries > 0 && key <= self.last_key.as_slice() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "table keys must be strictly increasing: {:?} after {:?}",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(&self.last_key)
                ),
            ));
        }
        if let Some(handle) = self.pending.take() {
            let sep = shortest_separator(&self.last_key, key);
            let mut v = Vec::new();
            handle.encode(&mut v);
            self.index.add(&sep, &v);
        }
        self.data.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        if self.data.size_estimate() >= self.opts.block_size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let contents = self.data.finish();
        self.pending = Some(self.write_block(&contents)?);
        Ok(())
    }

    fn write_block(&mut self, contents: &[u8]) -> io::Result<BlockHandle> {
        let handle = BlockHandle {
            offset: self.offset,
            size: contents.len() as u64,
        };
        let mut trailer = [0u8; BLOCK_TRAILER_LEN];
        let crc = coding::crc32c_extend(coding::crc32c(contents), &[0u8]);
        trailer[1..].copy_from_slice(&coding::mask(crc).to_le_bytes());
        self.out.write_all(contents)?;
        self.out.write_all(&trailer)?;
        self.offset += (contents.len() + BLOCK_TRAILER_LEN) as u64;
        Ok(handle)
    }

    /// Write the last data block, the metaindex and index blocks and the footer; return
    /// the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        let mut meta = BlockBuilder::new(self.opts.restart_interval);
        let meta_contents = meta.finish();
        let metaindex = self.write_block(&meta_contents)?;
        if let Some(handle) = self.pending.take() {
            let succ = short_successor(&self.last_key);
            let mut v = Vec::new();
            handle.encode(&mut v);
            self.index.add(&succ, &v);
        }
        let index_contents = self.index.finish();
        let index = self.write_block(&index_contents)?;
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        metaindex.encode(&mut footer);
        index.encode(&mut footer);
        footer.resize(40, 0);
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        self.out.write_all(&footer)?;
        Ok(self.out)
    }
}

/// LevelDB's `BytewiseComparator::FindShortestSeparator`: a short key in `[start, limit)`.
pub fn shortest_separator(start: &[u8], limit: &[u8]) -> Vec<u8> {
    let min = start.len().min(limit.len());
    let diff = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    let mut out = start.to_vec();
    if diff < min {
        let b = start[diff];
        if b < 0xff && b + 1 < limit[diff] {
            out[diff] = b + 1;
            out.truncate(diff + 1);
        }
    }
    out
}

/// LevelDB's `BytewiseComparator::FindShortSuccessor`: a short key ≥ `key`.
pub fn short_successor(key: &[u8]) -> Vec<u8> {
    match key.iter().position(|&b| b != 0xff) {
        Some(i) => {
            let mut out = key[..=i].to_vec();
            out[i] += 1;
            out
        }
        None => key.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    fn build(entries: &[(Vec<u8>, Vec<u8>)], opts: TableOptions) -> Vec<u8> {
        let mut b = TableBuilder::new(Vec::new(), opts);
        for (k, v) in entries {
            b.add(k, v).unwrap();
        }
        b.finish().unwrap()
    }

    #[test]
    fn separators_follow_leveldb() {
        assert_eq!(shortest_separator(b"abc", b"abe"), b"abd");
        assert_eq!(shortest_separator(b"abc", b"abd"), b"abc");
        assert_eq!(shortest_separator(b"ab", b"abc"), b"ab");
        assert_eq!(shortest_separator(b"a\xff", b"b"), b"a\xff");
        assert_eq!(short_successor(b"abc"), b"b");
        assert_eq!(short_successor(b"\xff\xffa"), b"\xff\xffb");
        assert_eq!(short_successor(b"\xff\xff"), b"\xff\xff");
        assert_eq!(short_successor(b""), b"");
    }

    #[test]
    fn empty_table_round_trips() {
        let bytes = build(&[], TableOptions::default());
        assert_eq!(Table::parse(&bytes).unwrap().entries, vec![]);
    }

    #[test]
    fn rejects_unsorted_keys_when_building() {
        let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
        b.add(b"b", b"").unwrap();
        assert!(b.add(b"a", b"").is_err());
        assert!(b.add(b"b", b"").is_err());
    }

    #[test]
    fn detects_bad_inputs() {
        let entries: Vec<_> = (0..100u32)
            .map(|i| (format!("key{i:04}").into_bytes(), vec![i as u8; 10]))
            .collect();
        let good = build(
            &entries,
            TableOptions {
                block_size: 256,
                restart_interval: 4,
            },
        );
        assert_eq!(Table::parse(&good).unwrap().entries, entries);
        assert!(Table::parse(&[]).unwrap_err().0.contains("empty"));
        assert!(Table::parse(&good[..good.len() - 1])
            .unwrap_err()
            .0
            .contains("magic"));
        assert!(Table::parse(&good[..30]).unwrap_err().0.contains("shorter"));
        let mut flipped = good.clone();
        flipped[20] ^= 1;
        assert!(Table::parse(&flipped).unwrap_err().0.contains("checksum"));
    }

    #[test]
    fn reads_snappy_blocks() {
        // Build a table by hand whose single data block is snappy-compressed.
        let mut block = BlockBuilder::new(16);
        block.add(b"", b"header");
        block.add(b"a", &[7u8; 100]);
        let raw = block.finish();
        let compressed = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let mut file = compressed.clone();
        file.push(1);
        let crc = coding::crc32c(&file);
        file.extend_from_slice(&coding::mask(crc).to_le_bytes());
        let data_handle = BlockHandle {
            offset: 0,
            size: compressed.len() as u64,
        };
        let mut rest = TableBuilder::new(Vec::new(), TableOptions::default());
        rest.offset = file.len() as u64;
        rest.pending = Some(data_handle);
        rest.last_key = b"a".to_vec();
        rest.entries = 2;
        let tail = rest.finish().unwrap();
        file.extend_from_slice(&tail);
        let t = Table::parse(&file).unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[1].1, vec![7u8; 100]);
        let index = TableIndex::open(&file).unwrap();
        let got = index.get(&file, b"a").unwrap().unwrap();
        assert!(matches!(got, Cow::Owned(_)));
        assert_eq!(got.as_ref(), &[7u8; 100]);
        assert_eq!(index.first(&file).unwrap().unwrap().1.as_ref(), b"header");
    }

    proptest! {
        #[test]
        fn builder_reader_round_trip(
            map in btree_map(vec(any::<u8>(), 0..24), vec(any::<u8>(), 0..64), 0..200),
            block_size in 1usize..2048,
            restart_interval in 1usize..20,
        ) {
            let entries: Vec<_> = map.into_iter().collect();
            let bytes = build(&entries, TableOptions { block_size, restart_interval });
            prop_assert_eq!(Table::parse(&bytes).unwrap().entries, entries.clone());
            // Lookups find every key, borrowing its value, and nothing else.
            let index = TableIndex::open(&bytes).unwrap();
            for (k, v) in &entries {
                let got = index.get(&bytes, k).unwrap();
                let Some(Cow::Borrowed(got)) = got else {
                    return Err(TestCaseError::fail(format!("{k:?}: not borrowed")));
                };
                prop_assert_eq!(got, v.as_slice());
                let mut absent = k.clone();
                absent.push(0);
                if !entries.iter().any(|(e, _)| e == &absent) {
                    prop_assert_eq!(index.get(&bytes, &absent).unwrap(), None);
                }
            }
            let first = index.first(&bytes).unwrap().map(|(k, v)| (k, v.into_owned()));
            prop_assert_eq!(first, entries.first().cloned());
        }

        #[test]
        fn lookups_never_panic(bytes in vec(any::<u8>(), 0..512), key in vec(any::<u8>(), 0..8)) {
            if let Ok(index) = TableIndex::open(&bytes) {
                let _ = index.get(&bytes, &key);
                let _ = index.first(&bytes);
            }
        }

        #[test]
        fn parser_never_panics(bytes in vec(any::<u8>(), 0..512)) {
            let _ = Table::parse(&bytes);
        }

        #[test]
        fn parser_survives_flips(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let entries: Vec<_> = (0..40u32)
                .map(|i| (format!("k{i:03}").into_bytes(), vec![i as u8; 5]))
                .collect();
            let mut bytes = build(&entries, TableOptions { block_size: 64, restart_interval: 3 });
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let _ = Table::parse(&bytes);
        }
    }
}
