"""A float64 reference of the ONNX ops eie imports, in numpy, written from the
ONNX operator definitions (and engine/FORMAT.md's ceil-mode pooling rule), so
the import tests compare eie with something that shares none of its code."""
import math

import numpy as np
from onnx import numpy_helper


def _pads(node_attrs, x_hw, kernel, strides, dilations):
    """(top, left, bottom, right) from pads or auto_pad."""
    auto = node_attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for d in range(2):
            o = -(-x_hw[d] // strides[d])
            total = max(0, (o - 1) * strides[d] + dilations[d] * (kernel[d] - 1) + 1 - x_hw[d])
            small = total // 2
            begin = small if auto == "SAME_UPPER" else total - small
            out.append((begin, total - begin))
        return out[0][0], out[1][0], out[0][1], out[1][1]
    if auto == "VALID":
        return 0, 0, 0, 0
    p = node_attrs.get("pads", [0, 0, 0, 0])
    return p[0], p[1], p[2], p[3]


def conv2d(x, w, b, strides, pads, dilations, group):
    n, c, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    t, l, bo, r = pads
    xp = np.zeros((n, c, h + t + bo, wd + l + r))
    xp[:, :, t:t + h, l:l + wd] = x
    ho = (h + t + bo - (dilations[0] * (kh - 1) + 1)) // strides[0] + 1
    wo = (wd + l + r - (dilations[1] * (kw - 1) + 1)) // strides[1] + 1
    y = np.zeros((n, cout, ho, wo))
    cout_g = cout // group
    for g in range(group):
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dilations[0], kx * dilations[1]
                patch = xp[:, g * cin_g:(g + 1) * cin_g,
                           y0:y0 + (ho - 1) * strides[0] + 1:strides[0],
                           x0:x0 + (wo - 1) * strides[1] + 1:strides[1]]
                wk = w[g * cout_g:(g + 1) * cout_g, :, ky, kx]
                y[:, g * cout_g:(g + 1) * cout_g] += np.einsum("ncij,oc->noij", patch, wk)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def _pool_out(size, pb, pe, k, s, ceil_mode):
    span = size + pb + pe - k
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and o > 1 and (o - 1) * s >= size + pb:
        o -= 1
    return o


def pool2d(x, kernel, strides, pads, ceil_mode, avg, count_include_pad):
    n, c, h, w = x.shape
    t, l, bo, r = pads
    ho = _pool_out(h, t, bo, kernel[0], strides[0], ceil_mode)
    wo = _pool_out(w, l, r, kernel[1], strides[1], ceil_mode)
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            ys, xs = i * strides[0] - t, j * strides[1] - l
            ye, xe = ys + kernel[0], xs + kernel[1]
            win = x[:, :, max(ys, 0):min(ye, h), max(xs, 0):min(xe, w)]
            if not avg:
                y[:, :, i, j] = win.max(axis=(2, 3))
                continue
            if count_include_pad:
                cnt = (min(ye, h + bo) - max(ys, -t)) * (min(xe, w + r) - max(xs, -l))
            else:
                cnt = win.shape[2] * win.shape[3]
            y[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return y


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def run(model, feeds):
    """Runs an ONNX ModelProto on float64 feeds {name: array}; returns {output name: array}."""
    g = model.graph
    v = {t.name: numpy_helper.to_array(t).astype(np.float64) if t.data_type in (1, 11)
         else numpy_helper.to_array(t) for t in g.initializer}
    v.update({k: np.asarray(a, dtype=np.float64) for k, a in feeds.items()})
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    for node in g.node:
        a = _attrs(node)
        i = [v[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            y = numpy_helper.to_array(a["value"])
            y = y.astype(np.float64) if y.dtype.kind == "f" else y
        elif op == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(i) > 2 and i[2] is not None:
                y = y + a.get("beta", 1.0) * i[2]
        elif op == "MatMul":
            y = i[0] @ i[1]
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Conv":
            w = i[1]
            kernel = list(w.shape[2:])
            strides = a.get("strides", [1, 1])
            dil = a.get("dilations", [1, 1])
            pads = _pads(a, i[0].shape[2:], kernel, strides, dil)
            y = conv2d(i[0], w, i[2] if len(i) > 2 else None, strides, pads, dil,
                       a.get("group", 1))
        elif op in ("MaxPool", "AveragePool"):
            k = a["kernel_shape"]
            strides = a.get("strides", [1, 1])
            pads = _pads(a, i[0].shape[2:], k, strides, [1, 1])
            y = pool2d(i[0], k, strides, pads, a.get("ceil_mode", 0), op == "AveragePool",
                       a.get("count_include_pad", 0))
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "BatchNormalization":
            x, s, bb, m, var = i
            sh = (1, -1) + (1,) * (x.ndim - 2)
            y = (x - m.reshape(sh)) / np.sqrt(var.reshape(sh) + a.get("epsilon", 1e-5)) \
                * s.reshape(sh) + bb.reshape(sh)
        elif op == "Concat":
            y = np.concatenate([t for t in i], axis=a["axis"])
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        elif op == "Tanh":
            y = np.tanh(i[0])
        elif op == "Softmax":
            ax = a.get("axis", -1 if opset >= 13 else 1)
            e = np.exp(i[0] - i[0].max(axis=ax, keepdims=True))
            y = e / e.sum(axis=ax, keepdims=True)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
        elif op == "Reshape":
            shape = [i[0].shape[d] if s == 0 else s for d, s in enumerate(i[1])]
            y = i[0].reshape(shape)
        elif op == "Squeeze":
            axes = a.get("axes") if "axes" in a else (list(i[1]) if len(i) > 1 else None)
            y = np.squeeze(i[0], axis=tuple(axes) if axes is not None else None)
        elif op == "Unsqueeze":
            axes = a.get("axes") if "axes" in a else list(i[1])
            y = i[0]
            for ax in sorted(ax % (i[0].ndim + len(axes)) for ax in axes):
                y = np.expand_dims(y, ax)
        elif op in ("Identity", "Dropout"):
            y = i[0]
        elif op == "Shape":
            y = np.array(i[0].shape, dtype=np.int64)
        elif op == "Gather":
            y = np.take(i[0], i[1], axis=a.get("axis", 0))
        elif op == "Transpose":
            y = np.transpose(i[0], a.get("perm"))
        else:
            raise NotImplementedError(op)
        v[node.output[0]] = y
    return {o.name: v[o.name] for o in g.output}


def nonzero_distinct(w):
    """Distinct nonzero float32 values of w."""
    w = np.asarray(w, dtype=np.float32).ravel()
    return len(set(w[w != 0].tolist()))


def min_bits(distinct):
    """The fewest code bits whose codebook holds distinct values besides code 0."""
    return max(1, math.ceil(math.log2(distinct + 1)))
