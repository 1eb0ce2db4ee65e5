//! Compare two weight files of any formats, tensor by tensor.
//!
//! Tensors are matched by canonical variable name: a Keras `.h5`'s
//! `conv/kernel:0`, its TF-format checkpoint's `layer_with_weights-0/kernel/...` (whose
//! object graph says `conv/kernel`) and a safetensors `conv/kernel` are the same weight.
//! What names leave unmatched is matched by Keras layer position when both files record
//! their layers (a nested model's name is not in a TF checkpoint, for instance).
//!
//! Values: identical bytes are equal. Otherwise numbers are compared elementwise as numpy's
//! `allclose` does, `|a - b| <= atol + rtol * |b|` (NaN equals NaN, an infinity only
//! itself), with atol = rtol = 0 by default, i.e. exact. Tensors are read and compared
//! piece by piece, so a comparison's memory does not grow with them. By default only
//! model weights are compared, not optimizer state or counters.

use std::collections::HashMap;

use crate::dtype::{decode_f64_into, DType};
use crate::error::Result;
use crate::keras;
use crate::naming::{self, Role};
use crate::tensor::{Pieces, TensorSource};

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Stops the comparison ([`Error::Interrupted`]) once cancelled.
    pub cancel: crate::cancel::Cancel,
    pub atol: f64,
    pub rtol: f64,
    pub include_optimizer: bool,
}

/// Two tensors whose values differ beyond tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueDiff {
    pub name: String,
    pub elements: u64,
    pub differing: u64,
    pub max_abs_diff: f64,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffReport {
    pub compared: usize,
    pub identical: usize,
    pub within_tolerance: usize,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    /// Name, A's dtype and shape, B's dtype and shape.
    pub mismatched: Vec<(String, String, String)>,
    pub values: Vec<ValueDiff>,
    /// Where a Keras loader going by position would put weights differently.
    pub order: Vec<String>,
}

impl DiffReport {
    /// True when every weight is present on both sides and equal (within tolerance).
    pub fn same(&self) -> bool {
        self.only_in_a.is_empty()
            && self.only_in_b.is_empty()
            && self.mismatched.is_empty()
            && self.values.is_empty()
            && self.order.is_empty()
    }
}

