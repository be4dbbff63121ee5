//! The network's operations as ONNX nodes, dynamic convolution in one of three standard forms.

use super::graph::{Attr, Graph, Value};
use crate::config::Size;
use crate::model::layers::Act;
use crate::model::trace::{Dense, FoldedConv, Trace};

/// How a dynamic convolution (K kernels mixed per sample by the attention π) is written in
/// standard operators. All three compute the same thing; runtimes differ in what they take and
/// how fast they run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DynamicForm {
    /// Σₖ πₖ·(Wₖ ∗ x): one Conv with the K kernels stacked as constant weights, then the
    /// attention-weighted sum of the K outputs. Dynamic batch; K× the conv's work.
    Experts,
    /// (Σₖ πₖ·Wₖ) ∗ x per sample: the kernels mixed by a MatMul, then one Conv grouped by sample
    /// (group = batch × groups). Weights computed in the graph; fixed batch.
    Grouped,
    /// 1×1 convs as a batched MatMul of the mixed kernels and the pixels (dynamic batch); the
    /// other dynamic convs as `experts`.
    Matmul,
}

impl std::fmt::Display for DynamicForm {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            DynamicForm::Experts => "experts",
            DynamicForm::Grouped => "grouped",
            DynamicForm::Matmul => "matmul",
        })
    }
}

/// Writes what a [`Trace`] walks into a [`Graph`].
pub struct OnnxTrace<'a> {
    pub graph: &'a mut Graph,
    pub form: DynamicForm,
}

fn conv_attrs(spec: &crate::model::blueprint::ConvSpec, groups: usize) -> Vec<(&'static str, Attr)> {
    let (k, s, p) = (spec.kernel as i64, spec.stride as i64, spec.padding as i64);
    vec![
        ("kernel_shape", Attr::Ints(vec![k, k])),
        ("strides", Attr::Ints(vec![s, s])),
        ("pads", Attr::Ints(vec![p, p, p, p])),
        ("group", Attr::Int(groups as i64)),
    ]
}

