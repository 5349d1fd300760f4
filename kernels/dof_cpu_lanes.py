"""LLVM intrinsics for the CPU depth of field: a fused multiply-add, and the exact gathers' 8-lane steps
(`_near_taps8`, `_far_taps8`), one explicit vector step of CHUNK columns where LLVM's loops went scalar
(`kernels.dof_cpu`), and the exact far gather's step through all of a source row's offsets, its sums in registers
(`_far_taps8_offsets`)."""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from kernels.dof_cpu_common import CHUNK


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma), for loops whose `contract` fusion LLVM's vectoriser may lose: it
    multiplies before its shuffles and adds after them, then the two do not fuse, and the values differ."""
    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return a(a, b, c), codegen


_LANES = ir.VectorType(ir.FloatType(), CHUNK)
# The taps' own flags: none, the order written (their callers, `_UNFUSED`, neither reassociate nor fuse)
_IEEE: tuple[str, ...] = ()


def _lanes_at(context, builder, array_type, array, indices):
    """Pointer to CHUNK floats from array[indices] on (the last axis must be contiguous: rows of C arrays)."""
    arr = context.make_array(array_type)(context, builder, array)
    shape = cgutils.unpack_tuple(builder, arr.shape, array_type.ndim)
    strides = cgutils.unpack_tuple(builder, arr.strides, array_type.ndim)
    index = [context.cast(builder, v, t, types.int64) for v, t in indices]
    ptr = cgutils.get_item_pointer2(context, builder, arr.data, shape, strides, array_type.layout, index,
                                    wraparound=False, boundscheck=False)
    return builder.bitcast(ptr, _LANES.as_pointer())


def _splat(builder, value):
    lanes = builder.insert_element(ir.Constant(_LANES, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(lanes, ir.Constant(_LANES, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), CHUNK), [0] * CHUNK))


def _lane_min(builder, a, b):
    """min(a, b) as Numba lowers it (b where b < a), ties and zero signs alike."""
    return builder.select(builder.fcmp_ordered("<", b, a), b, a)


def _lane_max(builder, a, b):
    return builder.select(builder.fcmp_ordered(">", b, a), b, a)


def _lane_clamp01(builder, v):
    """`_coverage` and `_share`'s clamp: min(max(v, 0), 1)."""
    return _lane_min(builder, _lane_max(builder, v, ir.Constant(_LANES, [0.0] * CHUNK)),
                     ir.Constant(_LANES, [1.0] * CHUNK))


def _accumulate4(context, builder, acc_type, acc, pre_type, pre, qy, p0, q0, w):
    """acc[ch, p0:p0 + CHUNK] += w * pre[ch, qy, q0:q0 + CHUNK] for ch < 4, as `_add_weighted4` adds them."""
    for ch in range(4):
        channel = (ir.Constant(ir.IntType(64), ch), types.int64)
        src = builder.load(_lanes_at(context, builder, pre_type, pre, [channel, qy, q0]), align=4)
        dst = _lanes_at(context, builder, acc_type, acc, [channel, p0])
        total = builder.fadd(builder.load(dst, align=4), builder.fmul(w, src, flags=_IEEE), flags=_IEEE)
        builder.store(total, dst, align=4)


