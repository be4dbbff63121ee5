//! An ONNX graph under construction: nodes in topological order, constants as initializers,
//! fresh value names. A thin layer over the message types of `onnx.proto`.

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// A value of the graph: its name and shape. The batch dimension is `None` where it is dynamic.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub name: String,
    pub batch: Option<usize>,
    /// The dimensions after the batch.
    pub dims: Vec<usize>,
}

impl Value {
    pub fn with(&self, name: String, dims: Vec<usize>) -> Value {
        Value { name, batch: self.batch, dims }
    }

    /// The batch as a Reshape target: the static size, or 0 (ONNX's "keep this dimension").
    pub fn batch_dim(&self) -> i64 {
        self.batch.map_or(0, |b| b as i64)
    }
}

/// An attribute of a node.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

#[derive(Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Per hint, how many names were made from it.
    counts: std::collections::HashMap<String, usize>,
    used: std::collections::HashSet<String>,
}

impl Graph {
    /// A name not used before: `hint`, else `hint_1`, `hint_2`, … (skipping names that hints
    /// ending in a number took).
    pub fn fresh(&mut self, hint: &str) -> String {
        loop {
            let n = self.counts.entry(hint.to_string()).or_insert(0);
            let name = if *n == 0 { hint.to_string() } else { format!("{hint}_{n}") };
            *n += 1;
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// Adds a node with one output named from `hint`; returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, hint: &str) -> String {
        self.node_n(op, inputs, attrs, &[hint]).remove(0)
    }

    /// Adds a node with one output per hint.
    pub fn node_n(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, hints: &[&str]) -> Vec<String> {
        let outputs: Vec<String> = hints.iter().map(|h| self.fresh(h)).collect();
        let name = self.fresh(&format!("{op}_node"));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name: Some(name),
            op_type: Some(op.to_string()),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
        outputs
    }

    /// A float constant (an initializer).
    pub fn f32s(&mut self, hint: &str, dims: &[usize], data: Vec<f32>) -> String {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{hint}: {dims:?}");
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }

    /// A double constant.
    pub fn f64s(&mut self, hint: &str, dims: &[usize], data: Vec<f64>) -> String {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{hint}: {dims:?}");
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Double as i32),
            raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }

    /// An int64 constant (shapes, axes, indices).
    pub fn i64s(&mut self, hint: &str, dims: &[usize], data: Vec<i64>) -> String {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{hint}: {dims:?}");
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Int64 as i32),
            raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }

    /// A 1-D int64 constant.
    pub fn ints(&mut self, hint: &str, data: &[i64]) -> String {
        self.i64s(hint, &[data.len()], data.to_vec())
    }

    /// A float scalar.
    pub fn scalar(&mut self, hint: &str, v: f32) -> String {
        self.f32s(hint, &[], vec![v])
    }

    /// `x` reshaped to `shape` (0 keeps the input's dimension, −1 takes what is left).
    pub fn reshape(&mut self, x: &str, shape: &[i64], hint: &str) -> String {
        let s = self.ints(&format!("{hint}_shape"), shape);
        self.node("Reshape", &[x, &s], vec![], hint)
    }

    pub fn finish(self, name: &str, inputs: Vec<ValueInfoProto>, outputs: Vec<ValueInfoProto>) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: Some(name.to_string()),
            initializer: self.initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        }
    }
}

/// The declaration of a graph input or output: element type and dimensions, `None` for the
/// dynamic batch.
pub fn value_info(name: &str, elem: DataType, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
                None => tensor_shape_proto::dimension::Value::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attribute(name: &str, a: Attr) -> AttributeProto {
    let mut p = AttributeProto { name: Some(name.to_string()), ..Default::default() };
    match a {
        Attr::Int(i) => {
            p.r#type = Some(AttributeType::Int as i32);
            p.i = Some(i);
        }
        Attr::Ints(v) => {
            p.r#type = Some(AttributeType::Ints as i32);
            p.ints = v;
        }
        Attr::Float(f) => {
            p.r#type = Some(AttributeType::Float as i32);
            p.f = Some(f);
        }
        Attr::Str(s) => {
            p.r#type = Some(AttributeType::String as i32);
            p.s = Some(s.as_bytes().to_vec());
        }
    }
    p
}
