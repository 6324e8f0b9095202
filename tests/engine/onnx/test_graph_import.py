"""Exact ONNX import to a graph: models of every supported op and attribute are
built here with python3-onnx, converted with `eiectl import`, read back with
eie-graph-dump (public accessors, dense reference, cpu backend) and compared
with the ONNX file: names, datatypes and shapes, every weight bit for bit,
outputs within 1e-5 of a float64 numpy reference; import -> export -> import
is byte-identical; each refused op or attribute names node, op and attribute."""
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graph_reference as ref  # noqa: E402

BUILD = os.environ.get("EIE_BUILD_ROOT",
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../build"))
EIECTL = os.path.join(BUILD, "client", "eiectl")
DUMP = os.path.join(BUILD, "tests", "engine", "onnx", "eie-graph-dump")
RTOL = 1e-5


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, inits, opset=13, doc=""):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="test", doc_string=doc)
    m.ir_version = 8
    return m


def convnet(rng):
    """Conv with asymmetric pads and dilation with stride, BN folding, ceil-mode
    max pooling, grouped SAME_UPPER conv with a bias Add, average pooling with
    count_include_pad both ways, concat, SAME_LOWER conv, residual add, global
    average pooling, Gemm with alpha/beta then BN over features, softmax."""
    w = {
        "c1.w": f32(rng, 6, 3, 3, 3), "c1.b": f32(rng, 6),
        "bn1.s": f32(rng, 6), "bn1.b": f32(rng, 6), "bn1.m": f32(rng, 6),
        "bn1.v": np.abs(f32(rng, 6)) + 0.5,
        "c2.w": f32(rng, 8, 3, 2, 2), "c2.bias": f32(rng, 1, 8, 1, 1),
        "c3.w": f32(rng, 16, 16, 2, 2, scale=0.3), "c3.b": f32(rng, 16),
        "fc.w": f32(rng, 10, 16), "fc.c": f32(rng, 10),
        "bn2.s": f32(rng, 10), "bn2.b": f32(rng, 10), "bn2.m": f32(rng, 10),
        "bn2.v": np.abs(f32(rng, 10)) + 0.5,
    }
    nodes = [
        helper.make_node("Conv", ["image", "c1.w", "c1.b"], ["c1"], name="conv1",
                         pads=[1, 0, 2, 1], strides=[2, 1], dilations=[2, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn1.s", "bn1.b", "bn1.m", "bn1.v"],
                         ["bn1"], name="bn1", epsilon=1e-3),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("Conv", ["p1", "c2.w"], ["c2"], name="conv2", group=2,
                         auto_pad="SAME_UPPER", kernel_shape=[2, 2]),
        helper.make_node("Add", ["c2", "c2.bias"], ["c2b"], name="conv2_bias"),
        helper.make_node("AveragePool", ["c2b"], ["a1"], name="avg_incl", kernel_shape=[2, 3],
                         strides=[1, 2], pads=[1, 1, 0, 1], count_include_pad=1),
        helper.make_node("AveragePool", ["c2b"], ["a2"], name="avg_excl", kernel_shape=[2, 3],
                         strides=[1, 2], pads=[1, 1, 0, 0], count_include_pad=0, ceil_mode=1),
        helper.make_node("Concat", ["a1", "a2"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "c3.w", "c3.b"], ["c3"], name="conv3",
                         auto_pad="SAME_LOWER"),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Add", ["r3", "cat"], ["res"], name="residual"),
        helper.make_node("GlobalAveragePool", ["res"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.c"], ["fc"], name="fc", transB=1,
                         alpha=0.5, beta=2.0),
        helper.make_node("BatchNormalization", ["fc", "bn2.s", "bn2.b", "bn2.m", "bn2.v"],
                         ["bn2"], name="bn2"),
        helper.make_node("Softmax", ["bn2"], ["probs"], name="softmax", axis=-1),
    ]
    m = model(nodes, [vi("image", ["N", 3, 11, 10])],
              [vi("probs", ["N", 10]), vi("res", ["N", 16, 3, 3])],
              [init(k, v) for k, v in w.items()], doc="a test convnet")
    return m, {"image": f32(rng, 3, 3, 11, 10)}


def two_inputs(rng):
    """Two inputs and two outputs: MatMul + Add, Gemm (transB 0) on a transposed
    constant, Constant nodes (a bias, a shape), Identity of a weight, Dropout,
    Tanh, Sigmoid, element-wise Add, Concat, Reshape with 0 and -1, Unsqueeze,
    Squeeze, Softmax over an inner axis, Identity output."""
    ba = f32(rng, 6)
    w = {"wa": f32(rng, 4, 6), "wb_t": f32(rng, 6, 6), "ax": np.array([2], dtype=np.int64)}
    nodes = [
        helper.make_node("Constant", [], ["ba"], name="bias_a", value=init("ba", ba)),
        helper.make_node("Constant", [], ["shape"], name="shape",
                         value=init("shape", np.array([0, 3, -1], dtype=np.int64))),
        helper.make_node("Identity", ["wa"], ["wa_shared"], name="shared_weight"),
        helper.make_node("MatMul", ["a", "wa_shared"], ["ma"], name="fa"),
        helper.make_node("Add", ["ba", "ma"], ["ab"], name="fa_bias"),
        helper.make_node("Tanh", ["ab"], ["ta"], name="tanh"),
        helper.make_node("Dropout", ["ta"], ["ta_d"], name="drop"),
        helper.make_node("Flatten", ["b"], ["fb"], name="flat_b"),
        helper.make_node("Transpose", ["wb_t"], ["wb"], name="tr", perm=[1, 0]),
        helper.make_node("Gemm", ["fb", "wb"], ["gb"], name="fb"),
        helper.make_node("Sigmoid", ["gb"], ["sb"], name="sig"),
        helper.make_node("Add", ["ta_d", "sb"], ["sum"], name="sum"),
        helper.make_node("Concat", ["ta_d", "sum"], ["cat"], name="cat", axis=-1),
        helper.make_node("Reshape", ["cat", "shape"], ["r"], name="reshape"),
        helper.make_node("Unsqueeze", ["r", "ax"], ["u"], name="unsq"),
        helper.make_node("Squeeze", ["u", "ax"], ["s"], name="sq"),
        helper.make_node("Softmax", ["s"], ["dist"], name="softmax", axis=2),
        helper.make_node("Identity", ["sum"], ["aux"], name="aux"),
    ]
    m = model(nodes, [vi("a", ["batch", 4]), vi("b", ["batch", 2, 3])],
              [vi("dist", ["batch", 3, 4]), vi("aux", ["batch", 6])],
              [init(k, v) for k, v in w.items()])
    return m, {"a": f32(rng, 4, 4), "b": f32(rng, 4, 2, 3)}


def quantized(rng):
    """Storage choice: 5 distinct nonzeros (3-bit codebook), exactly 255 (8 bits),
    over 255 (exact), one value (1 bit); a fixed batch of 1, VALID padding."""
    w5 = rng.choice(np.array([0, -0.5, -0.25, 0.25, 0.5, 1.0], np.float32), (4, 1, 3, 3))
    w5[0, 0, 0, :] = [-0.5, -0.25, 0.25]
    w5[1, 0, 0, :] = [0.5, 1.0, 0.0]
    w255 = np.zeros(8 * 4 * 3 * 3, np.float32)
    w255[:255] = (np.arange(1, 256, dtype=np.float32) / 64.0 - 2.0).astype(np.float32)
    w255[w255 == 0] = 3.0
    w255 = rng.permutation(w255).reshape(8, 4, 3, 3)
    wexact = f32(rng, 300, 8, scale=0.02)
    w1 = np.where(rng.random((300, 2)) < 0.3, 0.0, 0.125).astype(np.float32)
    w = {"w5": w5, "w255": w255, "wx": wexact, "w1": w1}
    nodes = [
        helper.make_node("Conv", ["x", "w5"], ["q5"], name="q5", auto_pad="VALID"),
        helper.make_node("Conv", ["q5", "w255"], ["q255"], name="q255", strides=[2, 2]),
        helper.make_node("Flatten", ["q255"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wx"], ["gx"], name="exact", transB=1),
        helper.make_node("Relu", ["gx"], ["rx"], name="relu"),
        helper.make_node("MatMul", ["rx", "w1"], ["m1"], name="one_bit"),
        helper.make_node("Sigmoid", ["m1"], ["y"], name="sig"),
    ]
    m = model(nodes, [vi("x", [1, 1, 6, 6])], [vi("y", [1, 2]), vi("q255", [1, 8, 1, 1])],
              [init(k, v) for k, v in w.items()], opset=11)
    return m, {"x": f32(rng, 1, 1, 6, 6)}


def torch_view(rng):
    """PyTorch's x.view(x.size(0), -1): Shape, Gather, Unsqueeze and Concat
    folded into the Reshape's target, the batch copied."""
    w = {"cw": f32(rng, 4, 2, 3, 3), "fw": f32(rng, 5, 4 * 3 * 3),
         "zero": np.array(0, dtype=np.int64), "ax0": np.array([0], dtype=np.int64)}
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Shape", ["c"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"),
        helper.make_node("Constant", [], ["minus1"], name="minus1",
                         value=init("minus1", np.array([-1], dtype=np.int64))),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["c", "target"], ["flat"], name="view"),
        helper.make_node("Gemm", ["flat", "fw"], ["y"], name="fc", transB=1),
    ]
    m = model(nodes, [vi("x", ["N", 2, 3, 3])], [vi("y", ["N", 5])],
              [init(k, v) for k, v in w.items()])
    return m, {"x": f32(rng, 2, 2, 3, 3)}


def expected_layers(m):
    """{node name: (float32 weights rows x cols, float32 bias)} following the
    importer's folds in float64, from the ONNX weights."""
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    by_out, layers = {}, {}
    for n in m.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(a["value"])
        if n.op_type == "Transpose" and n.input[0] in consts:
            consts[n.output[0]] = consts[n.input[0]].T
        elif n.op_type == "Identity" and n.input[0] in consts:
            consts[n.output[0]] = consts[n.input[0]]
        elif n.op_type in ("Gemm", "MatMul", "Conv"):
            b = consts[n.input[1]].astype(np.float64)
            if n.op_type == "Conv":
                w = b.reshape(b.shape[0], -1)
            elif n.op_type == "Gemm" and a.get("transB", 0):
                w = a.get("alpha", 1.0) * b
            else:
                w = np.float64(a.get("alpha", 1.0)) * b.T
            bias = np.zeros(w.shape[0])
            if len(n.input) > 2:
                c = consts[n.input[2]].astype(np.float64).ravel()
                bias = bias + np.float64(a.get("beta", 1.0)) * c
            layers[n.name] = [w, bias]
            by_out[n.output[0]] = n.name
        elif n.op_type == "Add" and (set(n.input) & set(by_out)) and \
                (set(n.input) & set(consts)):
            name = by_out[[i for i in n.input if i in by_out][0]]
            c = consts[[i for i in n.input if i in consts][0]].astype(np.float64).ravel()
            layers[name][1] = layers[name][1] + c
            by_out[n.output[0]] = name
        elif n.op_type == "BatchNormalization" and n.input[0] in by_out:
            name = by_out[n.input[0]]
            s, bb, mean, var = (consts[i].astype(np.float64) for i in n.input[1:])
            eps = np.float64(np.float32(a.get("epsilon", 1e-5)))
            f = s / np.sqrt(var + eps)
            layers[name][0] = layers[name][0] * f[:, None]
            layers[name][1] = f * (layers[name][1] - mean) + bb
            by_out[n.output[0]] = name
    return {k: (w.astype(np.float32), b.astype(np.float32)) for k, (w, b) in layers.items()}


def onnx_io(vals):
    out = []
    for v in vals:
        dims = [d.dim_value if d.HasField("dim_value") else -1
                for d in v.type.tensor_type.shape.dim]
        out.append({"name": v.name, "dtype": "FP32", "shape": dims})
    return out


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


class GraphImportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def import_model(self, m, stem, *extra):
        onnx.checker.check_model(m)
        src = self.path(stem + ".onnx")
        onnx.save(m, src)
        out = self.path(stem + ".eie")
        r = run(EIECTL, "import", src, "-o", out, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out, r.stdout

    def dump(self, eie, feeds=None, order=()):
        d = self.path("dump-" + os.path.basename(eie))
        os.makedirs(d, exist_ok=True)
        args = [DUMP, eie, d]
        batch = 0
        if feeds:
            batch = next(iter(feeds.values())).shape[0]
            args += ["--run", str(batch)]
            for k, name in enumerate(order):
                p = os.path.join(d, "in%d.f32" % k)
                feeds[name].astype("<f4").tofile(p)
                args.append(p)
        r = run(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(d, "model.json")) as f:
            info = json.load(f)
        info["dir"] = d
        return info

    def check_case(self, build, stem):
        m, feeds = build(np.random.default_rng(7))
        eie, stdout = self.import_model(m, stem)
        info = self.dump(eie, feeds, [i.name for i in m.graph.input
                                      if i.name not in {t.name for t in m.graph.initializer}])
        # Names, datatypes and full shapes of the graph inputs and outputs survive.
        self.assertEqual(info["name"], stem)
        self.assertEqual(info["inputs"], onnx_io(m.graph.input))
        self.assertEqual(info["outputs"], onnx_io(m.graph.output))
        # Every sparse layer: the ONNX weights (folds in float64, rounded once), bit for bit.
        want = expected_layers(m)
        got = {n["name"]: (i, n) for i, n in enumerate(info["nodes"])
               if n["kind"] in ("fc", "conv2d")}
        self.assertEqual(sorted(got), sorted(want))
        for name, (w, b) in want.items():
            i, node = got[name]
            dw = np.fromfile(os.path.join(info["dir"], "w%d.f32" % i), "<f4")
            db = np.fromfile(os.path.join(info["dir"], "b%d.f32" % i), "<f4")
            self.assertEqual((node["rows"], node["cols"]), w.shape, name)
            np.testing.assert_array_equal(dw.view("<u4"), w.ravel().view("<u4"), name)
            np.testing.assert_array_equal(db.view("<u4"), b.view("<u4"), name)
            distinct = ref.nonzero_distinct(w)
            if distinct <= 255:
                self.assertEqual((node["storage"], node["code_bits"]),
                                 ("shared", ref.min_bits(distinct)), name)
                self.assertRegex(stdout, r"\b%s\s+\S+\s+\S+\s+codebook %d-bit" %
                                 (name, ref.min_bits(distinct)))
            else:
                self.assertEqual(node["storage"], "exact", name)
                self.assertRegex(stdout, r"\b%s\s+\S+\s+\S+\s+exact" % name)
        # Outputs: dense reference and cpu backend against float64 numpy.
        want_out = ref.run(m, feeds)
        for k, o in enumerate(m.graph.output):
            exp = want_out[o.name]
            for run_name in ("dense%d", "cpu1_%d", "cpu3_%d"):
                y = np.fromfile(os.path.join(info["dir"], (run_name % k) + ".f32"), "<f4")
                self.assertEqual(y.size, exp.size, o.name)
                err = np.max(np.abs(y.astype(np.float64) - exp.ravel()))
                self.assertLessEqual(err, RTOL * np.max(np.abs(exp)),
                                     "%s %s" % (run_name % k, o.name))
                if os.environ.get("EIE_TEST_VERBOSE"):
                    print("%s %s: max error %.3g of max %.3g" %
                          (run_name % k, o.name, err, np.max(np.abs(exp))))
        return m, eie, info

    def roundtrip(self, eie, stem):
        """import -> export -> import gives the same bytes, names and shapes."""
        exported = self.path(stem + "-export.onnx")
        r = run(EIECTL, "export", eie, "-o", exported)
        self.assertEqual(r.returncode, 0, r.stderr)
        e = onnx.load(exported)
        onnx.checker.check_model(e)
        again = self.path(stem + "-again.eie")
        r = run(EIECTL, "import", exported, "-o", again, "--name", stem)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(eie, "rb") as a, open(again, "rb") as b:
            self.assertEqual(a.read(), b.read())
        return e

    def test_convnet_of_every_conv_and_pool_attribute(self):
        m, eie, info = self.check_case(convnet, "convnet")
        kinds = [n["kind"] for n in info["nodes"]]
        # BatchNormalization and the bias Add are folded, never stored.
        self.assertNotIn("batchnorm", kinds)
        self.assertEqual(kinds.count("conv2d"), 3)
        conv = {n["name"]: n["conv"] for n in info["nodes"] if n["kind"] == "conv2d"}
        # kernel h,w, strides, pads top,left,bottom,right, dilations, groups
        self.assertEqual(conv["conv1"], [3, 3, 2, 1, 1, 0, 2, 1, 2, 1, 1])
        self.assertEqual(conv["conv2"], [2, 2, 1, 1, 0, 0, 1, 1, 1, 1, 2])
        self.assertEqual(conv["conv3"], [2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1])
        pool = {n["name"]: n["pool"] for n in info["nodes"] if n["kind"].endswith("pool2d")}
        self.assertEqual(pool["pool1"][-2:], [1, 0])
        self.assertEqual(pool["avg_incl"][-2:], [0, 1])
        self.assertEqual(pool["avg_excl"][-2:], [1, 0])
        self.assertEqual(pool["avg_excl"][4:8], [1, 1, 0, 0])
        out = {n["name"]: n["output"] for n in info["nodes"]}
        self.assertEqual(out["conv1"], "bn1")
        self.assertEqual(out["conv2"], "c2b")
        self.assertEqual(out["fc"], "bn2")
        self.roundtrip(eie, "convnet")

    def test_two_inputs_two_outputs_and_shape_ops(self):
        m, eie, info = self.check_case(two_inputs, "two_inputs")
        kinds = {n["name"]: n["kind"] for n in info["nodes"]}
        self.assertEqual(kinds["reshape"], "reshape")
        self.assertEqual(kinds["unsq"], "reshape")
        self.assertEqual(kinds["aux"], "activation")
        self.assertNotIn("drop", kinds)  # Dropout is the identity at inference
        soft = [n for n in info["nodes"] if n["name"] == "softmax"][0]
        self.assertEqual(soft["axis"], 2)
        e = self.roundtrip(eie, "two_inputs")
        self.assertEqual([i.name for i in e.graph.input], ["a", "b"])
        self.assertEqual([o.name for o in e.graph.output], ["dist", "aux"])
        self.assertEqual(onnx_io(e.graph.output)[0]["shape"], [-1, 3, 4])

    def test_storage_is_the_smallest_exact_codebook_or_exact(self):
        m, eie, info = self.check_case(quantized, "quantized")
        st = {n["name"]: (n["storage"], n["code_bits"]) for n in info["nodes"]
              if n["kind"] in ("fc", "conv2d")}
        self.assertEqual(st, {"q5": ("shared", 3), "q255": ("shared", 8),
                              "exact": ("exact", 1), "one_bit": ("shared", 1)})
        self.assertEqual(info["inputs"][0]["shape"], [1, 1, 6, 6])
        self.roundtrip(eie, "quantized")

    def test_pytorch_view_of_the_batch_size(self):
        m, eie, info = self.check_case(torch_view, "torch_view")
        view = [n for n in info["nodes"] if n["name"] == "view"][0]
        self.assertEqual(view["kind"], "reshape")
        self.roundtrip(eie, "torch_view")

    def test_dim_sizes_a_symbolic_inner_dimension(self):
        m = tiny(helper.make_node("Relu", ["x"], ["y"], name="r"), x_shape=("N", "C", 5, 5),
                 out_shape=["N", "C", 5, 5])
        RefusalTest.refuse(self, m, "dimension 1 is symbolic ('C')", "--dim C=SIZE")
        eie, _ = self.import_model(m, "dim_c", "--dim", "C=2")
        self.assertEqual(self.dump(eie)["inputs"][0]["shape"], [-1, 2, 5, 5])
        for bad, msg in ((("--dim", "D=2"), "no graph input has a symbolic dimension"),):
            with tempfile.TemporaryDirectory() as d:
                src = os.path.join(d, "m.onnx")
                onnx.save(m, src)
                r = run(EIECTL, "import", src, "-o", os.path.join(d, "m.eie"), "--dim", "C=2",
                        *bad)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("dimension 'D'", r.stderr)
                self.assertIn(msg, r.stderr)
        for args in (("--dim",), ("--dim", "C"), ("--dim", "=3"), ("--dim", "C=0"),
                     ("--dim", "C=x"), ("--dim", "C=2", "--dim", "C=3")):
            r = run(EIECTL, "import", "x.onnx", "-o", "y", *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("--dim", r.stderr)

    def test_model_name_from_file_or_flag(self):
        m, _ = two_inputs(np.random.default_rng(1))
        eie, _ = self.import_model(m, "my-model")
        self.assertEqual(self.dump(eie)["name"], "my-model")
        eie, _ = self.import_model(m, "other", "--name", "served")
        self.assertEqual(self.dump(eie)["name"], "served")


class GraphCompressTest(unittest.TestCase):
    """eiectl compress of a graph: names and shapes kept, conv and fc layers
    pruned and quantized with their own per-layer bits, the rest copied."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.m, self.feeds = convnet(np.random.default_rng(3))
        self.src = os.path.join(self.tmp.name, "convnet.onnx")
        onnx.save(self.m, self.src)

    def compress(self, *args):
        out = os.path.join(self.tmp.name, "c.eie")
        r = run(EIECTL, "compress", self.src, "-o", out, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = os.path.join(self.tmp.name, "dump")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "in0.f32")
        self.feeds["image"].astype("<f4").tofile(p)
        r2 = run(DUMP, out, d, "--run", "3", p)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        with open(os.path.join(d, "model.json")) as f:
            info = json.load(f)
        info["dir"] = d
        return r.stdout, info

    def weights(self, info, name):
        i = [k for k, n in enumerate(info["nodes"]) if n["name"] == name][0]
        return info["nodes"][i], np.fromfile(os.path.join(info["dir"], "w%d.f32" % i), "<f4")

    def test_conv_and_fc_get_their_own_bits_and_keep_names_and_shapes(self):
        stdout, info = self.compress("--bits", "8,8,8,5", "--sparsity", "0.5,0.5,0.4,0.3")
        self.assertEqual(info["name"], "convnet")
        self.assertEqual(info["inputs"], onnx_io(self.m.graph.input))
        self.assertEqual(info["outputs"], onnx_io(self.m.graph.output))
        self.assertRegex(stdout, r"(?m)^conv1 ")
        self.assertRegex(stdout, r"(?m)^fc4 ")
        want_density = {"conv1": 0.5, "conv2": 0.5, "conv3": 0.6, "fc": 0.7}
        for name, bits in (("conv1", 8), ("conv2", 8), ("conv3", 8), ("fc", 5)):
            node, w = self.weights(info, name)
            self.assertEqual((node["storage"], node["code_bits"]), ("shared", bits), name)
            self.assertLessEqual(ref.nonzero_distinct(w), 2 ** bits - 1, name)
            self.assertAlmostEqual(np.count_nonzero(w) / w.size, want_density[name], delta=0.02,
                                   msg=name)
        kinds = [n["kind"] for n in info["nodes"]]
        self.assertEqual(kinds.count("avgpool2d"), 2)
        self.assertEqual(kinds.count("concat"), 1)

    def test_no_prune_no_quant_keeps_every_weight(self):
        _, info = self.compress("--no-prune", "--no-quant")
        want = expected_layers(self.m)
        for name, (w, _) in want.items():
            node, got = self.weights(info, name)
            self.assertEqual(node["storage"], "exact", name)
            np.testing.assert_array_equal(got.view("<u4"), w.ravel().view("<u4"), name)
        # So the outputs are the float64 reference's, as after an exact import.
        exp = ref.run(self.m, {"image": self.feeds["image"]})["probs"]
        y = np.fromfile(os.path.join(info["dir"], "dense0.f32"), "<f4")
        self.assertLessEqual(np.max(np.abs(y - exp.ravel())), RTOL * np.max(np.abs(exp)))

    def test_retraining_needs_a_chain_of_layers(self):
        # Two outputs, and branches: a graph training does not take.
        out = os.path.join(self.tmp.name, "c.eie")
        r = run(EIECTL, "compress", self.src, "-o", out, "--data", self.tmp.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("1 inputs and 2 outputs: a network for training has one of each", r.stderr)
        self.assertIn("retraining (--data, --dsd) works on a chain of layers", r.stderr)


def tiny(node, inits=(), x_shape=("N", 2, 5, 5), out_shape=None, extra_nodes=(), opset=13,
         x_elem=TensorProto.FLOAT):
    nodes = [node, *extra_nodes]
    out = nodes[-1].output[0]
    return model(nodes, [vi("x", list(x_shape), x_elem)], [vi(out, out_shape)],
                 [init(k, v) for k, v in inits], opset=opset)


W4 = np.ones((3, 2, 3, 3), np.float32)


class RefusalTest(unittest.TestCase):
    """Each refused op or attribute: exit 1 and a message naming node, op and attribute."""

    def refuse(self, m, *needles):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "m.onnx")
            onnx.save(m, src)
            r = run(EIECTL, "import", src, "-o", os.path.join(d, "m.eie"))
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            for s in needles:
                self.assertIn(s, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "m.eie")))

    def test_unsupported_op(self):
        self.refuse(tiny(helper.make_node("LeakyRelu", ["x"], ["y"], name="lr")),
                    "node 0 'lr' (LeakyRelu)", "op type 'LeakyRelu' is not supported")

    def test_conv_transpose(self):
        self.refuse(tiny(helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up"),
                         [("w", W4)]), "'up' (ConvTranspose)", "not supported")

    def test_conv_3d(self):
        w = np.ones((3, 2, 3, 3, 3), np.float32)
        self.refuse(tiny(helper.make_node("Conv", ["x", "w"], ["y"], name="c3d"), [("w", w)],
                         x_shape=("N", 2, 5, 5, 5)),
                    "'c3d' (Conv)", "3-D convolution")

    def test_conv_empty_weight(self):
        self.refuse(tiny(helper.make_node("Conv", ["x", "w"], ["y"], name="c"),
                         [("w", np.ones((0, 2, 3, 3), np.float32))]), "'c' (Conv)", "empty")

    def test_conv_unknown_attribute(self):
        n = helper.make_node("Conv", ["x", "w"], ["y"], name="c", bogus=1)
        self.refuse(tiny(n, [("w", W4)]), "node 0 'c' (Conv)", "attribute 'bogus'")

    def test_conv_bad_auto_pad(self):
        n = helper.make_node("Conv", ["x", "w"], ["y"], name="c", auto_pad="SAME_MIDDLE")
        self.refuse(tiny(n, [("w", W4)]), "'c' (Conv)", "attribute 'auto_pad'", "SAME_MIDDLE")

    def test_maxpool_dilations(self):
        n = helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2],
                             dilations=[2, 2])
        self.refuse(tiny(n), "'mp' (MaxPool)", "attribute 'dilations'")

    def test_pool_indices_output(self):
        n = helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2])
        m = model([n], [vi("x", ["N", 2, 5, 5])], [vi("y", None), vi("idx", None, 7)], [])
        self.refuse(m, "'mp' (MaxPool)", "'Indices'")

    def test_gemm_trans_a(self):
        n = helper.make_node("Gemm", ["x", "w"], ["y"], name="g", transA=1)
        self.refuse(tiny(n, [("w", np.ones((4, 3), np.float32))], x_shape=(4, 3)),
                    "'g' (Gemm)", "attribute 'transA'")

    def test_batchnorm_training_mode(self):
        c = [("s", np.ones(3, np.float32)), ("b", np.zeros(3, np.float32)),
             ("m", np.zeros(3, np.float32)), ("v", np.ones(3, np.float32)), ("w", W4)]
        conv = helper.make_node("Conv", ["x", "w"], ["c"], name="c")
        bn = helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"],
                              name="bn", training_mode=1)
        self.refuse(tiny(conv, c, extra_nodes=[bn], opset=14),
                    "'bn' (BatchNormalization)", "attribute 'training_mode'")

    def test_batchnorm_without_a_layer_before(self):
        c = [("s", np.ones(2, np.float32)), ("b", np.zeros(2, np.float32)),
             ("m", np.zeros(2, np.float32)), ("v", np.ones(2, np.float32))]
        bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")
        self.refuse(tiny(bn, c), "'bn' (BatchNormalization)", "folds BatchNormalization")

    def test_broadcasting_add(self):
        n = helper.make_node("Add", ["x", "x2"], ["y"], name="add")
        m = model([n], [vi("x", ["N", 2, 5, 5]), vi("x2", ["N", 2, 1, 5])], [vi("y", None)], [])
        self.refuse(m, "'add' (Add)", "no broadcasting")

    def test_add_of_a_constant_to_an_input(self):
        n = helper.make_node("Add", ["x", "c"], ["y"], name="add")
        self.refuse(tiny(n, [("c", np.ones((1, 2, 1, 1), np.float32))]), "'add' (Add)",
                    "constant 'c'")

    def test_flatten_axis(self):
        n = helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=2)
        self.refuse(tiny(n), "'fl' (Flatten)", "attribute 'axis' = 2")

    def test_reshape_of_the_batch(self):
        n = helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")
        self.refuse(tiny(n, [("s", np.array([5, 5], np.int64))], x_shape=(1, 1, 5, 5)),
                    "'rs' (Reshape)", "batch dimension")

    def test_squeeze_of_the_batch(self):
        n = helper.make_node("Squeeze", ["x", "a"], ["y"], name="sq")
        self.refuse(tiny(n, [("a", np.array([0], np.int64))], x_shape=(1, 2, 5, 5)),
                    "'sq' (Squeeze)", "batch")

    def test_batch_size_inside_a_sample(self):
        nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
                 helper.make_node("Reshape", ["x", "s2"], ["y"], name="rs")]
        g = [helper.make_node("Gather", ["s", "i"], ["s2"], name="g", axis=0)]
        m = model([nodes[0], *g, nodes[1]], [vi("x", ["N", 2, 5, 5])], [vi("y", None)],
                  [init("i", np.array([0, 0, 1, 2, 3], np.int64))])
        self.refuse(m, "'rs' (Reshape)", "batch size in dimension 1")

    def test_transpose_of_data(self):
        n = helper.make_node("Transpose", ["x"], ["y"], name="tr", perm=[0, 1, 3, 2])
        self.refuse(tiny(n), "'tr' (Transpose)", "not supported")

    def test_integer_input(self):
        self.refuse(tiny(helper.make_node("Relu", ["x"], ["y"], name="r"),
                         x_elem=TensorProto.INT64), "graph input 'x'", "element type 7")

    def test_symbolic_inner_dimension(self):
        self.refuse(tiny(helper.make_node("Relu", ["x"], ["y"], name="r"),
                         x_shape=("N", "C", 5, 5)), "graph input 'x'", "dimension 1 is symbolic")

    def test_weights_as_data(self):
        n = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
        m = model([n], [vi("x", ["N", 3]), vi("w", ["N", 3])], [vi("y", None)], [])
        self.refuse(m, "'mm' (MatMul)", "input 1 'w' is not a constant")

    def test_declared_output_shape_that_the_graph_does_not_compute(self):
        self.refuse(tiny(helper.make_node("Relu", ["x"], ["y"], name="r"),
                         out_shape=["N", 2, 5, 4]), "graph output 'y'", "computed [-1,2,5,5]")

    def test_softmax_over_an_inner_axis_before_opset_13(self):
        self.refuse(tiny(helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1),
                         opset=11), "'sm' (Softmax)", "attribute 'axis' = 1")

    def test_not_onnx(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "m.onnx")
            with open(src, "wb") as f:
                f.write(b"\xff\xff\xff garbage")
            r = run(EIECTL, "import", src, "-o", os.path.join(d, "m.eie"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("not an ONNX model", r.stderr)

    def test_usage_errors(self):
        self.assertEqual(run(EIECTL, "import", "x.onnx").returncode, 2)
        self.assertEqual(run(EIECTL, "import", "x.onnx", "-o", "y", "--bogus").returncode, 2)
        self.assertEqual(run(EIECTL, "import", "x.onnx", "-o", "y", "--name", "").returncode, 2)



def np_lstm(x, W, R, B=None, h0=None, c0=None):
    """ONNX LSTM in float64 from its definition: gates i, o, f, c; B = [Wb, Rb]."""
    T, N, _ = x.shape
    H = R.shape[-1]
    W, R = W[0].astype(np.float64), R[0].astype(np.float64)
    b = np.zeros(8 * H) if B is None else B[0].astype(np.float64)
    h = np.zeros((N, H)) if h0 is None else h0[0].astype(np.float64)
    c = np.zeros((N, H)) if c0 is None else c0[0].astype(np.float64)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    ys = []
    for t in range(T):
        g = x[t].astype(np.float64) @ W.T + h @ R.T + b[:4 * H] + b[4 * H:]
        i, o, f, cc = (g[:, k * H:(k + 1) * H] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(cc)
        h = sig(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys)[:, None], h[None], c[None]


def lstm_model(rng, I=5, H=4, N=2, bias=True, state="init", opset=14, outputs=("y", "Y_h", "Y_c"),
               vocab=0):
    """X [T, N, I] -> LSTM -> Squeeze(axis 1) = y [T, N, H], and Y_h, Y_c; the initial
    state an initializer ("init"), the Shape + Expand broadcast of a stored [1, 1, H]
    ("expand"), graph inputs h0, c0 [1, N, H] fed each run ("input", "input_h": h0 only,
    "input_c": c0 only) or zeros (None)."""
    w = {"W": f32(rng, 1, 4 * H, I, scale=0.5), "R": f32(rng, 1, 4 * H, H, scale=0.5)}
    if bias:
        w["B"] = f32(rng, 1, 8 * H, scale=0.3)
    nodes, h_in, c_in = [], "", ""
    if state == "init":
        w["h0"], w["c0"] = f32(rng, 1, N, H), f32(rng, 1, N, H)
        h_in, c_in = "h0", "c0"
    elif state == "expand":
        w["h1"], w["c1"] = f32(rng, 1, 1, H), f32(rng, 1, 1, H)
        w["one"], w["hs"], w["idx"] = (np.array([1], np.int64), np.array([H], np.int64),
                                       np.array(1, np.int64))
        nodes += [helper.make_node("Shape", ["x"], ["xs"], name="shape"),
                  helper.make_node("Gather", ["xs", "idx"], ["n"], name="gather", axis=0),
                  helper.make_node("Unsqueeze", ["n", "zero"], ["n1"], name="unsq"),
                  helper.make_node("Concat", ["one", "n1", "hs"], ["sh"], name="cat", axis=0),
                  helper.make_node("Expand", ["h1", "sh"], ["h0"], name="expand_h"),
                  helper.make_node("Expand", ["c1", "sh"], ["c0"], name="expand_c")]
        w["zero"] = np.array([0], np.int64)
        h_in, c_in = "h0", "c0"
    elif state and state.startswith("input"):
        h_in = "h0" if state in ("input", "input_h") else ""
        c_in = "c0" if state in ("input", "input_c") else ""
    ins = ["x", "W", "R", "B" if bias else "", "", h_in, c_in]
    while ins[-1] == "":
        ins.pop()
    nodes.append(helper.make_node("LSTM", ins, ["Y", "Y_h" if "Y_h" in outputs else "",
                                                "Y_c" if "Y_c" in outputs else ""],
                                  name="lstm", hidden_size=H))
    if opset >= 13:
        w["axis1"] = np.array([1], np.int64)
        nodes.append(helper.make_node("Squeeze", ["Y", "axis1"], ["y"], name="squeeze"))
    else:
        nodes.append(helper.make_node("Squeeze", ["Y"], ["y"], name="squeeze", axes=[1]))
    if vocab:
        # NeuralTalk's Wd: a word decoder over every step, then softmax over the words
        w["Wd"], w["bd"] = f32(rng, H, vocab, scale=0.5), f32(rng, vocab, scale=0.1)
        nodes += [helper.make_node("MatMul", ["y", "Wd"], ["z"], name="decoder"),
                  helper.make_node("Add", ["z", "bd"], ["zb"], name="decoder_bias"),
                  helper.make_node("Softmax", ["zb"], ["probs"], name="softmax", axis=-1)]
        outputs = tuple("probs" if o == "y" else o for o in outputs)
    outs = ([vi("y", ["T", N, H])] if "y" in outputs else
            [vi("probs", ["T", N, vocab])]) + [vi(o, [1, N, H]) for o in outputs
                                               if o not in ("y", "probs")]
    ins_vi = [vi("x", ["T", N, I])] + [vi(s, [1, N, H]) for s in (h_in, c_in)
                                       if s and state and state.startswith("input")]
    m = model(nodes, ins_vi, outs, [init(k, v) for k, v in w.items()], opset=opset)
    if state and state.startswith("input"):
        return m, w, f32(rng, 1, N, H) if h_in else None, f32(rng, 1, N, H) if c_in else None
    if state == "expand":
        h0 = np.broadcast_to(w["h1"], (1, N, H))
        c0 = np.broadcast_to(w["c1"], (1, N, H))
    else:
        h0, c0 = w.get("h0"), w.get("c0")
    return m, w, h0, c0


class LstmImportTest(unittest.TestCase):
    """ONNX LSTM imported as one lstm node; outputs on the dense reference and the
    cpu backend (1 and 3 PEs) against a float64 numpy LSTM."""
    setUp = GraphImportTest.setUp
    path = GraphImportTest.path
    import_model = GraphImportTest.import_model
    dump = GraphImportTest.dump

    def check_lstm(self, stem, T, symbolic_n=None, **kw):
        """symbolic_n: name the sequences' dimension N of x and the outputs so, as an
        exporter with a dynamic batch does; the import then needs --dim NAME=N."""
        rng = np.random.default_rng(11)
        m, w, h0, c0 = lstm_model(rng, **kw)
        fixed = copy.deepcopy(m)  # the shapes the import keeps
        if symbolic_n:
            for v in [m.graph.input[0], *m.graph.output]:
                v.type.tensor_type.shape.dim[1].dim_param = symbolic_n
            with tempfile.TemporaryDirectory() as d:
                src = os.path.join(d, "m.onnx")
                onnx.save(m, src)
                r = run(EIECTL, "import", src, "-o", os.path.join(d, "m.eie"))
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("graph input 'x': dimension 1 is symbolic ('%s')" % symbolic_n,
                              r.stderr)
                self.assertIn("--dim %s=SIZE" % symbolic_n, r.stderr)
        N, I = kw.get("N", 2), w["W"].shape[2]
        extra = ("--dim", "%s=%d" % (symbolic_n, N)) if symbolic_n else ()
        eie, _ = self.import_model(m, stem, *extra)
        x = f32(rng, T, N, I)
        x[x < -0.8] = 0.0  # zeros the column walk skips
        feeds, order = {"x": x}, ["x"]
        if (kw.get("state") or "").startswith("input"):
            # a fed state: one sample [1, N, H] whatever T, in the graph's input order
            feeds.update({k: v for k, v in (("h0", h0), ("c0", c0)) if v is not None})
            order = [i.name for i in m.graph.input]
            self.assertEqual([i["name"] for i in self.dump(eie)["inputs"]], order)
        info = self.dump(eie, feeds, order)
        kinds = [n["kind"] for n in info["nodes"]]
        self.assertIn("lstm", kinds)
        Y, Yh, Yc = np_lstm(x, w["W"], w["R"], w.get("B"), h0, c0)
        want = {"y": Y[:, 0], "Y_h": Yh, "Y_c": Yc}
        if "Wd" in w:
            z = Y[:, 0] @ w["Wd"].astype(np.float64) + w["bd"]
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            want["probs"] = e / e.sum(axis=-1, keepdims=True)
        for k, o in enumerate(m.graph.output):
            exp = want[o.name].ravel()
            for run_name in ("dense%d", "cpu1_%d", "cpu3_%d"):
                y = np.fromfile(os.path.join(info["dir"], (run_name % k) + ".f32"), "<f4")
                y = y[:exp.size]  # a final state fills the first sample only
                err = np.max(np.abs(y.astype(np.float64) - exp))
                self.assertLessEqual(err, 1e-5, "%s %s" % (run_name % k, o.name))
        self.assertEqual(info["outputs"], onnx_io(fixed.graph.output))
        self.assertEqual(info["inputs"], onnx_io(fixed.graph.input))
        # import -> export -> import: the same bytes (B = [bias, -0.0] keeps the bias); the
        # decoder over every step goes out as MatMul + Add (Gemm takes [N, features] only)
        e = GraphImportTest.roundtrip(self, eie, stem)
        self.assertEqual([n.op_type for n in e.graph.node if n.op_type == "LSTM"], ["LSTM"])
        if "Wd" in w:
            self.assertEqual([n.op_type for n in e.graph.node][-3:], ["MatMul", "Add", "Softmax"])
        return info

    def test_lstm_with_bias_initial_state_and_final_states(self):
        self.check_lstm("lstm_init", 7)

    def test_lstm_one_step_no_bias_zero_state_opset_7(self):
        self.check_lstm("lstm_plain", 1, bias=False, state=None, opset=7, outputs=("y",))

    def test_lstm_initial_state_by_shape_and_expand(self):
        self.check_lstm("lstm_expand", 20, state="expand", N=3, I=6, H=9)

    def test_lstm_initial_state_from_graph_inputs(self):
        self.check_lstm("lstm_fed", 11, state="input", N=3, I=6, H=7)

    def test_lstm_initial_state_from_graph_inputs_one_step(self):
        self.check_lstm("lstm_fed1", 1, state="input", N=2)

    def test_lstm_initial_h_from_a_graph_input_c_zero(self):
        self.check_lstm("lstm_fed_h", 5, state="input_h", N=4)

    def test_lstm_initial_c_from_a_graph_input_h_zero(self):
        self.check_lstm("lstm_fed_c", 5, state="input_c", N=4)

    def test_lstm_symbolic_sequences_dimension_given_with_dim(self):
        # PyTorch's dynamic batch on [T, N, I]: N named, its initial state broadcast by
        # Shape + Expand from x; --dim fixes N, T stays the served batch
        self.check_lstm("lstm_dyn", 6, symbolic_n="batch_size", state="expand", N=3, I=6, H=5)

    def test_lstm_then_matmul_add_softmax_over_every_step(self):
        info = self.check_lstm("lstm_decoder", 9, N=3, vocab=11)
        kinds = [n["kind"] for n in info["nodes"]]
        self.assertEqual(kinds.count("fc"), 1)

    def test_compress_prunes_and_quantizes_the_lstm_matrix(self):
        """EIE's NT-LSTM: 10% density, 4-bit shared weights."""
        m, _, _, _ = lstm_model(np.random.default_rng(5), I=16, H=24, N=1, outputs=("y",))
        src = self.path("lm.onnx")
        onnx.save(m, src)
        out = self.path("lm.eie")
        # no training data here: --force takes the accuracy loss knowingly
        r = run(EIECTL, "compress", src, "-o", out, "--bits", "4", "--sparsity", "0.9",
                "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        x = f32(np.random.default_rng(2), 6, 1, 16)
        info = self.dump(out, {"x": x}, ["x"])
        i = [k for k, n in enumerate(info["nodes"]) if n["kind"] == "lstm"][0]
        node = info["nodes"][i]
        self.assertEqual((node["storage"], node["code_bits"], node["rows"], node["cols"]),
                         ("shared", 4, 96, 40))
        w = np.fromfile(os.path.join(info["dir"], "w%d.f32" % i), "<f4")
        self.assertAlmostEqual(np.count_nonzero(w) / w.size, 0.1, delta=0.01)
        self.assertLessEqual(len(np.unique(w[w != 0])), 15)
        # the compressed model runs: cpu on 1 and 3 PEs equal the dense reference
        d = np.fromfile(os.path.join(info["dir"], "dense0.f32"), "<f4")
        for name in ("cpu1_0", "cpu3_0"):
            y = np.fromfile(os.path.join(info["dir"], name + ".f32"), "<f4")
            self.assertLessEqual(np.max(np.abs(y - d)), 1e-5, name)

    def test_compress_keeps_an_initial_state_fed_by_graph_inputs(self):
        m, _, h0, c0 = lstm_model(np.random.default_rng(6), I=8, H=12, N=2, state="input",
                                  outputs=("y", "Y_h"))
        src = self.path("fed.onnx")
        onnx.save(m, src)
        out = self.path("fed.eie")
        r = run(EIECTL, "compress", src, "-o", out, "--bits", "4", "--sparsity", "0.5",
                "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        x = f32(np.random.default_rng(2), 6, 2, 8)
        info = self.dump(out, {"x": x, "h0": h0, "c0": c0}, ["x", "h0", "c0"])
        self.assertEqual(info["inputs"], onnx_io(m.graph.input))
        node = [n for n in info["nodes"] if n["kind"] == "lstm"][0]
        self.assertEqual([i for i in node["inputs"]], ["x", "h0", "c0"])
        for k in range(2):
            d = np.fromfile(os.path.join(info["dir"], "dense%d.f32" % k), "<f4")
            for name in ("cpu1_%d" % k, "cpu3_%d" % k):
                y = np.fromfile(os.path.join(info["dir"], name + ".f32"), "<f4")
                n = 2 * 12 if k == 1 else y.size  # Y_h fills its first sample
                self.assertLessEqual(np.max(np.abs(y[:n] - d[:n])), 1e-5, name)


def lstm_refusal(**attrs):
    rng = np.random.default_rng(1)
    H, I = 3, 4
    inits = [init("W", f32(rng, 1, 4 * H, I)), init("R", f32(rng, 1, 4 * H, H))]
    ins = ["x", "W", "R"]
    if attrs.pop("peephole", False):
        inits.append(init("P", f32(rng, 1, 3 * H)))
        ins += ["", "", "", "", "P"]
    d = 2 if attrs.get("direction") == "bidirectional" else 1
    node = helper.make_node("LSTM", ins, ["Y"], name="rnn", hidden_size=H, **attrs)
    return model([node], [vi("x", ["T", 2, I])], [vi("Y", ["T", d, 2, H])], inits, opset=14)


class LstmRefusalTest(unittest.TestCase):
    refuse = RefusalTest.refuse

    def test_lstm_bidirectional(self):
        self.refuse(lstm_refusal(direction="bidirectional"), "'rnn' (LSTM)",
                    "attribute 'direction' = 'bidirectional'")

    def test_lstm_layout_1(self):
        self.refuse(lstm_refusal(layout=1), "'rnn' (LSTM)", "attribute 'layout' = 1")

    def test_lstm_clip(self):
        self.refuse(lstm_refusal(clip=3.0), "'rnn' (LSTM)", "attribute 'clip'")

    def test_lstm_activations(self):
        self.refuse(lstm_refusal(activations=["Relu", "Tanh", "Tanh"]), "'rnn' (LSTM)",
                    "attribute 'activations'")

    def test_lstm_activation_alpha(self):
        self.refuse(lstm_refusal(activation_alpha=[1.0]), "'rnn' (LSTM)",
                    "attribute 'activation_alpha'")

    def test_lstm_input_forget(self):
        self.refuse(lstm_refusal(input_forget=1), "'rnn' (LSTM)",
                    "attribute 'input_forget' = 1")

    def test_batchnorm_after_a_matmul_over_a_sequence(self):
        rng = np.random.default_rng(2)
        inits = [init("W", f32(rng, 4, 3))] + [init(k, np.ones(2, np.float32))
                                               for k in ("s", "b", "m", "v")]
        nodes = [helper.make_node("MatMul", ["x", "W"], ["z"], name="mm"),
                 helper.make_node("BatchNormalization", ["z", "s", "b", "m", "v"], ["y"],
                                  name="bn")]
        m = model(nodes, [vi("x", ["T", 2, 4])], [vi("y", ["T", 2, 3])], inits)
        self.refuse(m, "'bn' (BatchNormalization)", "MatMul over a rank-3 tensor")

    def test_lstm_a_state_shaped_input_no_lstm_reads(self):
        # [1, N, H] is an initial state's shape, but no LSTM takes "h0": it is an input
        # like any other and must share x's batch dimension; refused at import, not when
        # the file is written
        m = lstm_refusal()
        m.graph.input.append(vi("h0", [1, 2, 3]))
        self.refuse(m, "graph: input \"h0\" has batch dimension 1 but \"x\" has -1")

    def test_lstm_sequence_lens_unequal_to_t(self):
        m = lstm_refusal()
        m.graph.initializer.append(init("lens", np.array([3, 3], np.int32)))
        m.graph.node[0].input.extend(["", "lens"])
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
        self.refuse(m, "'rnn' (LSTM)", "input 'sequence_lens'[0] = 3", "T = 4 steps")

    def test_lstm_sequence_lens_equal_to_t_is_accepted(self):
        m = lstm_refusal()
        m.graph.initializer.append(init("lens", np.array([4, 4], np.int32)))
        m.graph.node[0].input.extend(["", "lens"])
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "m.onnx")
            onnx.save(m, src)
            r = run(EIECTL, "import", src, "-o", os.path.join(d, "m.eie"))
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_lstm_initial_state_input_of_the_wrong_shape(self):
        m, _, _, _ = lstm_model(np.random.default_rng(3), N=2, H=4, state="input",
                                outputs=("y",))
        m.graph.input[1].type.tensor_type.shape.dim[1].dim_value = 3
        self.refuse(m, "'lstm' (LSTM)", 'initial_h "h0" is [1,3,4]', "needs [1,2,4]")

    def test_lstm_initial_state_input_with_a_batch_dimension(self):
        m, _, _, _ = lstm_model(np.random.default_rng(3), N=2, H=4, state="input",
                                outputs=("y",))
        m.graph.input[2].type.tensor_type.shape.dim[0].dim_param = "T"
        self.refuse(m, "'lstm' (LSTM)", 'initial_c "c0" is [-1,2,4]')

    def test_lstm_initial_state_read_by_another_node(self):
        m, _, _, _ = lstm_model(np.random.default_rng(3), N=2, H=4, state="input",
                                outputs=("y",))
        m.graph.node.append(helper.make_node("Relu", ["h0"], ["r"], name="relu"))
        m.graph.output.append(vi("r", [1, 2, 4]))
        self.refuse(m, 'reads "h0" per step', "an lstm's initial state")

    def test_lstm_peepholes(self):
        self.refuse(lstm_refusal(peephole=True), "'rnn' (LSTM)", "input 'P' (peepholes)")

if __name__ == "__main__":
    unittest.main(verbosity=2)
