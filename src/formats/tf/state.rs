//! The `checkpoint` state file that `tf.train.Saver`, `tf.train.CheckpointManager` and
//! Keras write beside their checkpoints.
//!
//! It is a `CheckpointState` message (`tensorflow/python/training/checkpoint_state.proto`)
//! in protobuf *text* format (`tensorflow/python/checkpoint/checkpoint_management.py`):
//!
//! ```text
//! model_checkpoint_path: "ckpt-2"
//! all_model_checkpoint_paths: "ckpt-1"
//! all_model_checkpoint_paths: "ckpt-2"
//! all_model_checkpoint_timestamps: 1795300759.15
//! last_preserved_timestamp: 1795300758.14
//! ```
//!
//! Paths may be relative to the directory holding the file. Only the two path fields
//! matter to us; other fields are skipped. Strings use C escapes (`\"`, `\\`, `\n`,
//! octal `\123`, hex `\x41`), which we decode.

/// The parts of a `CheckpointState` that locate checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointState {
    pub model_checkpoint_path: String,
    pub all_model_checkpoint_paths: Vec<String>,
}

impl CheckpointState {
    /// The text format, as TensorFlow writes it ([`parse_checkpoint_state`] reads it back).
    pub fn to_text(&self) -> String {
        let quote = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let mut text = format!(
            "model_checkpoint_path: \"{}\"\n",
            quote(&self.model_checkpoint_path)
        );
        for p in &self.all_model_checkpoint_paths {
            text.push_str(&format!("all_model_checkpoint_paths: \"{}\"\n", quote(p)));
        }
        text
    }
}

/// Parse the text format. Errors say what was unexpected, without the file name.
pub fn parse_checkpoint_state(text: &str) -> Result<CheckpointState, String> {
    let mut state = CheckpointState::default();
    let b = text.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() {
            if b[*i].is_ascii_whitespace() {
                *i += 1;
            } else if b[*i] == b'#' {
                while *i < b.len() && b[*i] != b'\n' {
                    *i += 1;
                }
            } else {
                break;
            }
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "unexpected character {:?} at byte {i}",
                b[i] as char
            ));
        }
        let field = &text[start..i];
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b':' {
            return Err(format!("expected ':' after field {field:?}"));
        }
        i += 1;
        skip_ws(&mut i);
        if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
            let (value, next) = parse_quoted(b, i)?;
            i = next;
            match field {
                "model_checkpoint_path" => state.model_checkpoint_path = value,
                "all_model_checkpoint_paths" => state.all_model_checkpoint_paths.push(value),
                _ => {}
            }
        } else {
            // A scalar (number, enum): skip to the end of the token.
            let vstart = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            if vstart == i {
                return Err(format!("missing value for field {field:?}"));
            }
        }
    }
    Ok(state)
}

fn parse_quoted(b: &[u8], mut i: usize) -> Result<(String, usize), String> {
    let quote = b[i];
    i += 1;
    let mut out: Vec<u8> = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c == quote {
            let s = String::from_utf8(out).map_err(|_| "path is not UTF-8".to_string())?;
            return Ok((s, i + 1));
        }
        if c == b'\n' {
            break;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1).ok_or("unterminated escape")?;
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v: u32 = u32::from(e - b'0');
                for _ in 0..2 {
                    match b.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 2 {
                    match b.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    return Err("\\x without hex digits".into());
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Err("unterminated string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let st = CheckpointState {
            model_checkpoint_path: "a \"b\"\\c\nd".into(),
            all_model_checkpoint_paths: vec!["x".into(), "a \"b\"\\c\nd".into()],
        };
        assert_eq!(parse_checkpoint_state(&st.to_text()).unwrap(), st);
        assert_eq!(
            CheckpointState {
                model_checkpoint_path: "m".into(),
                all_model_checkpoint_paths: vec!["m".into()],
            }
            .to_text(),
            "model_checkpoint_path: \"m\"\nall_model_checkpoint_paths: \"m\"\n"
        );
    }

    #[test]
    fn parses_what_tensorflow_writes() {
        let s = parse_checkpoint_state(
            "model_checkpoint_path: \"ckpt-2\"\nall_model_checkpoint_paths: \"ckpt-1\"\n\
             all_model_checkpoint_paths: \"ckpt-2\"\nall_model_checkpoint_timestamps: 1.5\n\
             last_preserved_timestamp: 1795300758.1435156\n",
        )
        .unwrap();
        assert_eq!(s.model_checkpoint_path, "ckpt-2");
        assert_eq!(s.all_model_checkpoint_paths, vec!["ckpt-1", "ckpt-2"]);
    }

    #[test]
    fn decodes_escapes_and_rejects_garbage() {
        let s =
            parse_checkpoint_state(r#"model_checkpoint_path: "/a b/\"q\"\\x\101\x42""#).unwrap();
        assert_eq!(s.model_checkpoint_path, "/a b/\"q\"\\xAB");
        assert!(parse_checkpoint_state("model_checkpoint_path \"x\"").is_err());
        assert!(parse_checkpoint_state("model_checkpoint_path: \"x").is_err());
        assert!(parse_checkpoint_state("\u{1}").is_err());
        assert_eq!(
            parse_checkpoint_state("").unwrap(),
            CheckpointState::default()
        );
    }
}