@intrinsic
def _near_taps8(typingctx, near, pre, coc, exact_w, qy, p0, q0, edge):
    """`_near_taps` of the CHUNK receivers p0.. from the sources q0.. (all in the frame) as one 8-lane step: weight
    `_coverage(coc + edge) * exact_w`, the colours and the coverage added as the row stencils added them."""
    def codegen(context, builder, signature, args):
        near_t, pre_t, coc_t, ew_t, qy_t, p0_t, q0_t, edge_t = signature.args
        near_v, pre_v, coc_v, ew_v, qy_v, p0_v, q0_v, edge_v = args
        qy_i, p0_i, q0_i = (qy_v, qy_t), (p0_v, p0_t), (q0_v, q0_t)
        c = builder.load(_lanes_at(context, builder, coc_t, coc_v, [qy_i, q0_i]), align=4)
        ew = builder.load(_lanes_at(context, builder, ew_t, ew_v, [qy_i, q0_i]), align=4)
        edge32 = _splat(builder, context.cast(builder, edge_v, edge_t, types.float32))
        w = builder.fmul(_lane_clamp01(builder, builder.fadd(c, edge32, flags=_IEEE)), ew, flags=_IEEE)
        _accumulate4(context, builder, near_t, near_v, pre_t, pre_v, qy_i, p0_i, q0_i, w)
        cover = _lanes_at(context, builder, near_t, near_v, [(ir.Constant(ir.IntType(64), 4), types.int64), p0_i])
        builder.store(builder.fadd(builder.load(cover, align=4), w, flags=_IEEE), cover, align=4)
        return context.get_dummy_value()
    return types.void(near, pre, coc, exact_w, qy, p0, q0, edge), codegen


@intrinsic
def _far_taps8(typingctx, exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift):
    """`_far_taps` of the CHUNK receivers p0.. of row y from the sources q0.. of row qy (all in the frame) as one
    8-lane step. The weight's factors in `_far_taps`' order: (exact share x larger inverse area) x coverage;
    another order rounds differently."""
    def codegen(context, builder, signature, args):
        ex_t, pre_t, fr_t, ew_t, y_t, qy_t, p0_t, q0_t, edge_t, shift_t = signature.args
        ex_v, pre_v, fr_v, ew_v, y_v, qy_v, p0_v, q0_v, edge_v, shift_v = args
        y_i, qy_i, p0_i, q0_i = (y_v, y_t), (qy_v, qy_t), (p0_v, p0_t), (q0_v, q0_t)
        rq = builder.load(_lanes_at(context, builder, fr_t, fr_v, [qy_i, q0_i]), align=4)
        iaq = builder.load(_lanes_at(context, builder, ew_t, ew_v, [qy_i, q0_i]), align=4)
        rp = builder.load(_lanes_at(context, builder, fr_t, fr_v, [y_i, p0_i]), align=4)
        iap = builder.load(_lanes_at(context, builder, ew_t, ew_v, [y_i, p0_i]), align=4)
        shift32 = _splat(builder, context.cast(builder, shift_v, shift_t, types.float32))
        edge32 = _splat(builder, context.cast(builder, edge_v, edge_t, types.float32))
        share_q = _lane_clamp01(builder, builder.fsub(rq, shift32, flags=_IEEE))
        share_p = _lane_clamp01(builder, builder.fsub(rp, shift32, flags=_IEEE))
        exact_share = builder.fsub(ir.Constant(_LANES, [1.0] * CHUNK), builder.fmul(share_q, share_p, flags=_IEEE),
                                   flags=_IEEE)
        cover = _lane_clamp01(builder, builder.fadd(_lane_min(builder, rq, rp), edge32, flags=_IEEE))
        w = builder.fmul(builder.fmul(exact_share, _lane_max(builder, iaq, iap), flags=_IEEE), cover,
                         flags=_IEEE)
        _accumulate4(context, builder, ex_t, ex_v, pre_t, pre_v, qy_i, p0_i, q0_i, w)
        return context.get_dummy_value()
    return types.void(exact, pre, far_r, exact_w, y, qy, p0, q0, edge, shift), codegen


