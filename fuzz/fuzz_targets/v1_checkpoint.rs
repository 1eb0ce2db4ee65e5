//! V1 checkpoints (TensorFlow's tensor-slice tables): arbitrary bytes as one V1 file, opened
//! from memory — the table's footer and index, the `""` meta, tensor registration and
//! slice geometry — then every tensor read (table lookups, TensorProto decoding, the
//! count checks, reassembly of sliced tensors) and the whole table walked as `verify`
//! walks it.
//!
//! Every block of a table carries a crc32c, so most mutations of a real file only reach
//! the checksum test. An input starting with byte 01 is therefore the rest of the input
//! with every block checksum the footer and index lead to recomputed first: mutations of
//! the meta and of slice values then reach the code that decodes them. Any other input is
//! used as it is (a V1 file starts with 00).
#![no_main]
use ckptconv::formats::tf::coding::{crc32c, get_varint64, mask};
use ckptconv::tensor::TensorSource;
use libfuzzer_sys::fuzz_target;

const FOOTER: usize = 48;

/// Store the right checksum in the trailer of the block at `off` of `size` bytes, if it
/// lies before the footer.
fn fix_block(t: &mut [u8], off: u64, size: u64) {
    let (Ok(off), Ok(size)) = (usize::try_from(off), usize::try_from(size)) else {
        return;
    };
    let Some(end) = off.checked_add(size).and_then(|e| e.checked_add(5)) else {
        return;
    };
    if end > t.len() - FOOTER {
        return;
    }
    let crc = mask(crc32c(&t[off..end - 4]));
    t[end - 4..end].copy_from_slice(&crc.to_le_bytes());
}

fn varints(buf: &[u8], n: usize) -> Option<(Vec<u64>, usize)> {
    let mut at = 0;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (v, k) = get_varint64(buf.get(at..)?).ok()?;
        out.push(v);
        at += k;
    }
    Some((out, at))
}

/// Recompute the checksums of the metaindex, index and every data block the index names.
fn repair(t: &mut [u8]) {
    if t.len() < FOOTER {
        return;
    }
    let footer = t.len() - FOOTER;
    let Some((h, _)) = varints(&t[footer..footer + 40], 4) else {
        return;
    };
    let (idx_off, idx_size) = (h[2] as usize, h[3] as usize);
    fix_block(t, h[0], h[1]);
    let Some(idx_end) = idx_off.checked_add(idx_size).filter(|&e| e <= footer) else {
        return;
    };
    // The index block's entries: shared, unshared, value length, key delta, handle.
    let block = t[idx_off..idx_end].to_vec();
    if block.len() < 4 {
        return;
    }
    let restarts = u32::from_le_bytes(block[block.len() - 4..].try_into().unwrap()) as usize;
    let Some(entries_end) = restarts
        .checked_mul(4)
        .and_then(|r| block.len().checked_sub(r + 4))
    else {
        return;
    };
    let mut at = 0;
    let mut handles = Vec::new();
    while at < entries_end {
        let Some((e, k)) = varints(&block[at..entries_end], 3) else {
            break;
        };
        let value = at.saturating_add(k).saturating_add(e[1] as usize);
        let Some(v) = block.get(value..entries_end) else {
            break;
        };
        if let Some((handle, _)) = varints(v, 2) {
            handles.push((handle[0], handle[1]));
        }
        at = value.saturating_add(e[2] as usize);
    }
    for (off, size) in handles {
        fix_block(t, off, size);
    }
    fix_block(t, idx_off as u64, idx_size as u64);
}

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((1, rest)) => {
            let mut t = rest.to_vec();
            repair(&mut t);
            t
        }
        _ => data.to_vec(),
    };
    let path = std::path::Path::new("fuzz.ckpt");
    if let Ok(c) = ckptconv::formats::tf::v1::V1Checkpoint::from_bytes(path, bytes.clone()) {
        for i in 0..c.tensors().len() {
            let _ = c.read(i);
            let _ = c.stored_at(i);
        }
        let _ = ckptconv::formats::tf::table::walk(&bytes, |_, _| Ok(()));
    }
});
