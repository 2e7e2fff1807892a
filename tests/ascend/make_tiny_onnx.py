"""Writes tests/ascend/tiny-encoder.onnx.b64 (the graph as base64 text: no model file is
committed; run.sh decodes it), the self-test's stand-in for dbrt's Ascend graph:
inputs hidden [1,S,8] and mask [1,S] (S symbolic), output last_hidden [1,S,8] =
    2 * hidden + mask[..., None] * sum over s of (mask[s] * hidden[s])
so every real row depends on every other real row and on the mask, and padding rows (mask 0)
leave the real rows alone. Run with a Python that has `onnx` (e.g. .venv-qnn/bin/python)."""
import base64
import os
import onnx
from onnx import TensorProto, helper

H = 8
axes_last = helper.make_tensor("axes_last", TensorProto.INT64, [1], [-1])
axes_seq = helper.make_tensor("axes_seq", TensorProto.INT64, [1], [1])
two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
nodes = [
    helper.make_node("Unsqueeze", ["mask", "axes_last"], ["m3"]),  # [1,S,1]
    helper.make_node("Mul", ["hidden", "m3"], ["masked"]),  # [1,S,H]
    helper.make_node("ReduceSum", ["masked", "axes_seq"], ["total"], keepdims=1),  # [1,1,H]
    helper.make_node("Mul", ["m3", "total"], ["spread"]),  # [1,S,H]
    helper.make_node("Mul", ["hidden", "two"], ["doubled"]),
    helper.make_node("Add", ["doubled", "spread"], ["last_hidden"]),
]
graph = helper.make_graph(
    nodes, "tiny-encoder",
    [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [1, "S", H]),
     helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, "S"])],
    [helper.make_tensor_value_info("last_hidden", TensorProto.FLOAT, [1, "S", H])],
    initializer=[axes_last, axes_seq, two])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="dbrt-tests")
model.ir_version = 8
onnx.checker.check_model(model)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny-encoder.onnx.b64")
with open(out, "w") as f:
    f.write(base64.encodebytes(model.SerializeToString()).decode())
print(out)
