//! Selecting and shaping tensors before they are written: `--include`, `--exclude`,
//! `--rename`, `--weights-only`, `--dtype`.
//!
//! A [`Transformed`] source wraps any source and presents the selected tensors under their
//! new names and dtypes; writers see an ordinary [`TensorSource`]. Filters and renames act
//! on canonical variable names (`dense/kernel`). Without a transform nothing changes and
//! conversions stay bit-exact; `--dtype` is the only way to change bytes.

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;

use crate::dtype::{Cast, DType};
use crate::error::{Error, Result};
use crate::naming::{self, Role};
use crate::tensor::{
    Crc32cCheck, Format, Layer, Pieces, TensorData, TensorInfo, TensorSource, PIECE,
};

/// What to select and how to shape it, built up from an empty (identity) transform:
///
/// ```
/// # fn main() -> ckptconv::Result<()> {
/// let t = ckptconv::Transform::default()
///     .include("encoder/**")?
///     .exclude("**/dropout*")?
///     .rename("^encoder/", "model/encoder/")?
///     .weights_only(true)
///     .cast(ckptconv::DType::Float16)?;
/// # let _ = t;
/// # Ok(())
/// # }
/// ```
///
/// Patterns match canonical variable names (`dense/kernel`); renames apply in the order
/// given; a cast applies to floating-point tensors only.
#[derive(Debug, Clone, Default)]
pub struct Transform {
    include: Patterns,
    exclude: Patterns,
    renames: Vec<(Regex, String)>,
    weights_only: bool,
    dtype: Option<DType>,
}

/// Glob patterns and the set they compile to.
#[derive(Debug, Clone, Default)]
struct Patterns {
    globs: Vec<Glob>,
    set: Option<GlobSet>,
}

impl Patterns {
    fn add(&mut self, pattern: &str, flag: &str) -> Result<()> {
        let g = Glob::new(pattern).map_err(|e| Error::Usage(format!("{flag} {pattern:?}: {e}")))?;
        self.globs.push(g);
        let mut b = GlobSetBuilder::new();
        for g in &self.globs {
            b.add(g.clone());
        }
        self.set = Some(
            b.build()
                .map_err(|e| Error::Usage(format!("{flag}: {e}")))?,
        );
        Ok(())
    }
}

impl Transform {
    /// Keep only tensors whose variable name matches the glob `pattern` (any of them,
    /// when called more than once).
    pub fn include(mut self, pattern: &str) -> Result<Transform> {
        self.include.add(pattern, "--include")?;
        Ok(self)
    }

    /// Drop tensors whose variable name matches the glob `pattern`.
    pub fn exclude(mut self, pattern: &str) -> Result<Transform> {
        self.exclude.add(pattern, "--exclude")?;
        Ok(self)
    }

    /// Rename tensors: every match of the regular expression `pattern` is replaced by
    /// `replacement` (`$1` names a group).
    pub fn rename(mut self, pattern: &str, replacement: &str) -> Result<Transform> {
        let re = Regex::new(pattern).map_err(|e| {
            Error::Usage(format!("--rename {pattern:?}: bad regex: {e}"))
        })?;
        self.renames.push((re, replacement.to_string()));
        Ok(self)
    }

    /// Keep model weights only: no optimizer slots, step counters or metrics.
    pub fn weights_only(mut self, yes: bool) -> Transform {
        self.weights_only = yes;
        self
    }

    /// Cast floating-point tensors to `to` (float16, bfloat16 or float32), rounding to
    /// nearest even; other tensors are copied as they are.
    pub fn cast(mut self, to: DType) -> Result<Transform> {
        if Cast::new(DType::Float32, to).is_none() {
            return Err(Error::Usage(format!(
                "--dtype {}: choose float16, bfloat16 or float32",
                to.name()
            )));
        }
        self.dtype = Some(to);
        Ok(self)
    }

    /// True when the transform changes nothing.
    pub fn is_identity(&self) -> bool {
        self.include.globs.is_empty()
            && self.exclude.globs.is_empty()
            && self.renames.is_empty()
            && !self.weights_only
            && self.dtype.is_none()
    }

    /// True when names change.
    pub fn renames(&self) -> bool {
        !self.renames.is_empty()
    }

    fn keeps(&self, t: &TensorInfo) -> bool {
        let role = naming::role(&t.name, &t.variable);
        if self.weights_only && matches!(role, Role::Optimizer | Role::Counter | Role::Metric) {
            return false;
        }
        if role == Role::Metadata {
            return true;
        }
        if let Some(inc) = &self.include.set {
            if !inc.is_match(&t.variable) {
                return false;
            }
        }
        if let Some(exc) = &self.exclude.set {
            if exc.is_match(&t.variable) {
                return false;
            }
        }
        true
    }

