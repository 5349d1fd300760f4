"""Give a batch-1 ONNX export a real, dynamic batch dimension.

The TCMonoDepth file was exported from PyTorch with batch size 1 traced into it: its channel-shuffle
blocks reshape with constant shapes such as [24, 2, 3840] and [2, 24, 48, 80], and its decoder's
Resize nodes take constant output sizes [1, C, H, W]. ONNX Runtime therefore rejects any other batch,
and the pipeline has to run a "batch" of frames as a loop of single calls. Batching frames on the GPU
(or CPU) needs a graph that is correct for any N, which `make_batch_dynamic` produces by rewriting
exactly the patterns it can prove batch-independent and refusing everything else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

BATCH = "N"

# Ops that act on each sample separately whatever their attributes: the batch axis only passes through.
_PER_SAMPLE = {
    "Abs", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip", "Conv", "ConvTranspose",
    "DepthToSpace", "Dropout", "Elu", "Erf", "Exp", "Floor", "GlobalAveragePool", "GlobalMaxPool",
    "HardSigmoid", "HardSwish", "Identity", "InstanceNormalization", "LeakyRelu", "Log", "LRN",
    "MaxPool", "Mish", "Neg", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Softplus", "Softsign",
    "SpaceToDepth", "Sqrt", "Tanh",
}
# Broadcasting element-wise ops: batch-independent unless a constant operand carries the batch axis.
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Where",
                "Equal", "Greater", "Less", "And", "Or"}
# Ops with an `axis` (or `axes`) that must not touch the batch axis.
_AXIS_OPS = {"Concat", "Split", "Softmax", "LogSoftmax", "Flatten", "ArgMax", "ArgMin"}
_REDUCE_OPS = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum"}


def make_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose batch dimension is dynamic (the symbolic dim `N`).

    Rewrites channel-shuffle Reshape/Transpose/Reshape/Split blocks and Resize nodes with constant
    `sizes`; raises ValueError naming the node for any batch-1 constant or batch-mixing op it cannot
    prove correct for every N. A model whose inputs already have a dynamic batch comes back as a copy.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    firsts = [_first_dim(v) for v in inputs]
    if all(d is None for d in firsts):
        return out  # already dynamic (or unknown): nothing baked in to rewrite
    if any(d != 1 for d in firsts) or any(_first_dim(o) != 1 for o in graph.output):
        raise ValueError(f"make_batch_dynamic needs every graph input and output to have batch 1; "
                         f"got inputs {[_dims(v) for v in inputs]}, outputs {[_dims(o) for o in graph.output]}")

    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 11:
        raise ValueError(f"opset {opset} is not supported (needs 11 or later)")
    # Shapes of the batch-1 graph: pattern checks compare constants against the real tensor shapes.
    shapes = _shapes(out)
    rewrite = _Rewriter(graph, opset, shapes)
    rewrite.run()

    for value in list(graph.input) + list(graph.output):
        if value.name not in init_names:
            value.type.tensor_type.shape.dim[0].Clear()
            value.type.tensor_type.shape.dim[0].dim_param = BATCH
    # Every intermediate shape recorded at batch 1 is stale now; ONNX Runtime infers them again.
    del graph.value_info[:]
    onnx.checker.check_model(out, full_check=True)
    return out


def _first_dim(value: onnx.ValueInfoProto) -> int | None:
    dims = value.type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") else None


def _dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value.type.tensor_type.shape.dim]


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_int", "value_ints", "value_float", "value_floats"):
            return np.array(helper.get_attribute_value(attr))
    return None


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


@dataclass
class _Shuffle:
    """A channel shuffle: Reshape(x, [C/g, g, HW]) -> Transpose(1,0,2) -> Reshape([g, C/g, H, W]) -> Split(axis 0)."""
    first: onnx.NodeProto
    transpose: onnx.NodeProto
    second: onnx.NodeProto
    split: onnx.NodeProto
    groups: int
    channels: int
    height: int
    width: int


class _Rewriter:
    def __init__(self, graph: onnx.GraphProto, opset: int, shapes: dict[str, tuple[int, ...]]) -> None:
        self.graph, self.opset, self.shapes = graph, opset, shapes
        # Detached copies: edited freely here, then written back in one go (node identity stays stable).
        self.nodes: list[onnx.NodeProto] = []
        for node in graph.node:
            self.nodes.append(onnx.NodeProto())
            self.nodes[-1].CopyFrom(node)
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in self.nodes:
            value = _constant_value(node) if node.op_type == "Constant" else None
            if value is not None:
                self.consts[node.output[0]] = value
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in graph.output}
        self.created: dict[tuple[str, str], str] = {}
        self.replaced: set[str] = set()
        self.names = {n.name for n in self.nodes} | {t.name for t in graph.initializer} | \
            {o for n in self.nodes for o in n.output} | {i.name for i in graph.input}

    def run(self) -> None:
        shuffles = {}
        for node in self.nodes:
            if node.op_type == "Reshape" and id(node) not in shuffles and not self._keeps_batch(node):
                shuffle = self._match_shuffle(node)
                for part in (shuffle.first, shuffle.transpose, shuffle.second, shuffle.split):
                    shuffles[id(part)] = shuffle
        new_nodes: list[onnx.NodeProto] = []
        for node in self.nodes:
            if id(node) in shuffles:
                new_nodes += self._rewrite_shuffle_part(node, shuffles[id(node)])
            elif node.op_type == "Reshape":
                new_nodes.append(node)  # a [0, ...] reshape, checked above
            elif node.op_type == "Resize":
                new_nodes += self._rewrite_resize(node)
            else:
                self._check_batch_independent(node)
                new_nodes.append(node)
        new_nodes = self._drop_unused_constants(new_nodes)
        del self.graph.node[:]
        self.graph.node.extend(new_nodes)

    # --- channel shuffle -------------------------------------------------------------------------
    def _sole_consumer(self, node: onnx.NodeProto, op_type: str) -> onnx.NodeProto | None:
        users = self.consumers.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == op_type and node.output[0] not in self.outputs:
            return users[0]
        return None

    def _match_shuffle(self, first: onnx.NodeProto) -> _Shuffle:
        def fail(why: str) -> ValueError:
            return ValueError(f"Reshape node {first.name!r} has a batch-dependent shape that matches no known "
                              f"pattern ({why}); refusing to guess how it behaves for batch N")

        shape = self.consts.get(first.input[1])
        if shape is None:
            raise fail("its shape is computed at run time, so it cannot be checked")
        shape = [int(v) for v in shape]
        in_shape = self.shapes.get(first.input[0])
        if in_shape is None or len(in_shape) != 4 or in_shape[0] != 1 or len(shape) != 3:
            raise fail(f"input shape {in_shape}, target {shape}")
        _, channels, height, width = in_shape
        groups = shape[1]
        if groups < 2 or channels % groups or shape != [channels // groups, groups, height * width]:
            raise fail(f"target {shape} is not [C/g, g, H*W] for input {list(in_shape)}")
        transpose = self._sole_consumer(first, "Transpose")
        if transpose is None or list(_attr(transpose, "perm", [])) != [1, 0, 2]:
            raise fail("not followed by Transpose(perm=[1, 0, 2])")
        second = self._sole_consumer(transpose, "Reshape")
        second_shape = self.consts.get(second.input[1]) if second is not None else None
        if second_shape is None or [int(v) for v in second_shape] != [groups, channels // groups, height, width]:
            raise fail(f"the Transpose is not followed by a Reshape to [{groups}, {channels // groups}, "
                       f"{height}, {width}]")
        split = self._sole_consumer(second, "Split")
        if split is None or _attr(split, "axis", 0) != 0 or len(split.output) != groups:
            raise fail(f"the second Reshape is not followed by a Split on axis 0 into {groups} outputs")
        sizes = _attr(split, "split")
        if sizes is None and len(split.input) > 1 and split.input[1]:
            sizes = self.consts.get(split.input[1])
            if sizes is None:
                raise fail("the Split sizes are computed at run time")
        if sizes is not None and [int(v) for v in sizes] != [1] * groups:
            raise fail(f"the Split sizes are {list(sizes)}, not {[1] * groups}")
        return _Shuffle(first, transpose, second, split, groups, channels, height, width)

    def _keeps_batch(self, reshape: onnx.NodeProto) -> bool:
        """A target shape [0, ...] copies the batch dimension (unless allowzero=1) and regroups each
        sample's contiguous block on its own: correct for any N as it is."""
        shape = self.consts.get(reshape.input[1])
        return (shape is not None and shape.ndim == 1 and shape.size > 0 and int(shape[0]) == 0
                and not _attr(reshape, "allowzero", 0))

    def _rewrite_shuffle_part(self, node: onnx.NodeProto, s: _Shuffle) -> list[onnx.NodeProto]:
        # Why this is exact for every N (row-major memory order; p = h*W + w, c = k*g + j, k < C/g, j < g):
        #   x[n, c, p] sits at ((n*C + c)*HW + p) = (((n*C/g + k)*g + j)*HW + p)
        #   Reshape [-1, g, HW]:  -1 = N*C*HW / (g*HW) = N*C/g, so that element is a[n*C/g + k, j, p]
        #   Transpose (1,0,2):    t[j, n*C/g + k, p], at ((j*N*C/g + n*C/g + k)*HW + p)
        #                                           = (((j*N + n)*C/g + k)*HW + p)
        #   Reshape [g, -1, C/g, H, W]: -1 = N, so that element is b[j, n, k, h, w]
        # Hence b[j, n, k] = x[n, k*g + j]: each sample's channels are shuffled among themselves and no
        # sample is mixed with another. Split(axis 0) + Squeeze(0) gives y_j[n, k] = x[n, k*g + j], which
        # for N = 1 is exactly the original's y_j[0, k] (there the j axis stood in for the batch axis,
        # which is why the exported 4-D reshape only works for N = 1).
        if node is s.first:
            node.input[1] = self._new_shape(node.input[1], "dynbatch3", [-1, s.groups, s.height * s.width])
            return [node]
        if node is s.second:
            node.input[1] = self._new_shape(node.input[1], "dynbatch5",
                                            [s.groups, -1, s.channels // s.groups, s.height, s.width])
            return [node]
        if node is s.transpose:
            return [node]
        # The Split now yields [1, N, C/g, H, W]; squeeze the group axis so consumers see N x C/g x H x W.
        squeezes = []
        for i, name in enumerate(list(node.output)):
            grouped = self._unique(f"{name}_grouped")
            node.output[i] = grouped
            squeeze_name = self._unique(f"{node.name or name}/Squeeze_{i}")
            if self.opset >= 13:
                axes = self._new_shape("", "squeeze_axes0", [0])
                squeezes.append(helper.make_node("Squeeze", [grouped, axes], [name], name=squeeze_name))
            else:
                squeezes.append(helper.make_node("Squeeze", [grouped], [name], name=squeeze_name, axes=[0]))
        return [node] + squeezes

    # --- Resize ------------------------------------------------------------------------------------
    def _rewrite_resize(self, node: onnx.NodeProto) -> list[onnx.NodeProto]:
        def fail(why: str) -> ValueError:
            return ValueError(f"Resize node {node.name!r} {why}; cannot make it correct for batch N")

        if _attr(node, "coordinate_transformation_mode", b"half_pixel") == b"tf_crop_and_resize":
            raise fail("uses tf_crop_and_resize (its roi covers the batch axis)")
        if _attr(node, "axes") is not None:
            raise fail("uses the `axes` attribute")
        scales_name = node.input[2] if len(node.input) > 2 else ""
        sizes_name = node.input[3] if len(node.input) > 3 else ""
        if sizes_name:
            sizes = self.consts.get(sizes_name)
            if sizes is None:
                raise fail("has sizes computed at run time")
            in_shape = self.shapes.get(node.input[0])
            if in_shape is None or len(sizes) != len(in_shape) or int(sizes[0]) != 1 or in_shape[0] != 1:
                raise fail(f"has sizes {list(sizes)} for input shape {in_shape}")
            # sizes[0] = X.shape[0] keeps the batch axis untouched (scale 1), as the baked 1 did for
            # X.shape[0] = 1; the other sizes, and so the per-sample resampling, are unchanged.
            base = node.name or node.output[0]
            shape, batch, new_sizes = (self._unique(f"{base}/{s}") for s in ("input_shape", "batch", "sizes"))
            start, end = self._new_shape("", "slice_start0", [0]), self._new_shape("", "slice_end1", [1])
            rest = self._new_shape(sizes_name, "dynbatch_rest", [int(v) for v in sizes[1:]])
            node.input[3] = new_sizes
            return [helper.make_node("Shape", [node.input[0]], [shape], name=shape),
                    helper.make_node("Slice", [shape, start, end], [batch], name=batch),
                    helper.make_node("Concat", [batch, rest], [new_sizes], name=new_sizes, axis=0),
                    node]
        scales = self.consts.get(scales_name) if scales_name else None
        if scales is None or len(scales) == 0 or float(scales[0]) != 1.0:
            raise fail(f"has scales {None if scales is None else list(scales)} (need a constant with 1 for batch)")
        return [node]  # scales [1, ...] are batch-independent already

    # --- everything else -----------------------------------------------------------------------------
    def _check_batch_independent(self, node: onnx.NodeProto) -> None:
        def fail(why: str) -> ValueError:
            return ValueError(f"node {node.name!r} ({node.op_type}) {why}; cannot make the graph correct for "
                              f"batch N")

        op = node.op_type
        if op == "Constant" or op in _PER_SAMPLE:
            return
        rank = len(self.shapes.get(node.output[0], ())) if node.output else 0
        if op in _ELEMENTWISE:
            # A full-rank constant broadcasts over the batch only if its leading dimension is 1.
            for name in node.input:
                value = self.consts.get(name)
                if value is not None and rank and value.ndim == rank and value.shape[0] != 1:
                    raise fail(f"has a constant operand {name!r} of shape {list(value.shape)} along the batch axis")
            return
        if op in _AXIS_OPS:
            default = {"Softmax": 1 if self.opset < 13 else -1, "LogSoftmax": 1 if self.opset < 13 else -1,
                       "Flatten": 1}.get(op, 0)
            in_rank = len(self.shapes.get(node.input[0], ()))
            axis = int(_attr(node, "axis", default))
            if not in_rank or axis % in_rank == 0:
                raise fail(f"works along the batch axis (axis {axis}) or on a tensor of unknown rank")
            if op == "Concat" and any(name in self.consts for name in node.input):
                raise fail("concatenates a constant (its batch size is fixed)")
            return
        if op == "Transpose":
            perm = _attr(node, "perm")
            if perm is None or perm[0] != 0:
                raise fail(f"moves the batch axis (perm {perm})")
            return
        if op in _REDUCE_OPS or op in ("Squeeze", "Unsqueeze"):
            axes = _attr(node, "axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = self.consts.get(node.input[1])
            # Unsqueeze's axes index its output, the others' their input.
            axes_rank = rank if op == "Unsqueeze" else len(self.shapes.get(node.input[0], ()))
            if axes is None or not axes_rank:
                raise fail("has axes that cannot be checked (none given, or computed at run time)")
            if any(int(a) % axes_rank == 0 for a in axes):
                raise fail(f"touches the batch axis (axes {list(axes)})")
            return
        raise fail("is not known to be batch-independent")

    # --- helpers ---------------------------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        candidate, i = name, 1
        while candidate in self.names:
            candidate, i = f"{name}_{i}", i + 1
        self.names.add(candidate)
        return candidate

    def _new_shape(self, old: str, tag: str, values: list[int]) -> str:
        """The name of an int64 initializer holding `values`, made once per (old name, tag)."""
        key = (old, tag)
        if key not in self.created:
            name = self._unique(f"{old}_{tag}" if old else f"dynamic_batch_{tag}")
            array = np.array(values, dtype=np.int64)
            self.graph.initializer.append(numpy_helper.from_array(array, name))
            self.consts[name] = array
            self.created[key] = name
            if old:
                self.replaced.add(old)
        return self.created[key]

    def _drop_unused_constants(self, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
        """Remove the batch-1 constants the rewrite replaced, where nothing else still reads them."""
        used = {name for node in nodes for name in node.input} | self.outputs
        dead = self.replaced - used
        kept = [t for t in self.graph.initializer if t.name not in dead]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        return [n for n in nodes if not (n.op_type == "Constant" and n.output[0] in dead)]
