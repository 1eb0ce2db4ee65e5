//! Bundles built by hand with our table builder: big-endian data, and header and entry
//! fields no honest writer produces. Each must be read correctly or refused with one line
//! naming the file and the field — never a panic or a huge allocation.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use ckptconv::formats::tf::coding::{crc32c, mask};
use ckptconv::formats::tf::table::{TableBuilder, TableOptions};
use ckptconv::pb::{
    tensor_shape_proto::Dim, BundleEntryProto, BundleHeaderProto, TensorShapeProto, VersionDef,
};
use ckptconv::{formats, TensorData};
use prost::Message;

fn header(num_shards: i32, endianness: i32) -> BundleHeaderProto {
    BundleHeaderProto {
        num_shards,
        endianness,
        version: Some(VersionDef {
            producer: 1,
            min_consumer: 0,
            bad_consumers: vec![],
        }),
        ckptconv_layers: String::new(),
    }
}

fn entry(dtype: i32, dims: &[i64], offset: i64, data: &[u8]) -> BundleEntryProto {
    BundleEntryProto {
        dtype,
        shape: Some(TensorShapeProto {
            dim: dims
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }),
        shard_id: 0,
        offset,
        size: data.len() as i64,
        crc32c: mask(crc32c(data)),
        slices: vec![],
    }
}

/// Write PREFIX.index with `entries` (header first) and PREFIX.data-00000-of-00001.
fn write_bundle(
    dir: &Path,
    hdr: Option<BundleHeaderProto>,
    entries: &[(&str, BundleEntryProto)],
    data: &[u8],
) -> PathBuf {
    let prefix = dir.join("ck");
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
    if let Some(h) = hdr {
        b.add(b"", &h.encode_to_vec()).unwrap();
    }
    for (k, e) in entries {
        b.add(k.as_bytes(), &e.encode_to_vec()).unwrap();
    }
    fs::write(dir.join("ck.index"), b.finish().unwrap()).unwrap();
    fs::write(dir.join("ck.data-00000-of-00001"), data).unwrap();
    prefix
}

fn open_err(prefix: &Path) -> String {
    match formats::open(prefix) {
        Ok(src) => {
            let errs = src.verify();
            assert!(!errs.is_empty(), "expected a problem");
            errs[0].to_string()
        }
        Err(e) => e.to_string(),
    }
}

#[test]
fn big_endian_numeric_data_is_byte_swapped() {
    let t = tempfile::tempdir().unwrap();
    let vals = [1.5f32, -2.25, 3.0];
    let be: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    let c: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut data = be.clone();
    data.extend_from_slice(&c);
    let prefix = write_bundle(
        t.path(),
        Some(header(1, 1)),
        &[("a", entry(1, &[3], 0, &be)), ("c", entry(8, &[1], 12, &c))],
        &data,
    );
    let src = formats::open(&prefix).unwrap();
    let le: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(src.read(0).unwrap(), TensorData::Bytes(le.into()));
    // complex64: each half swapped on its own.
    let cle: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(src.read(1).unwrap(), TensorData::Bytes(cle.into()));
}

