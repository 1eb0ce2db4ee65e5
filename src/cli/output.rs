//! Output helpers: aligned tables and number formatting.

use std::fmt::Write as _;

/// Right-align this column (numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Render rows as a table with a header, columns separated by two spaces.
pub fn table(header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let ncol = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(ncol) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().take(ncol) {
            let pad = width[i] - c.chars().count();
            let last = i + 1 == ncol;
            if i > 0 {
                s.push_str("  ");
            }
            match align[i] {
                Align::Right => {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                }
                Align::Left => {
                    s.push_str(c);
                    if !last {
                        s.push_str(&" ".repeat(pad));
                    }
                }
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        line(r);
    }
    out
}

/// `1234567` → `1,234,567` (Keras' style).
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in binary units: `9.89 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", UNITS[u])
}

/// `[3, 4]`, `[]` for a scalar.
pub fn shape(dims: &[u64]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(2533), "2,533");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(10132), "9.89 KiB");
        assert_eq!(shape(&[]), "[]");
        assert_eq!(shape(&[3, 4]), "[3, 4]");
        let t = table(
            &["A", "BB"],
            &[Align::Left, Align::Right],
            &[vec!["xyz".into(), "1".into()]],
        );
        assert_eq!(t, "A    BB\nxyz   1\n");
    }
}