impl OnnxTrace<'_> {
    fn act(&mut self, x: String, act: Act, hint: &str) -> String {
        let g = &mut *self.graph;
        match act {
            Act::None => x,
            Act::Relu => g.node("Relu", &[&x], vec![], hint),
            Act::Relu6 => {
                let (lo, hi) = (g.scalar("zero", 0.0), g.scalar("six", 6.0));
                g.node("Clip", &[&x, &lo, &hi], vec![], hint)
            }
            Act::Hardswish => g.node("HardSwish", &[&x], vec![], hint),
        }
    }

    /// π (B, K) of a dynamic conv's input.
    fn attention(&mut self, x: &Value, c: &FoldedConv) -> String {
        let a = c.attention.as_ref().expect("a dynamic conv");
        let pooled = self.global_pool(x.clone());
        let h = self.linear(pooled, &a.fc1);
        let h = self.graph.node("Relu", &[&h.name], vec![], &format!("{}.attention.relu", c.name));
        let z = self.linear(x.with(h, vec![a.fc1.outputs]), &a.fc2).name;
        let z = if a.temperature == 1.0 {
            z
        } else {
            let t = self.graph.scalar("inverse_temperature", 1.0 / a.temperature);
            self.graph.node("Mul", &[&z, &t], vec![], &format!("{}.attention.scaled", c.name))
        };
        self.graph.node("Softmax", &[&z], vec![("axis", Attr::Int(1))], &format!("{}.attention", c.name))
    }

    /// A static conv (or transposed conv) with its folded weights and bias.
    fn static_conv(&mut self, x: &Value, c: &FoldedConv) -> String {
        let s = &c.spec;
        let dims = if s.transposed { [s.cin, s.cout / s.groups] } else { [s.cout, s.cin / s.groups] };
        let g = &mut *self.graph;
        let w = g.f32s(&format!("{}.weight", c.name), &[dims[0], dims[1], s.kernel, s.kernel], c.weight.clone());
        let b = g.f32s(&format!("{}.bias", c.name), &[s.cout], c.bias.clone());
        let op = if s.transposed { "ConvTranspose" } else { "Conv" };
        g.node(op, &[&x.name, &w, &b], conv_attrs(s, s.groups), &c.name)
    }

    /// Form (a): the K kernel sets stacked as one conv's output channels (group-major, so that a
    /// grouped conv keeps each group's outputs together), then Σₖ πₖ·outputₖ.
    fn experts(&mut self, x: &Value, c: &FoldedConv, pi: &str, out: Size) -> String {
        let s = &c.spec;
        let (kk, ksz) = (c.kernels, s.kernel * s.kernel);
        let (groups, per_group) = (s.groups, s.cout / s.groups);
        let set = c.weight.len() / kk;
        let mut w = Vec::with_capacity(c.weight.len());
        let dims = if s.transposed {
            // IOHW per set → I, (K·O), H, W.
            for i in 0..s.cin {
                for k in 0..kk {
                    w.extend_from_slice(&c.weight[k * set + i * s.cout * ksz..][..s.cout * ksz]);
                }
            }
            [s.cin, kk * s.cout, s.kernel, s.kernel]
        } else {
            // OIHW per set → (groups, K, O/groups) outputs.
            let per_out = s.cin / groups * ksz;
            for gi in 0..groups {
                for k in 0..kk {
                    w.extend_from_slice(&c.weight[k * set + gi * per_group * per_out..][..per_group * per_out]);
                }
            }
            [groups * kk * per_group, s.cin / groups, s.kernel, s.kernel]
        };
        let g = &mut *self.graph;
        let wn = g.f32s(&format!("{}.experts.weight", c.name), &dims, w);
        let op = if s.transposed { "ConvTranspose" } else { "Conv" };
        let y = g.node(op, &[&x.name, &wn], conv_attrs(s, groups), &format!("{}.experts", c.name));
        let b = x.batch_dim();
        let hw = (out.width * out.height) as i64;
        let y =
            g.reshape(&y, &[b, groups as i64, kk as i64, per_group as i64, hw], &format!("{}.experts.split", c.name));
        let p = g.reshape(pi, &[b, 1, kk as i64, 1, 1], &format!("{}.attention.expanded", c.name));
        let y = g.node("Mul", &[&y, &p], vec![], &format!("{}.experts.weighted", c.name));
        let axis = g.ints("axis_2", &[2]);
        let y = g.node("ReduceSum", &[&y, &axis], vec![("keepdims", Attr::Int(0))], &format!("{}.mixed", c.name));
        g.reshape(&y, &[b, s.cout as i64, out.height as i64, out.width as i64], &format!("{}.conv", c.name))
    }

    /// The per-sample mixed kernels Σₖ πₖ·Wₖ, (B, one set's values).
    fn mixed_kernels(&mut self, c: &FoldedConv, pi: &str) -> String {
        let set = c.weight.len() / c.kernels;
        let g = &mut *self.graph;
        let bank = g.f32s(&format!("{}.weight", c.name), &[c.kernels, set], c.weight.clone());
        g.node("MatMul", &[pi, &bank], vec![], &format!("{}.mixed_weight", c.name))
    }

    /// Form (b): the mixed kernels, then one conv grouped by sample.
    fn grouped(&mut self, x: &Value, c: &FoldedConv, pi: &str, out: Size) -> String {
        let s = &c.spec;
        let batch = x.batch.expect("the grouped form has a fixed batch");
        let (b, k) = (batch as i64, s.kernel as i64);
        let w = self.mixed_kernels(c, pi);
        let g = &mut *self.graph;
        let (w, groups) = if s.transposed {
            (g.reshape(&w, &[b * s.cin as i64, s.cout as i64, k, k], &format!("{}.per_sample", c.name)), batch)
        } else {
            let shape = [b * s.cout as i64, (s.cin / s.groups) as i64, k, k];
            (g.reshape(&w, &shape, &format!("{}.per_sample", c.name)), batch * s.groups)
        };
        let [h, wd] = [x.dims[1], x.dims[2]].map(|v| v as i64);
        let xs = g.reshape(&x.name, &[1, b * s.cin as i64, h, wd], &format!("{}.samples_as_channels", c.name));
        let op = if s.transposed { "ConvTranspose" } else { "Conv" };
        let y = g.node(op, &[&xs, &w], conv_attrs(s, groups), &format!("{}.grouped", c.name));
        g.reshape(&y, &[b, s.cout as i64, out.height as i64, out.width as i64], &format!("{}.conv", c.name))
    }

    /// Form (c) for a 1×1 conv: (B, O, C) mixed kernels times (B, C, H·W) pixels.
    fn matmul(&mut self, x: &Value, c: &FoldedConv, pi: &str, out: Size) -> String {
        let s = &c.spec;
        let w = self.mixed_kernels(c, pi);
        let g = &mut *self.graph;
        let b = x.batch_dim();
        let w = g.reshape(&w, &[b, s.cout as i64, s.cin as i64], &format!("{}.per_sample", c.name));
        let xs = g.reshape(&x.name, &[b, s.cin as i64, -1], &format!("{}.pixels", c.name));
        let y = g.node("MatMul", &[&w, &xs], vec![], &format!("{}.matmul", c.name));
        g.reshape(&y, &[b, s.cout as i64, out.height as i64, out.width as i64], &format!("{}.conv", c.name))
    }
}