fn selected(src: &dyn TensorSource, opts: &DiffOptions) -> Vec<usize> {
    src.tensors()
        .iter()
        .enumerate()
        .filter(|(_, t)| match naming::role(&t.name, &t.variable) {
            Role::Weight => true,
            Role::Optimizer | Role::Counter | Role::Metric => opts.include_optimizer,
            Role::Metadata => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// Pair the selected tensors of `a` and `b`.
fn pair(
    a: &dyn TensorSource,
    b: &dyn TensorSource,
    sa: &[usize],
    sb: &[usize],
) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    let mut by_var_b: HashMap<&str, usize> = HashMap::new();
    for &j in sb {
        by_var_b
            .entry(b.tensors()[j].variable.as_str())
            .or_insert(j);
    }
    let mut pairs = Vec::new();
    let mut used_b = std::collections::HashSet::new();
    let mut left_a = Vec::new();
    for &i in sa {
        match by_var_b.get(a.tensors()[i].variable.as_str()) {
            Some(&j) if used_b.insert(j) => pairs.push((i, j)),
            _ => left_a.push(i),
        }
    }
    let mut left_b: Vec<usize> = sb.iter().copied().filter(|j| !used_b.contains(j)).collect();
    // Fallback: Keras layers by position, weights by position within the layer.
    let (ma, mb) = (keras::describe(a), keras::describe(b));
    let (la, lb): (Vec<_>, Vec<_>) = (ma.weighted().collect(), mb.weighted().collect());
    if !left_a.is_empty() && !left_b.is_empty() && la.len() == lb.len() {
        let mut free_a: std::collections::HashSet<usize> = left_a.iter().copied().collect();
        let mut free_b: std::collections::HashSet<usize> = left_b.iter().copied().collect();
        for (x, y) in la.iter().zip(&lb) {
            if x.weights.len() != y.weights.len() {
                continue;
            }
            for (i, j) in x.tensors().zip(y.tensors()) {
                if free_a.contains(&i) && free_b.contains(&j) {
                    pairs.push((i, j));
                    free_a.remove(&i);
                    free_b.remove(&j);
                }
            }
        }
        left_a.retain(|k| free_a.contains(k));
        left_b.retain(|k| free_b.contains(k));
    }
    (pairs, left_a, left_b)
}

/// What a loader that goes by position would see differently: when either file is
/// loaded by position (a Keras 2 `.h5`), the k-th weight of the k-th weighted layer must
/// be the same weight on both sides, when both files record their layers. Returns one
/// line per difference.
fn position_differences(
    a: &dyn TensorSource,
    b: &dyn TensorSource,
    pairs: &[(usize, usize)],
) -> Vec<String> {
    if !a.loads_by_position() && !b.loads_by_position() {
        return Vec::new();
    }
    // Only recorded models have an order to compare: a file of bare names (safetensors)
    // says nothing about positions.
    let recorded =
        |s: &dyn TensorSource| !s.layers().is_empty() && s.layer_order() == keras::Order::Recorded;
    if !recorded(a) || !recorded(b) {
        return Vec::new();
    }
    let (ma, mb) = (keras::describe(a), keras::describe(b));
    let (la, lb): (Vec<_>, Vec<_>) = (ma.weighted().collect(), mb.weighted().collect());
    let mut out = Vec::new();
    if la.len() != lb.len() {
        out.push(format!(
            "A has {} layers with weights, B has {}: a Keras loader going by position cannot load one as the other",
            la.len(),
            lb.len()
        ));
        return out;
    }
    let partner: HashMap<usize, usize> = pairs.iter().copied().collect();
    for (k, (x, y)) in la.iter().zip(&lb).enumerate() {
        if x.weights.len() != y.weights.len() {
            out.push(format!(
                "layer {k} ({:?} / {:?}): A has {} weights, B has {}",
                x.name,
                y.name,
                x.weights.len(),
                y.weights.len()
            ));
            continue;
        }
        // A nested model's weights are listed trainable first in a Keras 2 .h5 and layer by
        // layer elsewhere: between such files only which weights it holds can be compared.
        if a.h5_weight_order() != b.h5_weight_order()
            && (x.is_nested_model(a) || y.is_nested_model(b))
        {
            let theirs: std::collections::HashSet<usize> = y.tensors().collect();
            if x.tensors()
                .any(|i| partner.get(&i).is_some_and(|p| !theirs.contains(p)))
            {
                out.push(format!(
                    "layer {k} ({:?} / {:?}): the two files give it different weights",
                    x.name, y.name
                ));
            }
            continue;
        }
        for (n, (i, j)) in x.tensors().zip(y.tensors()).enumerate() {
            if partner.get(&i).is_some_and(|&p| p != j) {
                out.push(format!(
                    "layer {k} ({:?}), weight {n}: A has {:?} where B has {:?}; loaded by position, the weights land in different places",
                    x.name,
                    a.tensors()[i].variable,
                    b.tensors()[j].variable
                ));
            }
        }
    }
    out
}

/// How many bytes of each tensor are compared at a time: the memory of a comparison is
/// two such pieces and their values as f64, whatever the tensors' sizes.
const DIFF_PIECE: usize = 256 << 10;

/// The comparison of two tensors, added up piece by piece.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tally {
    /// Every byte the same.
    identical: bool,
    /// Values compared (complex numbers count as two, strings and float8 as bytes).
    elements: u64,
    /// Values beyond tolerance.
    differing: u64,
    /// Largest absolute difference (NaN when incomparable).
    max_abs: f64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            identical: true,
            elements: 0,
            differing: 0,
            max_abs: 0.0,
        }
    }
}

