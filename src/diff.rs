//! Compare two weight files of any formats, tensor by tensor.
//!
//! Tensors are matched by canonical variable name (design §1): a Keras `.h5`'s
//! `conv/kernel:0`, its TF-format checkpoint's `layer_with_weights-0/kernel/...` (whose
//! object graph says `conv/kernel`) and a safetensors `conv/kernel` are the same weight.
//! What names leave unmatched is matched by Keras layer position when both files record
//! their layers (a nested model's name is not in a TF checkpoint, for instance).
//!
//! Values: identical bytes are equal. Otherwise numbers are compared elementwise as numpy's
//! `allclose` does, `|a - b| <= atol + rtol * |b|` (NaN equals NaN), with atol = rtol = 0
//! by default, i.e. exact. By default only model weights are compared, not optimizer state
//! or counters.

use std::collections::HashMap;

use crate::dtype::{decode_f64, DType};
use crate::error::Result;
use crate::keras;
use crate::naming::{self, Role};
use crate::tensor::{TensorData, TensorSource};

/// How to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
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

fn compare(
    dtype: DType,
    x: &TensorData<'_>,
    y: &TensorData<'_>,
    opts: &DiffOptions,
) -> (u64, u64, f64) {
    match (x, y) {
        (TensorData::Strings(p), TensorData::Strings(q)) => {
            let differing = p.iter().zip(q).filter(|(a, b)| a != b).count() as u64;
            (
                p.len() as u64,
                differing,
                if differing > 0 { f64::NAN } else { 0.0 },
            )
        }
        (TensorData::Bytes(p), TensorData::Bytes(q)) => {
            match (decode_f64(dtype, p), decode_f64(dtype, q)) {
                (Some(a), Some(b)) => {
                    let mut differing = 0;
                    let mut max_abs: f64 = 0.0;
                    for (u, v) in a.iter().zip(&b) {
                        if u.is_nan() && v.is_nan() {
                            continue;
                        }
                        let d = (u - v).abs();
                        if d.is_nan() || d > opts.atol + opts.rtol * v.abs() {
                            differing += 1;
                        }
                        if d > max_abs || d.is_nan() {
                            max_abs = d;
                        }
                    }
                    (a.len() as u64, differing, max_abs)
                }
                _ => {
                    let differing = p.iter().zip(q.iter()).filter(|(a, b)| a != b).count() as u64;
                    (p.len() as u64, differing, f64::NAN)
                }
            }
        }
        _ => (0, 1, f64::NAN),
    }
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
        let (x, y) = (a.read(i)?, b.read(j)?);
        let same = x == y;
        let (elements, differing, max_abs_diff) = if same {
            (0, 0, 0.0)
        } else {
            compare(ta.dtype, &x, &y, opts)
        };
        drop((x, y));
        a.release(i);
        b.release(j);
        if same {
            r.identical += 1;
            continue;
        }
        if differing == 0 {
            r.within_tolerance += 1;
        } else {
            r.values.push(ValueDiff {
                name: ta.variable.clone(),
                elements,
                differing,
                max_abs_diff,
            });
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allclose_semantics() {
        let a: Vec<u8> = [1.0f32, 2.0, f32::NAN]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let b: Vec<u8> = [1.0f32, 2.5, f32::NAN]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let (x, y) = (TensorData::Bytes(a.into()), TensorData::Bytes(b.into()));
        let exact = DiffOptions::default();
        assert_eq!(compare(DType::Float32, &x, &y, &exact), (3, 1, 0.5));
        let loose = DiffOptions {
            atol: 0.5,
            ..Default::default()
        };
        assert_eq!(compare(DType::Float32, &x, &y, &loose).1, 0);
        let rel = DiffOptions {
            rtol: 0.2,
            ..Default::default()
        };
        assert_eq!(compare(DType::Float32, &x, &y, &rel).1, 0);
    }
}