#[test]
fn hostile_fields_are_refused_with_the_field_named() {
    let cases: Vec<(&str, Option<BundleHeaderProto>, BundleEntryProto, &str)> = vec![
        (
            "no header",
            None,
            entry(1, &[1], 0, &[0; 4]),
            "missing bundle header",
        ),
        (
            "zero shards",
            Some(header(0, 0)),
            entry(1, &[1], 0, &[0; 4]),
            "num_shards 0",
        ),
        (
            "a million shards",
            Some(header(1_000_000, 0)),
            entry(1, &[1], 0, &[0; 4]),
            "num_shards 1000000",
        ),
        (
            "bad endianness",
            Some(header(1, 7)),
            entry(1, &[1], 0, &[0; 4]),
            "endianness",
        ),
        (
            "negative dim",
            Some(header(1, 0)),
            entry(1, &[-3], 0, &[0; 4]),
            "negative",
        ),
        (
            "overflowing shape",
            Some(header(1, 0)),
            entry(1, &[1 << 40, 1 << 40], 0, &[0; 4]),
            "too many elements",
        ),
        (
            "unknown dtype",
            Some(header(1, 0)),
            entry(777, &[1], 0, &[0; 4]),
            "unknown dtype 777",
        ),
        (
            "resource dtype",
            Some(header(1, 0)),
            entry(20, &[1], 0, &[0; 4]),
            "unsupported: dtype resource",
        ),
        (
            "size vs shape",
            Some(header(1, 0)),
            entry(1, &[2], 0, &[0; 4]),
            "does not match the shape",
        ),
        (
            "shard id",
            Some(header(1, 0)),
            BundleEntryProto {
                shard_id: 5,
                ..entry(1, &[1], 0, &[0; 4])
            },
            "shard_id 5",
        ),
        (
            "negative offset",
            Some(header(1, 0)),
            entry(1, &[1], -4, &[0; 4]),
            "offset -4",
        ),
        (
            "past the shard",
            Some(header(1, 0)),
            entry(1, &[1], 1 << 62, &[0; 4]),
            "past the end of the data file",
        ),
        (
            "2^62 strings",
            Some(header(1, 0)),
            entry(7, &[1 << 62], 0, &[0; 8]),
            "too small",
        ),
        (
            "bad crc",
            Some(header(1, 0)),
            BundleEntryProto {
                crc32c: 1,
                ..entry(1, &[1], 0, &[0; 4])
            },
            "checksum mismatch",
        ),
        (
            "newer format",
            Some(BundleHeaderProto {
                version: Some(VersionDef {
                    producer: 9,
                    min_consumer: 5,
                    bad_consumers: vec![],
                }),
                ..header(1, 0)
            }),
            entry(1, &[1], 0, &[0; 4]),
            "version",
        ),
    ];
    for (what, hdr, e, needle) in cases {
        let t = tempfile::tempdir().unwrap();
        let prefix = write_bundle(t.path(), hdr, &[("v", e)], &[0u8; 16]);
        let msg = open_err(&prefix);
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
        assert!(msg.contains("ck."), "{what}: {msg:?} names no file");
        assert!(!msg.contains('\n'), "{what}: one line");
    }
}

#[test]
fn partition_slices_must_fit() {
    use ckptconv::formats::tf::slice::{encode_slice_key, Extent};
    use ckptconv::pb::{
        tensor_slice_proto::{extent::HasLength, Extent as PExtent},
        TensorSliceProto,
    };
    let t = tempfile::tempdir().unwrap();
    let data = [7u8; 8];
    // A [4] float32 variable whose only slice claims [2, 4) — half the tensor is missing.
    let full = BundleEntryProto {
        slices: vec![TensorSliceProto {
            extent: vec![PExtent {
                start: 2,
                has_length: Some(HasLength::Length(2)),
            }],
        }],
        ..entry(1, &[4], 0, &[])
    };
    let key = encode_slice_key(
        b"v",
        &[Extent {
            start: 2,
            length: 2,
        }],
    );
    let slice = entry(1, &[2], 0, &data);
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
    b.add(b"", &header(1, 0).encode_to_vec()).unwrap();
    b.add(&key, &slice.encode_to_vec()).unwrap();
    b.add(b"v", &full.encode_to_vec()).unwrap();
    fs::write(t.path().join("ck.index"), b.finish().unwrap()).unwrap();
    fs::write(t.path().join("ck.data-00000-of-00001"), data).unwrap();
    let msg = open_err(&t.path().join("ck"));
    assert!(msg.contains("slices hold 2 elements"), "{msg}");
}

/// A partitioned variable's slices, written sorted by key as TensorFlow's table requires.
fn partitioned(dir: &Path, dtype: i32, dims: &[i64], slices: &[(i64, i64)], data: &[u8]) {
    use ckptconv::formats::tf::slice::{encode_slice_key, Extent};
    use ckptconv::pb::{
        tensor_slice_proto::{extent::HasLength, Extent as PExtent},
        TensorSliceProto,
    };
    let full = BundleEntryProto {
        slices: slices
            .iter()
            .map(|&(start, len)| TensorSliceProto {
                extent: vec![PExtent {
                    start,
                    has_length: Some(HasLength::Length(len)),
                }],
            })
            .collect(),
        ..entry(dtype, dims, 0, &[])
    };
    let esize = if dtype == 4 { 1 } else { 4 };
    let mut rows = std::collections::BTreeMap::new();
    let mut offset = 0i64;
    for &(start, length) in slices {
        let key = encode_slice_key(b"v", &[Extent { start, length }]);
        let bytes = (length * esize) as usize;
        let part =
            &data[(offset as usize).min(data.len())..((offset as usize) + bytes).min(data.len())];
        let mut e = entry(dtype, &[length], offset, part);
        e.size = length * esize;
        rows.insert(key, e);
        offset += length * esize;
    }
    rows.insert(b"v".to_vec(), full);
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
    b.add(b"", &header(1, 0).encode_to_vec()).unwrap();
    for (k, e) in rows {
        b.add(&k, &e.encode_to_vec()).unwrap();
    }
    fs::write(dir.join("ck.index"), b.finish().unwrap()).unwrap();
    fs::write(dir.join("ck.data-00000-of-00001"), data).unwrap();
}