impl Tally {
    /// Add the comparison of `p` and `q`, the same range of two numeric tensors of
    /// `dtype` (whole elements). Identical bytes are equal values, and are not decoded.
    /// `scratch` is reused between pieces.
    fn add(
        &mut self,
        dtype: DType,
        p: &[u8],
        q: &[u8],
        opts: &DiffOptions,
        scratch: &mut (Vec<f64>, Vec<f64>),
    ) {
        let (a, b) = scratch;
        if p == q {
            // As many values as `decode_f64` would give.
            self.elements += (p.len() / dtype.swap_unit().unwrap_or(1).max(1)) as u64;
            return;
        }
        self.identical = false;
        if !(decode_f64_into(dtype, p, a) && decode_f64_into(dtype, q, b)) {
            self.elements += p.len().max(q.len()) as u64;
            self.differing += p.iter().zip(q).filter(|(x, y)| x != y).count() as u64
                + p.len().abs_diff(q.len()) as u64;
            self.max_abs = f64::NAN;
            return;
        }
        self.elements += a.len() as u64;
        for (u, v) in a.iter().zip(b.iter()) {
            // Equal values (infinities too) and NaN against NaN are equal; an infinity
            // or NaN against anything else differs, whatever the tolerance (numpy's
            // isclose).
            if u == v || (u.is_nan() && v.is_nan()) {
                continue;
            }
            let d = (u - v).abs();
            if !(u.is_finite() && v.is_finite()) || d > opts.atol + opts.rtol * v.abs() {
                self.differing += 1;
            }
            if d > self.max_abs || d.is_nan() {
                self.max_abs = d;
            }
        }
    }
}

/// Compare tensor `i` of `a` with tensor `j` of `b` (of one dtype and shape), piece by
/// piece for numbers ([`Pieces`]: never a whole tensor in memory, and the stored
/// checksums checked on the way), an element at a time for strings.
fn compare(
    a: &dyn TensorSource,
    i: usize,
    b: &dyn TensorSource,
    j: usize,
    opts: &DiffOptions,
) -> Result<Tally> {
    let dtype = a.tensors()[i].dtype;
    let mut t = Tally::default();
    if dtype == DType::String {
        // An element of each at a time: a string tensor can be as large as the file.
        let (elements, differing) = crate::tensor::compare_strings(a, i, b, j)?;
        if differing > 0 {
            t.identical = false;
            t.elements = elements;
            t.differing = differing;
            t.max_abs = f64::NAN;
        }
        return Ok(t);
    }
    let (mut pa, mut pb) = (Pieces::open(a, i, false)?, Pieces::open(b, j, false)?);
    if pa.len() != pb.len() {
        t.identical = false;
        t.elements = pa.len().max(pb.len()) as u64;
        t.differing = 1;
        t.max_abs = f64::NAN;
        return Ok(t);
    }
    let (mut x, mut y) = (vec![0u8; DIFF_PIECE], vec![0u8; DIFF_PIECE]);
    let mut scratch = (Vec::new(), Vec::new());
    while pa.remaining() > 0 {
        opts.cancel.check()?;
        let n = pa.remaining().min(DIFF_PIECE);
        pa.read_into(&mut x[..n])?;
        pb.read_into(&mut y[..n])?;
        t.add(dtype, &x[..n], &y[..n], opts, &mut scratch);
    }
    pa.finish()?;
    pb.finish()?;
    Ok(t)
}

fn describe(src: &dyn TensorSource, i: usize) -> String {
    let t = &src.tensors()[i];
    format!("{} {:?}", t.dtype, t.shape)
}

