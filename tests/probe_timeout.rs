//! A file that makes libhdf5 hang is given up on: the probe process has a deadline.
//! (Its own test binary: the probe executable is a process-wide setting.)

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_probe_that_never_finishes_is_killed_and_reported() {
    let t = tempfile::tempdir().unwrap();
    // A stand-in for `ckptconv __h5probe FILE` that hangs like libhdf5 on a bad file.
    let probe = t.path().join("hang.sh");
    let mut f = std::fs::File::create(&probe).unwrap();
    f.write_all(b"#!/bin/sh\nexec sleep 30\n").unwrap();
    drop(f);
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var("CKPTCONV_H5_PROBE_SECONDS", "1");
    ckptconv::formats::h5::set_isolation(probe);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keras2/weights.h5");
    let start = std::time::Instant::now();
    let e = ckptconv::formats::h5::H5Source::open(&file).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    let msg = e.to_string();
    assert!(msg.contains("did not finish reading it in 1 s"), "{msg}");
    assert!(msg.contains("weights.h5"), "{msg}");
}