#[test]
fn partition_slices_must_not_overlap() {
    // [0, 3) and [1, 2) of a [4]: four elements in all, but element 1 twice and 3 never.
    let t = tempfile::tempdir().unwrap();
    partitioned(t.path(), 1, &[4], &[(0, 3), (1, 1)], &[1u8; 16]);
    let msg = open_err(&t.path().join("ck"));
    assert!(msg.contains("overlap"), "{msg}");
    let o = common::ckptconv([Path::new("verify"), &t.path().join("ck")]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_huge_partitioned_tensor_with_no_data_is_an_error_not_an_abort() {
    // A uint8 [2^42] (4 TiB) in one slice that a 16-byte data file cannot hold.
    let t = tempfile::tempdir().unwrap();
    partitioned(t.path(), 4, &[1 << 42], &[(0, 1 << 42)], &[9u8; 16]);
    let outdir = t.path().join("out");
    fs::create_dir(&outdir).unwrap();
    for args in [
        vec!["verify".into(), t.path().join("ck")],
        vec![
            "convert".into(),
            t.path().join("ck"),
            "-o".into(),
            outdir.join("x.safetensors"),
        ],
    ] {
        let o = common::ckptconv(&args);
        assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
        assert!(!common::stderr(&o).contains("panicked"));
    }
    assert_eq!(fs::read_dir(&outdir).unwrap().count(), 0);
}

#[test]
fn an_empty_slice_along_an_outer_dimension_is_read_not_a_panic() {
    // A float32 [2, 3] stored as [0:2, :] and the empty [2:0, :]. Reassembly once copied an
    // inner row from the empty slice's (absent) bytes and panicked.
    use ckptconv::formats::tf::slice::{encode_slice_key, Extent};
    use ckptconv::pb::{
        tensor_slice_proto::{extent::HasLength, Extent as PExtent},
        TensorSliceProto,
    };
    let t = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..24).collect();
    let rows = |start: i64, len: i64| {
        (
            TensorSliceProto {
                extent: vec![
                    PExtent {
                        start,
                        has_length: Some(HasLength::Length(len)),
                    },
                    PExtent {
                        start: 0,
                        has_length: None,
                    },
                ],
            },
            vec![
                Extent { start, length: len },
                Extent {
                    start: 0,
                    length: -1,
                },
            ],
        )
    };
    let (full_p, full_e) = rows(0, 2);
    let (empty_p, empty_e) = rows(2, 0);
    let var = BundleEntryProto {
        slices: vec![full_p, empty_p],
        ..entry(1, &[2, 3], 0, &[])
    };
    let mut keyed = std::collections::BTreeMap::new();
    keyed.insert(encode_slice_key(b"v", &full_e), entry(1, &[2, 3], 0, &data));
    keyed.insert(encode_slice_key(b"v", &empty_e), entry(1, &[0, 3], 24, &[]));
    keyed.insert(b"v".to_vec(), var);
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
    b.add(b"", &header(1, 0).encode_to_vec()).unwrap();
    for (k, e) in keyed {
        b.add(&k, &e.encode_to_vec()).unwrap();
    }
    fs::write(t.path().join("ck.index"), b.finish().unwrap()).unwrap();
    fs::write(t.path().join("ck.data-00000-of-00001"), &data).unwrap();
    let src = formats::open(&t.path().join("ck")).unwrap();
    match src.read(0).unwrap() {
        TensorData::Bytes(b) => assert_eq!(b.as_ref(), data.as_slice()),
        other => panic!("{other:?}"),
    }
}