@intrinsic
def _far_taps8_offsets(typingctx, exact, pre, far_r, exact_w, y, qy, p0, dxs, edges, bits, n, k, shift):
    """`_far_taps8` of the CHUNK receivers p0.. of row y for each offset i < n whose bit k of `bits[i]` is set, in
    order: the sources dxs[i] columns on in row qy (all in the frame), at 1/2 - distance edges[i]. The four sums
    stay in registers across the offsets (loaded and stored once), the receivers' radius, inverse area and share
    are loaded once; the weight's factors and the sums as `_far_taps8` takes them: the same sums, bit for bit.
    `dxs`, `edges`, `bits`: contiguous."""
    def codegen(context, builder, signature, args):
        ex_t, pre_t, fr_t, ew_t, y_t, qy_t, p0_t, _, _, _, n_t, k_t, shift_t = signature.args
        ex_v, pre_v, fr_v, ew_v, y_v, qy_v, p0_v, dxs_v, edges_v, bits_v, n_v, k_v, shift_v = args
        y_i, qy_i, p0_i = (y_v, y_t), (qy_v, qy_t), (p0_v, p0_t)
        i64 = ir.IntType(64)
        rp = builder.load(_lanes_at(context, builder, fr_t, fr_v, [y_i, p0_i]), align=4)
        iap = builder.load(_lanes_at(context, builder, ew_t, ew_v, [y_i, p0_i]), align=4)
        shift32 = _splat(builder, context.cast(builder, shift_v, shift_t, types.float32))
        share_p = _lane_clamp01(builder, builder.fsub(rp, shift32, flags=_IEEE))
        sums, targets = [], []
        for ch in range(4):  # stack slots in the entry block: LLVM keeps them in registers
            target = _lanes_at(context, builder, ex_t, ex_v, [(ir.Constant(i64, ch), types.int64), p0_i])
            slot = cgutils.alloca_once(builder, _LANES)
            builder.store(builder.load(target, align=4), slot)
            sums.append(slot)
            targets.append(target)
        dxs_p, edges_p, bits_p = (context.make_array(t)(context, builder, v).data
                                  for t, v in zip(signature.args[7:10], (dxs_v, edges_v, bits_v)))
        k64 = context.cast(builder, k_v, k_t, types.int64)
        with cgutils.for_range(builder, context.cast(builder, n_v, n_t, types.int64)) as loop:
            i = loop.index
            bit = builder.and_(builder.lshr(builder.load(builder.gep(bits_p, [i])), k64), ir.Constant(i64, 1))
            with builder.if_then(builder.icmp_unsigned("!=", bit, ir.Constant(i64, 0))):
                dx = builder.load(builder.gep(dxs_p, [i]))
                q0_i = (builder.add(context.cast(builder, p0_v, p0_t, types.int64), dx), types.int64)
                edge32 = _splat(builder, builder.load(builder.gep(edges_p, [i])))
                rq = builder.load(_lanes_at(context, builder, fr_t, fr_v, [qy_i, q0_i]), align=4)
                iaq = builder.load(_lanes_at(context, builder, ew_t, ew_v, [qy_i, q0_i]), align=4)
                share_q = _lane_clamp01(builder, builder.fsub(rq, shift32, flags=_IEEE))
                exact_share = builder.fsub(ir.Constant(_LANES, [1.0] * CHUNK),
                                           builder.fmul(share_q, share_p, flags=_IEEE), flags=_IEEE)
                cover = _lane_clamp01(builder, builder.fadd(_lane_min(builder, rq, rp), edge32, flags=_IEEE))
                w = builder.fmul(builder.fmul(exact_share, _lane_max(builder, iaq, iap), flags=_IEEE), cover,
                                 flags=_IEEE)
                for ch in range(4):
                    src = builder.load(_lanes_at(context, builder, pre_t, pre_v,
                                                 [(ir.Constant(i64, ch), types.int64), qy_i, q0_i]), align=4)
                    total = builder.fadd(builder.load(sums[ch]), builder.fmul(w, src, flags=_IEEE), flags=_IEEE)
                    builder.store(total, sums[ch])
        for ch in range(4):
            builder.store(builder.load(sums[ch]), targets[ch], align=4)
        return context.get_dummy_value()
    return types.void(exact, pre, far_r, exact_w, y, qy, p0, dxs, edges, bits, n, k, shift), codegen
