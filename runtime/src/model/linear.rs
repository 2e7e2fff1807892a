//! `nn.Linear` over f32/f16/bf16 or packed int8 weights, the quantization of its input
//! activations for the int8 GEMM kernels, and how the work is shared between threads (output
//! columns for float weights, whole interleaved panel sets for int8).

use super::config::Activation;
use super::exec::Exec;
use super::scratch::LinearScratch;
use super::tensors::Tensors;
use super::weights::{MatRef, PackedRef, Panels, VecRef};
use crate::error::Result;
use crate::kernels::{self, scalar, Epilogue4, Kernels, MR, NR, QBLOCK};
use crate::pool::{share, SharedMut};

#[derive(Debug, Clone, Copy)]
enum Weight {
    Float(MatRef),
    Int8(PackedRef),
}

/// `nn.Linear`: `y = x W^T + b`, with `W` stored `[out, in]` (f32/f16/bf16, or packed int8).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linear {
    w: Weight,
    b: Option<VecRef>,
    rows: usize,
    cols: usize,
}

impl Linear {
    /// `{prefix}.weight` (`[out, inp]`) and, with `bias`, `{prefix}.bias`.
    pub fn resolve(t: &Tensors<'_>, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let w = match t.packed("weight", out, inp)? {
            Some(p) => Weight::Int8(p),
            None => Weight::Float(t.matrix("weight", out, inp)?),
        };
        let b = match bias {
            true => Some(t.vector("bias", out)?),
            false => None,
        };
        Ok(Linear {
            w,
            b,
            rows: out,
            cols: inp,
        })
    }

    /// Bytes per quantized input row of an int8 layer (its input width rounded up to whole
    /// blocks); 0 for float weights.
    pub fn kp(&self) -> usize {
        match self.w {
            Weight::Int8(p) => p.kp,
            Weight::Float(_) => 0,
        }
    }

    /// `x`: `[t, in]` → `out`: `[t, out]`, then `act`. Output columns are split across threads.
    pub fn forward(
        &self,
        ex: &Exec<'_>,
        x: &[f32],
        t: usize,
        out: &mut [f32],
        act: Option<Activation>,
        scratch: &mut LinearScratch,
    ) {
        let out = SharedMut::new(&mut out[..t * self.rows]);
        match self.w {
            Weight::Float(m) => {
                self.forward_float(ex, m, x, t, &out, scratch);
                if let Some(a) = act {
                    // SAFETY: the threads are done; this is the only reference.
                    scalar::activate(a, unsafe { out.slice(0..t * self.rows) });
                }
            }
            Weight::Int8(p) => {
                let (xq, xs) = quantize_activations(ex, x, t, self.cols, p.kp, scratch);
                let run = self.int8_run(ex, p, (xq, xs), t, &out, act);
                ex.pool.run(&|ti, tn| run.share(&ex.kernels, ti, tn));
            }
        }
    }

    /// Float weights: each thread widens its output rows of `W` one at a time (into its slot
    /// of `scratch.row`) and takes their dot products with every input row.
    fn forward_float(
        &self,
        ex: &Exec<'_>,
        m: MatRef,
        x: &[f32],
        t: usize,
        out: &SharedMut<f32>,
        scratch: &mut LinearScratch,
    ) {
        let (n_out, n_in) = (self.rows, self.cols);
        let b = self.b.map(|b| b.view(ex.bytes));
        let wm = m.view(ex.bytes);
        let rows = SharedMut::new(&mut scratch.row);
        let widest = scratch.widest;
        let dot = ex.kernels.dot_f32;
        ex.pool.run(&|ti, tn| {
            // SAFETY: thread ti owns its own widened-row slot.
            let widened = unsafe { rows.slice(ti * widest..(ti + 1) * widest) };
            for o in share(n_out, ti, tn) {
                let row = wm.row(o, n_in, widened);
                let bias = b.map_or(0.0, |b| b[o]);
                for i in 0..t {
                    let v = dot(&x[i * n_in..(i + 1) * n_in], row) + bias;
                    // SAFETY: column o belongs to this thread alone.
                    unsafe { out.slice(i * n_out + o..i * n_out + o + 1)[0] = v };
                }
            }
        });
    }

    /// Several layers over one input (query, key and value): quantized once, and all their
    /// panels in one run of the pool (one wait instead of three). The same bits as one
    /// `forward` each.
    pub fn forward_same_input<const N: usize>(
        layers: [&Linear; N],
        ex: &Exec<'_>,
        x: &[f32],
        t: usize,
        outs: [&mut [f32]; N],
        scratch: &mut LinearScratch,
    ) {
        let first = layers[0];
        let packed = layers.map(|l| match l.w {
            Weight::Int8(p) if p.kp == first.kp() && l.cols == first.cols => Some(p),
            _ => None,
        });
        if packed.iter().any(Option::is_none) {
            for (l, out) in layers.into_iter().zip(outs) {
                l.forward(ex, x, t, out, None, scratch);
            }
            return;
        }
        let (xq, xs) = quantize_activations(ex, x, t, first.cols, first.kp(), scratch);
        let mut widths = layers.iter().map(|l| l.rows);
        let outs = outs.map(|o| SharedMut::new(&mut o[..t * widths.next().expect("N layers")]));
        let runs: [Int8Run<'_>; N] = std::array::from_fn(|i| {
            let p = packed[i].expect("checked above");
            layers[i].int8_run(ex, p, (xq, xs), t, &outs[i], None)
        });
        ex.pool.run(&|ti, tn| {
            for run in &runs {
                run.share(&ex.kernels, ti, tn);
            }
        });
    }

    fn int8_run<'a>(
        &self,
        ex: &Exec<'a>,
        packed: PackedRef,
        (xq, xs): (&'a [i8], &'a [f32]),
        t: usize,
        out: &'a SharedMut<f32>,
        act: Option<Activation>,
    ) -> Int8Run<'a> {
        Int8Run {
            n_out: self.rows,
            packed,
            panels: packed.panels(ex.bytes, ex.smmla),
            bias: self.b.map(|b| b.view(ex.bytes)),
            scales: packed.scales.view(ex.bytes),
            xq,
            xs,
            t,
            out,
            act,
        }
    }
}

