//! The `--json` envelope every command shares (docs/json.md).
//!
//! Every object a command prints under `--json` carries the envelope keys `command`,
//! `input`, `ok` and `error` (`null`, or `{"kind", "message"}`), then the command's own
//! keys, listed once per command in a [`Schema`]. A key the command could not learn (the
//! input failed to open) is still there: `null`, or `[]` for a list. This module is the
//! one place that builds that object, names error kinds and prints it.

use std::io::Write as _;

use serde_json::{json, Map, Value};

use crate::error::{chain, Error, InputErrorKind};

/// What a command's own key holds when the command failed before learning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// `null`
    Null,
    /// `[]` (the key is a list)
    List,
}

/// How a command prints its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// One indented document (one object per run).
    Pretty,
    /// One compact object per line (JSON Lines).
    Line,
}

/// One command's `--json` output: its name, its own keys (after the envelope), and how
/// it prints.
#[derive(Debug)]
pub(crate) struct Schema {
    pub command: &'static str,
    pub keys: &'static [(&'static str, Unknown)],
    pub style: Style,
}

/// The error kind for `e`: one word per [`Error`] variant, and per [`InputErrorKind`] for
/// input errors (docs/json.md).
pub(crate) fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Input { kind, .. } => match kind {
            InputErrorKind::Malformed => "corrupt",
            InputErrorKind::Checksum => "checksum",
            InputErrorKind::Truncated => "truncated",
            InputErrorKind::NotFound => "not_found",
        },
        Error::Unsupported { .. } => "unsupported",
        Error::Limit { .. } => "limit",
        Error::Io { .. } => "io",
        Error::Usage(_) => "usage",
        Error::Exists(_) => "exists",
        Error::Interrupted => "interrupted",
    }
}

/// `{"kind", "message"}` for `e`; the message is the line the command prints on stderr.
pub(crate) fn error_json(e: &Error) -> Value {
    json!({"kind": error_kind(e), "message": chain(e)})
}

impl Schema {
    /// The object for `input`: the envelope, then every key of the schema, from `known`
    /// (an object) where it has the key, else the key's unknown value (a skipped
    /// conversion knows little more than a failed one). `ok` is whether there is no
    /// `error`. `known` may hold no key the schema lacks.
    pub(crate) fn object(&self, input: &str, known: Value, error: Option<&Error>) -> Value {
        let error = error.map(error_json);
        self.object_with(input, known, error)
    }

    /// [`Schema::object`] with the `error` value already built (`verify`'s first problem).
    pub(crate) fn object_with(&self, input: &str, known: Value, error: Option<Value>) -> Value {
        let mut known = match known {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => panic!(
                "{}: known keys must be an object, not {other}",
                self.command
            ),
        };
        let mut o = Map::new();
        o.insert("command".into(), json!(self.command));
        o.insert("input".into(), json!(input));
        o.insert("ok".into(), json!(error.is_none()));
        for (key, unknown) in self.keys {
            let v = known.remove(*key).unwrap_or(match unknown {
                Unknown::Null => Value::Null,
                Unknown::List => json!([]),
            });
            o.insert((*key).into(), v);
        }
        debug_assert!(
            known.is_empty(),
            "{}: keys not in the schema: {:?}",
            self.command,
            known.keys().collect::<Vec<_>>()
        );
        o.insert("error".into(), error.unwrap_or(Value::Null));
        Value::Object(o)
    }

    /// The object as this command prints it (without the final newline).
    pub(crate) fn render(&self, v: &Value) -> String {
        match self.style {
            Style::Pretty => serde_json::to_string_pretty(v),
            Style::Line => serde_json::to_string(v),
        }
        .expect("JSON of plain values")
    }

    /// Print `v` on stdout.
    pub(crate) fn print(&self, v: &Value) -> crate::error::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", self.render(v)).map_err(|e| Error::io("stdout", "write", e))
    }

    /// A failed input: print its object (what is `known` filled in) on stdout and the
    /// usual `ckptconv: error:` line on stderr.
    pub(crate) fn print_failure(&self, input: &str, known: Value, e: &Error) {
        // A closed stdout must not hide the error: stderr still says it.
        let _ = self.print(&self.object(input, known, Some(e)));
        eprintln!("ckptconv: error: {}", crate::error::chain(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Schema = Schema {
        command: "t",
        keys: &[("a", Unknown::Null), ("b", Unknown::List)],
        style: Style::Line,
    };

    #[test]
    fn same_keys_on_success_and_failure() {
        let ok = S.object("x", json!({"a": 1, "b": [2]}), None);
        let e = Error::not_found("x", "nothing here");
        let failed = S.object("x", Value::Null, Some(&e));
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ok), keys(&failed));
        assert_eq!(ok["ok"], true);
        assert_eq!(ok["error"], Value::Null);
        assert_eq!(failed["ok"], false);
        assert_eq!(failed["a"], Value::Null);
        assert_eq!(failed["b"], json!([]));
        assert_eq!(
            failed["error"],
            json!({"kind": "not_found", "message": "x: nothing here"})
        );
    }

    /// Every kind [`error_kind`] gives is in docs/json.md's table.
    #[test]
    fn every_kind_is_documented() {
        let doc = include_str!("../../docs/json.md");
        let io = || std::io::Error::other("x");
        for e in [
            Error::corrupt("p", "x"),
            Error::unsupported("p", "x"),
            Error::not_found("p", "x"),
            Error::io("p", "open", io()),
            Error::Usage("x".into()),
            Error::Exists("p".into()),
            Error::Interrupted,
        ] {
            let kind = error_kind(&e);
            assert!(doc.contains(&format!("| `{kind}` |")), "{kind}");
        }
    }
}
