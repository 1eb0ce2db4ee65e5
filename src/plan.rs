//! What a conversion will write: which source tensor goes where, under which name.

/// One tensor to write: the index of a source tensor and its name in the output (a
/// checkpoint key, an HDF5 path, a safetensors name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub index: usize,
    pub name: String,
}

/// A tensor the output format cannot hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub struct Skipped {
    /// The tensor's name in the source.
    pub name: String,
    /// Why it was not written.
    pub reason: String,
}

/// Names that appear more than once, with the source keys that produced them.
pub fn duplicates<'a>(plan: &'a [Planned], keys: impl Fn(usize) -> &'a str) -> Option<String> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in plan {
        if let Some(&first) = seen.get(p.name.as_str()) {
            return Some(format!(
                "two tensors would both be written as {:?} (from {:?} and {:?})",
                p.name,
                keys(first),
                keys(p.index)
            ));
        }
        seen.insert(&p.name, p.index);
    }
    None
}