/// One int8 layer over a quantized input `xq`/`xs` (`t` rows) into `out` (`[t, n_out]`),
/// then `act`: what each thread's share reads.
struct Int8Run<'a> {
    n_out: usize,
    packed: PackedRef,
    /// The packed weights' panels, in the layout the kernels read.
    panels: Panels<'a>,
    bias: Option<&'a [f32]>,
    /// Per output channel.
    scales: &'a [f32],
    xq: &'a [i8],
    xs: &'a [f32],
    t: usize,
    out: &'a SharedMut<f32>,
    act: Option<Activation>,
}

impl Int8Run<'_> {
    /// Whether the tier's epilogue kernels take this activation (none, or GELU).
    #[inline(always)]
    fn fused(&self) -> bool {
        matches!(self.act, None | Some(Activation::Gelu))
    }

    /// Thread `ti` of `tn`'s share: whole interleaved sets of panels, so that a pass of four
    /// starts on one.
    fn share(&self, k: &Kernels, ti: usize, tn: usize) {
        let (p, t, n_out) = (self.packed, self.t, self.n_out);
        let (kp, nb) = (p.kp, p.kp / QBLOCK);
        let (xq, xs) = (self.xq, self.xs);
        let fused = self.fused();
        let mut acc = [[0f32; NR]; MR];
        let il = p.interleave;
        let sets = share(p.panels / il, ti, tn);
        let mine = sets.start * il..sets.end * il;
        let mut panel = mine.start;
        while panel < mine.end {
            // Four whole panels with a fused epilogue per pass where the tier has a kernel for
            // it: all rows in one call, written straight into the output.
            let o = panel * NR..(panel + 4) * NR;
            let gemm4 = k.gemm_i8_panel4;
            if let Some(gemm4) = gemm4.filter(|_| panel + 4 <= mine.end && fused && o.end <= n_out)
            {
                let pw = [0, 1, 2, 3].map(|i| self.panels.panel(panel + i));
                let epi = Epilogue4 {
                    scales: self.scales[o.clone()].try_into().expect("4·NR scales"),
                    bias: self
                        .bias
                        .map(|b| b[o.clone()].try_into().expect("4·NR biases")),
                    gelu: self.act.is_some(),
                };
                // The next four panels' weights (12-48 kB, first read from memory) while
                // these run over every row.
                if panel + 8 <= mine.end {
                    let next = self.panels.panel(panel + 4).w;
                    for line in next[..(kp * NR * 4).min(next.len())].chunks(64) {
                        kernels::prefetch(line.as_ptr().cast());
                    }
                }
                // SAFETY: columns o of every row belong to this thread's panels.
                let tile = unsafe { self.out.tile(o.start, t, n_out) };
                gemm4(xq, xs, kp, pw, Some(epi), tile);
                panel += 4;
            } else {
                let pw = self.panels.panel(panel);
                for r0 in (0..t).step_by(MR) {
                    let m = MR.min(t - r0);
                    (k.gemm_i8_panel)(&xq[r0 * kp..], &xs[r0 * nb..], m, kp, pw, &mut acc);
                    self.store_panel(k, panel, r0, m, &mut acc);
                }
                panel += 1;
            }
        }
    }

    /// Dequantizes, adds the bias, activates and stores rows `r0..r0 + m` of one panel: whole
    /// panels by the tier's kernel, the last narrower one here (the same operations as
    /// `scalar::panel_epilogue`, on fewer columns).
    #[inline(always)]
    fn store_panel(
        &self,
        k: &Kernels,
        panel: usize,
        r0: usize,
        m: usize,
        acc: &mut [[f32; NR]; MR],
    ) {
        let (n_out, act) = (self.n_out, self.act);
        let o0 = panel * NR;
        if o0 >= n_out {
            return; // the padding of an interleaved layout
        }
        let cols = NR.min(n_out - o0);
        let (wsp, bp) = (
            &self.scales[o0..o0 + cols],
            self.bias.map(|b| &b[o0..o0 + cols]),
        );
        if cols == NR && self.fused() {
            let wsp: &[f32; NR] = wsp.try_into().expect("NR scales");
            let bp: Option<&[f32; NR]> = bp.map(|b| b.try_into().expect("NR biases"));
            (k.panel_epilogue)(acc, m, wsp, bp, act.is_some());
            for (r, y) in acc.iter().enumerate().take(m) {
                let at = (r0 + r) * n_out + o0;
                // SAFETY: columns o0..o0+NR belong to this thread's panels.
                unsafe { self.out.slice(at..at + NR) }.copy_from_slice(y);
            }
            return;
        }
        for (r, a) in acc.iter().enumerate().take(m) {
            let mut y = [0f32; NR];
            let y = &mut y[..cols];
            for ((yj, aj), wj) in y.iter_mut().zip(a).zip(wsp) {
                *yj = aj * wj;
            }
            if let Some(bp) = bp {
                for (yj, bj) in y.iter_mut().zip(bp) {
                    *yj += bj;
                }
            }
            match act {
                Some(Activation::Gelu) => scalar::gelu_fast(y),
                Some(a) => scalar::activate(a, y),
                None => {}
            }
            let at = (r0 + r) * n_out + o0;
            // SAFETY: columns o0..o0+cols belong to this thread's panels.
            unsafe { self.out.slice(at..at + cols) }.copy_from_slice(y);
        }
    }
}

/// The tier's activation quantization of `t` rows of `k` inputs into rows of `kp` codes (and
/// a scale per block) in `scratch`, the rows split across the threads (each row's codes and
/// scales are its own: the same bits). Returns the codes and scales.
fn quantize_activations<'s>(
    ex: &Exec<'_>,
    x: &[f32],
    t: usize,
    k: usize,
    kp: usize,
    scratch: &'s mut LinearScratch,
) -> (&'s [i8], &'s [f32]) {
    let nb = kp / QBLOCK;
    let (q, scales) = (
        SharedMut::new(&mut scratch.xq[..t * kp]),
        SharedMut::new(&mut scratch.xs[..t * nb]),
    );
    ex.pool.run(&|ti, tn| {
        let rows = share(t, ti, tn);
        // SAFETY: rows are split between the threads.
        let (qr, sr) = unsafe {
            (
                q.slice(rows.start * kp..rows.end * kp),
                scales.slice(rows.start * nb..rows.end * nb),
            )
        };
        let xr = &x[rows.start * k..rows.end * k];
        (ex.kernels.quantize_blocks)(xr, rows.len(), k, kp, qr, sr);
    });
    (&scratch.xq[..t * kp], &scratch.xs[..t * nb])
}