/// PyTorch's bilinear ×2 (`align_corners=False`) along one axis of length `n` as an `n × 2n`
/// matrix (`transposed`, for x · M) or `2n × n` (for M · x): output j reads 0.75 of input j/2
/// and 0.25 of its neighbour on j's side, clamped at the border.
fn interpolation(n: usize, transposed: bool) -> Vec<f32> {
    let mut m = vec![0.0f32; 2 * n * n];
    for j in 0..2 * n {
        let near = j / 2;
        let far = if j % 2 == 0 { near.saturating_sub(1) } else { (near + 1).min(n - 1) };
        for (i, wgt) in [(near, 0.75), (far, 0.25)] {
            let at = if transposed { i * 2 * n + j } else { j * n + i };
            m[at] += wgt;
        }
    }
    m
}

impl Trace for OnnxTrace<'_> {
    type Value = Value;

    fn conv(&mut self, x: Value, c: &FoldedConv) -> Value {
        let s = &c.spec;
        let out = s.out_size(Size::new(x.dims[2], x.dims[1]));
        let y = if c.attention.is_none() {
            self.static_conv(&x, c)
        } else {
            let pi = self.attention(&x, c);
            let one_by_one = s.kernel == 1 && s.stride == 1 && s.padding == 0 && s.groups == 1 && !s.transposed;
            let y = match self.form {
                DynamicForm::Grouped => self.grouped(&x, c, &pi, out),
                DynamicForm::Matmul if one_by_one => self.matmul(&x, c, &pi, out),
                DynamicForm::Experts | DynamicForm::Matmul => self.experts(&x, c, &pi, out),
            };
            let g = &mut *self.graph;
            let b = g.f32s(&format!("{}.bias", c.name), &[1, s.cout, 1, 1], c.bias.clone());
            g.node("Add", &[&y, &b], vec![], &format!("{}.biased", c.name))
        };
        let y = self.act(y, c.act, &format!("{}.out", c.name));
        x.with(y, vec![s.cout, out.height, out.width])
    }

    fn max_pool(&mut self, x: Value, kernel: usize, stride: usize, padding: usize) -> Value {
        let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
        let attrs = vec![
            ("kernel_shape", Attr::Ints(vec![k, k])),
            ("strides", Attr::Ints(vec![s, s])),
            ("pads", Attr::Ints(vec![p, p, p, p])),
        ];
        let y = self.graph.node("MaxPool", &[&x.name], attrs, "max_pool");
        let along = |n: usize| (n + 2 * padding - kernel) / stride + 1;
        x.with(y, vec![x.dims[0], along(x.dims[1]), along(x.dims[2])])
    }

    fn add(&mut self, a: Value, b: Value) -> Value {
        let y = self.graph.node("Add", &[&a.name, &b.name], vec![], "sum");
        a.with(y, a.dims.clone())
    }

    fn relu(&mut self, x: Value) -> Value {
        let y = self.graph.node("Relu", &[&x.name], vec![], "relu");
        x.with(y, x.dims.clone())
    }

    fn squeeze_excite(&mut self, x: Value, fc1: &Dense, fc2: &Dense) -> Value {
        let g = &mut *self.graph;
        let pooled = g.node("GlobalAveragePool", &[&x.name], vec![], "se.pooled");
        let mut h = pooled;
        for (i, d) in [fc1, fc2].into_iter().enumerate() {
            let w = g.f32s(&format!("{}.weight", d.name), &[d.outputs, d.inputs, 1, 1], d.weight.clone());
            let b = g.f32s(&format!("{}.bias", d.name), &[d.outputs], d.bias.clone());
            h = g.node("Conv", &[&h, &w, &b], vec![], &d.name);
            if i == 0 {
                h = g.node("Relu", &[&h], vec![], "se.relu");
            }
        }
        let gate = g.node(
            "HardSigmoid",
            &[&h],
            vec![("alpha", Attr::Float(1.0 / 6.0)), ("beta", Attr::Float(0.5))],
            "se.gate",
        );
        let y = g.node("Mul", &[&x.name, &gate], vec![], "se.out");
        x.with(y, x.dims.clone())
    }

    /// Two MatMuls with constant interpolation matrices rather than `Resize`: runtimes differ in
    /// how `Resize` treats the border (tract does not clamp as PyTorch does), a MatMul is exact
    /// everywhere, and at heatmap sizes it costs little.
    fn upsample2x(&mut self, x: Value) -> Value {
        let (h, w) = (x.dims[1], x.dims[2]);
        let g = &mut *self.graph;
        let cols = g.f32s("upsample_columns", &[w, 2 * w], interpolation(w, true));
        let rows = g.f32s("upsample_rows", &[2 * h, h], interpolation(h, false));
        let wide = g.node("MatMul", &[&x.name, &cols], vec![], "upsampled_wide");
        let y = g.node("MatMul", &[&rows, &wide], vec![], "upsampled");
        x.with(y, vec![x.dims[0], 2 * h, 2 * w])
    }

    fn global_pool(&mut self, x: Value) -> Value {
        let g = &mut *self.graph;
        let y = g.node("GlobalAveragePool", &[&x.name], vec![], "pooled");
        let y = g.node("Flatten", &[&y], vec![("axis", Attr::Int(1))], "pooled_flat");
        x.with(y, vec![x.dims[0]])
    }

    fn linear(&mut self, x: Value, d: &Dense) -> Value {
        let g = &mut *self.graph;
        let w = g.f32s(&format!("{}.weight", d.name), &[d.outputs, d.inputs], d.weight.clone());
        let b = g.f32s(&format!("{}.bias", d.name), &[d.outputs], d.bias.clone());
        let y = g.node("Gemm", &[&x.name, &w, &b], vec![("transB", Attr::Int(1))], &d.name);
        x.with(y, vec![d.outputs])
    }

    fn hardswish(&mut self, x: Value) -> Value {
        let y = self.graph.node("HardSwish", &[&x.name], vec![], "hardswish");
        x.with(y, x.dims.clone())
    }
}