    fn renamed(&self, name: &str) -> String {
        let mut n = name.to_string();
        for (re, rep) in &self.renames {
            n = re.replace_all(&n, rep.as_str()).into_owned();
        }
        n
    }
}

/// A source seen through a [`Transform`].
pub struct Transformed<'a> {
    inner: &'a dyn TensorSource,
    map: Vec<usize>,
    infos: Vec<TensorInfo>,
    layers: Vec<Layer>,
    optimizer_order: Option<Vec<usize>>,
}

impl<'a> Transformed<'a> {
    pub fn new(inner: &'a dyn TensorSource, t: &Transform) -> Result<Transformed<'a>> {
        let mut map = Vec::new();
        let mut infos: Vec<TensorInfo> = Vec::new();
        let mut back = vec![usize::MAX; inner.tensors().len()];
        let mut seen: std::collections::HashMap<String, (String, bool)> =
            std::collections::HashMap::new();
        for (i, info) in inner.tensors().iter().enumerate() {
            if !t.keeps(info) {
                continue;
            }
            let mut n = info.clone();
            if naming::role(&info.name, &info.variable) != Role::Metadata {
                n.variable = t.renamed(&info.variable);
                if let Some(why) = crate::plan::unwritable(&n.variable) {
                    return Err(Error::Usage(format!(
                        "--rename turns {:?} into {why}",
                        info.variable
                    )));
                }
                // Two names made one by --rename are a usage error; names that were
                // already shared are the plan's business (a tied weight is written once).
                let renamed = n.variable != info.variable;
                match seen.get(&n.variable) {
                    Some((prev, prev_renamed)) if renamed || *prev_renamed => {
                        return Err(Error::Usage(format!(
                            "--rename: {prev:?} and {:?} would both be named {:?}",
                            info.variable, n.variable
                        )));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(n.variable.clone(), (info.variable.clone(), renamed));
                    }
                }
                // Floats are cast; other dtypes stay.
                if let Some(c) = t.dtype.and_then(|d| Cast::new(info.dtype, d)) {
                    if c.from() != c.to() {
                        n.dtype = c.to();
                        n.byte_len = c.output_len(info.byte_len).ok_or_else(|| {
                            Error::corrupt_tensor(
                                inner.path(),
                                &info.name,
                                format!(
                                    "{} bytes are not whole {} elements",
                                    info.byte_len, info.dtype
                                ),
                            )
                        })?;
                    }
                }
            }
            back[i] = infos.len();
            map.push(i);
            infos.push(n);
        }
        let layers = inner
            .layers()
            .iter()
            .map(|l| Layer {
                weights: l
                    .weights
                    .iter()
                    .filter(|w| back[w.tensor] != usize::MAX)
                    .map(|w| crate::keras::Weight {
                        tensor: back[w.tensor],
                        ..w.clone()
                    })
                    .collect(),
                ..l.clone()
            })
            .collect();
        // Filters that select nothing are a mistake (a typo in a pattern), not an empty file.
        let selecting = t.include.set.is_some() || t.exclude.set.is_some();
        let kept_any = infos
            .iter()
            .any(|i| naming::role(&i.name, &i.variable) != Role::Metadata);
        if selecting && !kept_any && !inner.tensors().is_empty() {
            return Err(Error::Usage(format!(
                "{}: --include/--exclude select none of its {} tensors (patterns match variable names, as `inspect` shows them)",
                inner.path().display(),
                inner.tensors().len()
            )));
        }
        let optimizer_order = inner.optimizer_order().map(|o| {
            o.iter()
                .filter(|&&i| back[i] != usize::MAX)
                .map(|&i| back[i])
                .collect()
        });
        Ok(Transformed {
            inner,
            map,
            infos,
            layers,
            optimizer_order,
        })
    }
}

/// Cast little-endian floats from `from` to `to` (round to nearest even, as TensorFlow);
/// `None` unless [`Cast::new`] admits the pair.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
pub fn cast_floats(from: DType, to: DType, bytes: &[u8]) -> Option<Vec<u8>> {
    let c = Cast::new(from, to)?;
    let len = usize::try_from(c.output_len(bytes.len() as u64)?).ok()?;
    let mut out = vec![0u8; len];
    c.apply(bytes, &mut Vec::new(), &mut out);
    Some(out)
}

impl TensorSource for Transformed<'_> {
    fn format(&self) -> Format {
        self.inner.format()
    }

