//! `summary --explain`: the formula that gives a layer's Param # from its weight shapes,
//! per built-in class (the shapes are those of `docs/keras.md` (a)), and the input size it
//! implies. A formula is only given when its value equals the layer's weight count;
//! otherwise, and for classes not known here, the sum of the weights' sizes is shown.

use crate::cli::output::thousands;

/// One weight as the formula sees it: its name below the layer and its shape.
pub struct W<'a> {
    pub local: &'a str,
    pub shape: &'a [u64],
}

fn last(local: &str) -> &str {
    local.rsplit('/').next().unwrap_or(local)
}

fn find<'a>(ws: &'a [W<'a>], name: &str) -> Option<&'a [u64]> {
    ws.iter().find(|w| last(w.local) == name).map(|w| w.shape)
}

fn has(ws: &[W<'_>], name: &str) -> bool {
    find(ws, name).is_some()
}

fn dots(v: &[u64]) -> String {
    v.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("·")
}

/// A formula, its value and what it says about the input.
struct F {
    text: String,
    value: Option<u64>,
    note: Option<String>,
}

fn f(text: String, value: Option<u64>, note: Option<String>) -> Option<F> {
    Some(F { text, value, note })
}

/// The formula for a layer of `class` with weights `ws` and `total` parameters.
pub fn formula(class: Option<&str>, ws: &[W<'_>], total: u64) -> String {
    let label = class.unwrap_or("weights");
    if ws.is_empty() {
        return format!("{label}: no weights = 0");
    }
    if let Some(F { text, value, note }) = class.and_then(|c| by_class(c, ws)) {
        if value == Some(total) {
            let mut s = format!("{label}: {text} = {}", thousands(total));
            if let Some(n) = note {
                s.push_str(", ");
                s.push_str(&n);
            }
            return s;
        }
    }
    let parts: Vec<String> = ws
        .iter()
        .map(|w| {
            if w.shape.is_empty() {
                "1".into()
            } else {
                dots(w.shape)
            }
        })
        .collect();
    let what = if class.is_some() {
        "sum of its weights' sizes"
    } else {
        "sum of the weights' sizes (class unknown)"
    };
    format!(
        "{label}: {what}: {} = {}",
        parts.join(" + "),
        thousands(total)
    )
}

fn prod(v: &[u64]) -> Option<u64> {
    v.iter().try_fold(1u64, |a, x| a.checked_mul(*x))
}

fn sum(v: &[u64]) -> Option<u64> {
    v.iter().try_fold(0u64, |a, x| a.checked_add(*x))
}

fn by_class(class: &str, ws: &[W<'_>]) -> Option<F> {
    let bias = has(ws, "bias");
    let b = u64::from(bias);
    let plus1 = if bias { "+1" } else { "" };
    match class {
        "Dense" => {
            let k = find(ws, "kernel")?;
            let [i, u] = *k else { return None };
            let v = u.checked_mul(i.checked_add(b)?)?;
            let text = if bias {
                format!("{u}·({i}+1)")
            } else {
                format!("{u}·{i}")
            };
            f(text, Some(v), Some(format!("so it takes {i} inputs")))
        }
        c if c.starts_with("Conv")
            && (c.ends_with('D') || c.ends_with("Transpose"))
            && !c.starts_with("ConvLSTM") =>
        {
            let k = find(ws, "kernel")?;
            if k.len() < 3 {
                return None;
            }
            let n = k.len();
            let (sp, (i, o)) = if c.ends_with("Transpose") {
                (&k[..n - 2], (k[n - 1], k[n - 2]))
            } else {
                (&k[..n - 2], (k[n - 2], k[n - 1]))
            };
            let v = o.checked_mul(i.checked_mul(prod(sp)?)?.checked_add(b)?)?;
            f(
                format!("{o}·({i}·{}{plus1})", dots(sp)),
                Some(v),
                Some(format!("so it takes {i} channels")),
            )
        }
        "DepthwiseConv1D" | "DepthwiseConv2D" => {
            let k = find(ws, "depthwise_kernel").or_else(|| find(ws, "kernel"))?;
            let n = k.len();
            if n < 3 {
                return None;
            }
            let (sp, i, dm) = (&k[..n - 2], k[n - 2], k[n - 1]);
            let v = i.checked_mul(dm)?.checked_mul(prod(sp)?.checked_add(b)?)?;
            f(
                format!("{i}·{dm}·({}{plus1})", dots(sp)),
                Some(v),
                Some(format!("so it takes {i} channels")),
            )
        }
        "SeparableConv1D" | "SeparableConv2D" => {
            let d = find(ws, "depthwise_kernel")?;
            let p = find(ws, "pointwise_kernel")?;
            let n = d.len();
            if n < 3 || p.len() != n {
                return None;
            }
            let (sp, i, dm, o) = (&d[..n - 2], d[n - 2], d[n - 1], p[n - 1]);
            let v = i
                .checked_mul(dm)?
                .checked_mul(prod(sp)?)?
                .checked_add(i.checked_mul(dm)?.checked_mul(o)?)?
                .checked_add(o * b)?;
            let tail = if bias {
                format!(" + {o}")
            } else {
                String::new()
            };
            f(
                format!("{i}·{dm}·{} + {i}·{dm}·{o}{tail}", dots(sp)),
                Some(v),
                Some(format!("so it takes {i} channels")),
            )
        }
        "BatchNormalization" => {
            let c = find(ws, "moving_mean")?.first().copied()?;
            let n = ws.len() as u64;
            f(
                format!("{n}·C = {n}·{c}"),
                Some(n.checked_mul(c)?),
                Some(format!(
                    "of which 2·C = {} are non-trainable",
                    thousands(c.checked_mul(2)?)
                )),
            )
        }
        "LayerNormalization" | "GroupNormalization" => {
            let c = ws.first()?.shape.first().copied()?;
            let n = ws.len() as u64;
            f(format!("{n}·C = {n}·{c}"), Some(n.checked_mul(c)?), None)
        }
        "Embedding" => {
            let [v, d] = *find(ws, "embeddings")? else {
                return None;
            };
            f(format!("V·D = {v}·{d}"), Some(v.checked_mul(d)?), None)
        }
        "LSTM" | "GRU" | "SimpleRNN" => rnn(class, ws),
        "Bidirectional" => {
            let fwd: Vec<W<'_>> = ws
                .iter()
                .filter(|w| w.local.split('/').any(|p| p.starts_with("forward_")))
                .map(|w| W {
                    local: w.local,
                    shape: w.shape,
                })
                .collect();
            let inner = ["LSTM", "GRU", "SimpleRNN"]
                .iter()
                .find_map(|c| rnn(c, &fwd).map(|x| (c, x)));
            let (c, x) = inner?;
            let each = x.value?;
            f(
                format!(
                    "2·{} (forward and backward {c}, each {} = {})",
                    thousands(each),
                    x.text,
                    thousands(each)
                ),
                each.checked_mul(2),
                x.note,
            )
        }
        "MultiHeadAttention" => {
            let get = |scope: &str, w: &str| {
                ws.iter()
                    .find(|x| x.local.ends_with(&format!("{scope}/{w}")))
                    .map(|x| x.shape)
            };
            let q = get("query", "kernel")?;
            let k = get("key", "kernel")?;
            let v = get("value", "kernel")?;
            let o = get("attention_output", "kernel")?;
            let ([dq, h, kd], [dk, _, _], [dv, _, vd], [_, _, d_out]) = (
                <[u64; 3]>::try_from(q).ok()?,
                <[u64; 3]>::try_from(k).ok()?,
                <[u64; 3]>::try_from(v).ok()?,
                <[u64; 3]>::try_from(o).ok()?,
            );
            let val = sum(&[
                prod(&[h, kd, dq.checked_add(b)?])?,
                prod(&[h, kd, dk.checked_add(b)?])?,
                prod(&[h, vd, dv.checked_add(b)?])?,
                prod(&[d_out, prod(&[h, vd])?.checked_add(b)?])?,
            ]);
            f(
                format!(
                    "h·k·(dq{plus1}) + h·k·(dk{plus1}) + h·v·(dv{plus1}) + o·(h·v{plus1}) = {h}·{kd}·({dq}{plus1}) + {h}·{kd}·({dk}{plus1}) + {h}·{vd}·({dv}{plus1}) + {d_out}·({h}·{vd}{plus1})"
                ),
                val,
                Some(format!("so it takes queries of {dq}, keys of {dk} and values of {dv} features")),
            )
        }
        _ => None,
    }
}

fn rnn(class: &str, ws: &[W<'_>]) -> Option<F> {
    let k = find(ws, "kernel")?;
    let r = find(ws, "recurrent_kernel")?;
    let [i, g] = *k else { return None };
    let [u, _] = *r else { return None };
    let bias = find(ws, "bias");
    let (gates, name) = match class {
        "LSTM" => (4, "4·U·(I+U+1)"),
        "GRU" => (3, ""),
        "SimpleRNN" => (1, "U·(I+U+1)"),
        _ => return None,
    };
    if Some(g) != u.checked_mul(gates) {
        return None;
    }
    // I+U+k, checked.
    let iu = |k: u64| i.checked_add(u)?.checked_add(k);
    let note = Some(format!("so it takes {i} inputs"));
    match (class, bias) {
        ("GRU", Some([2, _])) => f(
            format!("3·U·(I+U+2) = 3·{u}·({i}+{u}+2) (reset_after)"),
            prod(&[3, u, iu(2)?]),
            note,
        ),
        ("GRU", Some(_)) => f(
            format!("3·U·(I+U+1) = 3·{u}·({i}+{u}+1)"),
            prod(&[3, u, iu(1)?]),
            note,
        ),
        (_, Some(_)) => {
            let pre = if gates == 1 {
                String::new()
            } else {
                format!("{gates}·")
            };
            f(
                format!("{name} = {pre}{u}·({i}+{u}+1)"),
                prod(&[gates, u, iu(1)?]),
                note,
            )
        }
        (_, None) => {
            let pre = if gates == 1 {
                String::new()
            } else {
                format!("{gates}·")
            };
            f(
                format!("{pre}U·(I+U) = {pre}{u}·({i}+{u})"),
                prod(&[gates, u, iu(0)?]),
                note,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w<'a>(local: &'a str, shape: &'a [u64]) -> W<'a> {
        W { local, shape }
    }

    #[test]
    fn worked_examples() {
        assert_eq!(
            formula(
                Some("Dense"),
                &[w("kernel", &[3, 32]), w("bias", &[32])],
                128
            ),
            "Dense: 32·(3+1) = 128, so it takes 3 inputs"
        );
        assert_eq!(
            formula(
                Some("Conv2D"),
                &[w("kernel", &[3, 3, 32, 64]), w("bias", &[64])],
                18496
            ),
            "Conv2D: 64·(32·3·3+1) = 18,496, so it takes 32 channels"
        );
        let bn = [
            w("gamma", &[8]),
            w("beta", &[8]),
            w("moving_mean", &[8]),
            w("moving_variance", &[8]),
        ];
        assert_eq!(
            formula(Some("BatchNormalization"), &bn, 32),
            "BatchNormalization: 4·C = 4·8 = 32, of which 2·C = 16 are non-trainable"
        );
        let gru = [
            w("gru_cell/kernel", &[4, 9]),
            w("gru_cell/recurrent_kernel", &[3, 9]),
            w("gru_cell/bias", &[2, 9]),
        ];
        assert_eq!(
            formula(Some("GRU"), &gru, 3 * 3 * (4 + 3 + 2)),
            "GRU: 3·U·(I+U+2) = 3·3·(4+3+2) (reset_after) = 81, so it takes 4 inputs"
        );
        let bi = [
            w("forward_gru/gru_cell/kernel", &[4, 9]),
            w("forward_gru/gru_cell/recurrent_kernel", &[3, 9]),
            w("forward_gru/gru_cell/bias", &[2, 9]),
            w("backward_gru/gru_cell/kernel", &[4, 9]),
            w("backward_gru/gru_cell/recurrent_kernel", &[3, 9]),
            w("backward_gru/gru_cell/bias", &[2, 9]),
        ];
        assert_eq!(
            formula(Some("Bidirectional"), &bi, 162),
            "Bidirectional: 2·81 (forward and backward GRU, each 3·U·(I+U+2) = 3·3·(4+3+2) (reset_after) = 81) = 162, so it takes 4 inputs"
        );
        // A formula that does not give the count is not shown.
        assert_eq!(
            formula(
                Some("Dense"),
                &[w("kernel", &[3, 32]), w("extra", &[5])],
                101
            ),
            "Dense: sum of its weights' sizes: 3·32 + 5 = 101"
        );
        assert_eq!(
            formula(None, &[w("w", &[2, 2]), w("s", &[])], 5),
            "weights: sum of the weights' sizes (class unknown): 2·2 + 1 = 5"
        );
    }
}
