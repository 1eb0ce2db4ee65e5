//! Writes a synthetic safetensors file for benchmarks: `synth OUT TOTAL_BYTES N_TENSORS`.
//!
//! float32 tensors of mixed sizes (a repeating spread from 1× to 40× the smallest) adding
//! up to about TOTAL_BYTES, filled with a fast pseudo-random sequence. `scripts/bench.sh`
//! converts it with ckptconv into the checkpoints it measures, so no Python is needed.

use std::io::{BufWriter, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: synth OUT TOTAL_BYTES N_TENSORS");
        std::process::exit(2);
    }
    let out = &args[1];
    let total: u64 = args[2].parse().expect("TOTAL_BYTES");
    let n: u64 = args[3].parse().expect("N_TENSORS");
    let weights: Vec<u64> = (0..n).map(|i| 1 + (i * 7919) % 40).collect();
    let wsum: u64 = weights.iter().sum();
    let mut header = String::from("{");
    let mut offset = 0u64;
    let mut sizes = Vec::new();
    for (i, w) in weights.iter().enumerate() {
        let elems = (total / 4 * w / wsum).max(1);
        let bytes = elems * 4;
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"layer_{:03}/dense/kernel\":{{\"dtype\":\"F32\",\"shape\":[{elems}],\"data_offsets\":[{offset},{}]}}",
            i,
            offset + bytes
        ));
        offset += bytes;
        sizes.push(bytes);
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut f = BufWriter::with_capacity(8 << 20, std::fs::File::create(out).expect("create"));
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for bytes in sizes {
        let mut left = bytes as usize;
        while left > 0 {
            let k = left.min(buf.len());
            for c in buf[..k].chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let b = state.to_le_bytes();
                c.copy_from_slice(&b[..c.len()]);
            }
            f.write_all(&buf[..k]).unwrap();
            left -= k;
        }
    }
    f.flush().unwrap();
}