/// Compare `a` with `b`.
pub fn diff(a: &dyn TensorSource, b: &dyn TensorSource, opts: &DiffOptions) -> Result<DiffReport> {
    let sa = selected(a, opts);
    let sb = selected(b, opts);
    let (pairs, left_a, left_b) = pair(a, b, &sa, &sb);
    let mut r = DiffReport {
        order: position_differences(a, b, &pairs),
        only_in_a: left_a
            .iter()
            .map(|&i| a.tensors()[i].variable.clone())
            .collect(),
        only_in_b: left_b
            .iter()
            .map(|&j| b.tensors()[j].variable.clone())
            .collect(),
        ..Default::default()
    };
    for (i, j) in pairs {
        let (ta, tb) = (&a.tensors()[i], &b.tensors()[j]);
        r.compared += 1;
        if ta.dtype != tb.dtype || ta.shape != tb.shape {
            r.mismatched
                .push((ta.variable.clone(), describe(a, i), describe(b, j)));
            continue;
        }
        let t = compare(a, i, b, j, opts)?;
        a.release(i);
        b.release(j);
        if t.identical {
            r.identical += 1;
        } else if t.differing == 0 {
            r.within_tolerance += 1;
        } else {
            r.values.push(ValueDiff {
                name: ta.variable.clone(),
                elements: t.elements,
                differing: t.differing,
                max_abs_diff: t.max_abs,
            });
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn tally(dtype: DType, p: &[u8], q: &[u8], opts: &DiffOptions, piece: usize) -> Tally {
        let mut t = Tally::default();
        let mut scratch = (Vec::new(), Vec::new());
        for (x, y) in p.chunks(piece).zip(q.chunks(piece)) {
            t.add(dtype, x, y, opts, &mut scratch);
        }
        t
    }

    #[test]
    fn allclose_semantics() {
        let a = f32s(&[1.0, 2.0, f32::NAN, f32::INFINITY]);
        let b = f32s(&[1.0, 2.5, f32::NAN, f32::INFINITY]);
        let exact = DiffOptions::default();
        let t = tally(DType::Float32, &a, &b, &exact, 1 << 20);
        assert_eq!(
            (t.identical, t.elements, t.differing, t.max_abs),
            (false, 4, 1, 0.5)
        );
        let loose = DiffOptions {
            atol: 0.5,
            ..Default::default()
        };
        assert_eq!(tally(DType::Float32, &a, &b, &loose, 1 << 20).differing, 0);
        let rel = DiffOptions {
            rtol: 0.2,
            ..Default::default()
        };
        assert_eq!(tally(DType::Float32, &a, &b, &rel, 1 << 20).differing, 0);
        // Infinities of opposite signs, and a number against NaN, differ.
        let c = f32s(&[1.0, 2.0, 0.0, f32::NEG_INFINITY]);
        let t = tally(DType::Float32, &a, &c, &loose, 1 << 20);
        assert_eq!(t.differing, 2);
        assert!(t.max_abs.is_nan());
        assert!(tally(DType::Float32, &a, &a, &exact, 1 << 20).identical);
    }

    #[test]
    fn pieces_add_up_to_the_whole() {
        // Values that differ here and there, NaN among them; float8 compared bytewise.
        let a: Vec<f32> = (0..10_000).map(|k| (k as f32).sin() * 1e3).collect();
        let mut b = a.clone();
        for k in (0..b.len()).step_by(997) {
            b[k] += (k % 7) as f32 * 0.25;
        }
        b[5000] = f32::NAN;
        let (pa, pb) = (f32s(&a), f32s(&b));
        for dtype in [DType::Float32, DType::Float8E5M2] {
            let whole = tally(dtype, &pa, &pb, &DiffOptions::default(), pa.len());
            assert!(!whole.identical);
            for piece in [4, 64, 4096, 40_000] {
                let t = tally(dtype, &pa, &pb, &DiffOptions::default(), piece);
                assert_eq!(t.identical, whole.identical, "{dtype} {piece}");
                assert_eq!(t.elements, whole.elements, "{dtype} {piece}");
                assert_eq!(t.differing, whole.differing, "{dtype} {piece}");
                assert_eq!(
                    t.max_abs.to_bits(),
                    whole.max_abs.to_bits(),
                    "{dtype} {piece}"
                );
            }
        }
    }
}