    fn renamed(&self, index: usize) -> bool {
        self.infos[index].variable != self.inner.tensors()[self.map[index]].variable
    }

    fn path(&self) -> &std::path::Path {
        self.inner.path()
    }

    fn files(&self) -> Vec<std::path::PathBuf> {
        self.inner.files()
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.infos
    }

    fn layers(&self) -> &[Layer] {
        &self.layers
    }

    fn layer_order(&self) -> crate::keras::Order {
        self.inner.layer_order()
    }

    fn loads_by_position(&self) -> bool {
        self.inner.loads_by_position()
    }

    fn h5_weight_order(&self) -> bool {
        self.inner.h5_weight_order()
    }

    fn keras3_paths(&self) -> bool {
        // Renames move tensors away from their Keras 3 paths.
        self.inner.keras3_paths()
            && self
                .map
                .iter()
                .zip(&self.infos)
                .all(|(&i, n)| self.inner.tensors()[i].variable == n.variable)
    }

    fn keras_config(&self) -> Option<crate::keras::KerasConfig<'_>> {
        self.inner.keras_config()
    }

    fn tf1_graph(&self) -> Option<&crate::formats::tf::meta::MetaGraph> {
        self.inner.tf1_graph()
    }

    fn optimizer_order(&self) -> Option<&[usize]> {
        self.optimizer_order.as_deref()
    }

    fn release(&self, index: usize) {
        self.inner.release(self.map[index]);
    }

    fn stored_at(&self, index: usize) -> Option<(u32, u64)> {
        self.inner.stored_at(self.map[index])
    }

    fn file_range(&self, index: usize) -> Option<crate::tensor::FileRange<'_>> {
        let i = self.map[index];
        (self.inner.tensors()[i].dtype == self.infos[index].dtype)
            .then(|| self.inner.file_range(i))
            .flatten()
    }

    fn cast_of(&self, index: usize) -> Option<(&dyn TensorSource, usize)> {
        let i = self.map[index];
        (self.inner.tensors()[i].dtype != self.infos[index].dtype).then_some((self.inner, i))
    }

    fn strings(&self, index: usize) -> Result<Box<dyn crate::tensor::StringReader + '_>> {
        self.inner.strings(self.map[index])
    }

    fn read_unchecked(&self, index: usize) -> Result<(TensorData<'_>, Option<Crc32cCheck>)> {
        match self.cast_of(index) {
            None => self.inner.read_unchecked(self.map[index]),
            Some(_) => Ok((self.read(index)?, None)),
        }
    }

    /// A cast tensor is cast piece by piece from the stored bytes (which are read, not
    /// mapped, where they lie in a file): its memory is the cast tensor. Writers do not
    /// come here for large tensors; they copy [`Pieces`] straight to the output.
    fn read(&self, index: usize) -> Result<TensorData<'_>> {
        if self.cast_of(index).is_none() {
            return self.inner.read(self.map[index]);
        }
        let mut p = Pieces::open(self, index, false)?;
        let mut out = vec![0u8; p.len()];
        for piece in out.chunks_mut(PIECE) {
            p.read_into(piece)?;
        }
        p.finish()?;
        Ok(TensorData::Bytes(out.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_round_to_nearest_even() {
        let x: Vec<u8> = [1.0f32, 65504.0, 1e-8, -2.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let h = cast_floats(DType::Float32, DType::Float16, &x).unwrap();
        let back: Vec<f32> = h
            .chunks(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect();
        assert_eq!(back, vec![1.0, 65504.0, 0.0, -2.5]);
        let b = cast_floats(DType::Float32, DType::BFloat16, &x).unwrap();
        assert_eq!(b.len(), 8);
        assert_eq!(
            cast_floats(DType::BFloat16, DType::Float32, &b)
                .unwrap()
                .len(),
            16
        );
        assert_eq!(cast_floats(DType::Int32, DType::Float16, &x), None);
        assert_eq!(cast_floats(DType::Float32, DType::Float64, &x), None);
    }

    #[test]
    fn bad_patterns_are_usage_errors() {
        let t = Transform::default;
        assert!(matches!(t().include("["), Err(Error::Usage(_))));
        assert!(matches!(t().exclude("a[b"), Err(Error::Usage(_))));
        assert!(matches!(t().rename("(", "y"), Err(Error::Usage(_))));
        assert!(matches!(t().cast(DType::Int8), Err(Error::Usage(_))));
        assert!(t().is_identity());
        assert!(!t().include("a/*").unwrap().is_identity());
        assert!(!t().weights_only(true).is_identity());
    }
}
