#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz: small valid inputs and near-valid
variants (truncated, one byte changed) for each fuzz target. Deterministic;
rerun after a format change and commit the result.

usage: tests/fuzz/make-corpus.py BUILD_DIR
  BUILD_DIR: a configured and built build directory (for tests/tools/eie-synth
  and proto/eie.protoset)
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def reset(name):
    d = os.path.join(HERE, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def refresh_checksum(data):
    return data[:-32] + hashlib.sha256(data[:-32]).digest()


# ---- .eie models ------------------------------------------------------------
EIE_MODELS = [
    # name, layers, bits, density, extra flags
    ("tiny-1bit", "4,3", 1, 0.5, []),
    ("one-by-one", "1,1", 2, 1.0, []),
    ("mlp-2bit", "8,6,4", 2, 0.3, []),
    ("mlp-4bit-softmax", "16,8,4", 4, 0.2, ["--softmax"]),
    ("dense-8bit", "10,3", 8, 1.0, []),
    ("sparse-fillers", "40,30", 3, 0.02, []),  # zero runs > 15: filler entries
    ("wide-col", "64,2", 5, 0.1, ["--softmax"]),
    ("deep", "6,6,6,6,6,6", 4, 0.4, []),
]


def eie_corpus(build):
    d = reset("eie")
    synth = os.path.join(build, "tests", "tools", "eie-synth")
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, layers, bits, density, extra) in enumerate(EIE_MODELS):
            out = os.path.join(tmp, name + ".eie")
            subprocess.run([synth, out, "--layers", layers, "--bits", str(bits),
                            "--density", str(density), "--seed", str(i + 1),
                            "--name", name] + extra, check=True)
            with open(out, "rb") as f:
                models[name] = f.read()
    for name, data in models.items():
        write(d, name + ".eie", data)
    # near-valid variants of two models: truncated, header fields changed
    # (checksum refreshed so the change reaches the parser), a flipped bit
    # in a stream, a stale checksum
    for name in ("mlp-2bit", "sparse-fillers"):
        data = models[name]
        write(d, name + "-truncated-half.eie", data[: len(data) // 2])
        write(d, name + "-truncated-trailer.eie", data[:-1])
        write(d, name + "-no-trailer.eie", data[:-32])
        b = bytearray(data)
        b[8] = 2  # format_version
        write(d, name + "-version-2.eie", refresh_checksum(bytes(b)))
        b = bytearray(data)
        b[24] = 0  # layer_count
        write(d, name + "-zero-layers.eie", refresh_checksum(bytes(b)))
        b = bytearray(data)
        b[len(data) - 40] ^= 0x10  # near the end: the last run stream
        write(d, name + "-stream-bitflip.eie", refresh_checksum(bytes(b)))
        b = bytearray(data)
        b[len(data) - 1] ^= 0xFF
        write(d, name + "-bad-checksum.eie", bytes(b))
    write(d, "magic-only.eie", b"EIEMODEL")
    write(d, "header-only.eie",
          refresh_checksum(b"EIEMODEL" + struct.pack("<6I", 1, 1, 4, 3, 1, 0) + bytes(32)))


# ---- eied configs -------------------------------------------------------------
CONFIGS = {
    "empty.conf": "",
    "comments.conf": "# only comments\n; and these\n\n   \n",
    "server.conf": "[server]\nlisten = 127.0.0.1:0\ndrain_delay = 500ms\n"
                   "exit_timeout = 2m\nlog_level = debug\nlog_format = json\n"
                   "max_receive_message_size = 4MiB\n",
    "inference.conf": "[inference]\nmax_batch = 8\nqueue_depth = 16\nbatch_window_us = 0\n"
                      "reject_non_finite = yes\nmax_tensor_elements = 4096\n"
                      "default_timeout = 1s\nmax_timeout = 1h\n",
    "quoted.conf": "[admin]\ntoken = \"a secret # with hash\"\nallowed_identities = "
                   "client-a,client-b # trailing comment\n[tls]\ncert = \" spaced.pem \"\n",
    "repository.conf": "[repository]\npath = /var/lib/eie/models\ncontrol_mode = explicit\n"
                       "poll_interval = 100ms\nversion_policy = specific 1,3,7\nwarmup = off\n"
                       "load_mode = resource\nmemory_budget = 1GiB\nrequire_signed = true\n"
                       "public_keys = /etc/eie/keys\n",
    "policies.conf": "[version_policy]\nlenet = latest 2\nresnet = all\nold = specific 4\n"
                     "[models]\nlenet = /models/lenet.eie\nmlp-1.v2 = \"/models/with space.eie\"\n",
    "engine.conf": "[engine]\nbackend = eie-sim\npes = 64\nsim_fifo_depth = 16\n"
                   "sim_pipeline_depth = 2\nsim_clock_mhz = 1200\n",
    "model-backend.conf": "[model_backend]\nlenet = eie-sim\nmlp = cpu\n",
    "bad-model-backend.conf": "[model_backend]\nlenet = tpu\n",
    "crlf.conf": "[server]\r\nlisten = 0.0.0.0:9000\r\n",
    "no-newline.conf": "[engine]\npes = 3",
    "unknown-key.conf": "[server]\nlisten_addr = x\n",
    "unknown-section.conf": "[nope]\nkey = value\n",
    "bad-duration.conf": "[server]\ndrain_delay = 5 seconds\n",
    "bad-range.conf": "[inference]\nmax_batch = 0\n",
    "no-section.conf": "listen = 1\n",
    "bad-header.conf": "[server\n",
    "bad-policy.conf": "[repository]\nversion_policy = latest 0\n",
    "bad-model-name.conf": "[models]\nbad/name = /x.eie\n",
}


def config_corpus():
    d = reset("config")
    with open(os.path.join(ROOT, "conf", "eied.conf"), "rb") as f:
        write(d, "eied.conf", f.read())
    for name, text in CONFIGS.items():
        write(d, name, text.encode())


# ---- ModelInfer requests ------------------------------------------------------
def infer_corpus(build):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    with open(os.path.join(build, "proto", "eie.protoset"), "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    Req = message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName("inference.ModelInferRequest"))
    d = reset("infer")

    def req(shape=(1, 4), name="input", dtype="FP32", raw=None, fp32=None, outputs=(),
            params=False):
        r = Req(model_name="fuzz", model_version="1", id="seed")
        t = r.inputs.add(name=name, datatype=dtype)
        t.shape.extend(shape)
        if fp32 is not None:
            t.contents.fp32_contents.extend(fp32)
        if raw is not None:
            r.raw_input_contents.append(raw)
        for o in outputs:
            r.outputs.add(name=o)
        if params:
            r.parameters["priority"].int64_param = 1
            t.parameters["binary_data"].bool_param = True
        return r.SerializeToString()

    def floats(*v):
        return struct.pack("<%df" % len(v), *v)

    seeds = {
        "raw-1x4": req(raw=floats(1, 2, 3, 4)),
        "raw-2x4": req(shape=(2, 4), raw=floats(*range(8)), outputs=["output"]),
        "raw-1x3": req(shape=(1, 3), raw=floats(1, 2, 3)),
        "raw-4x3": req(shape=(4, 3), raw=floats(*range(12))),
        "raw-5x3-over-elements": req(shape=(5, 3), raw=floats(*range(15))),
        "fp32-1x4": req(fp32=[0.5, -1, 2, 0]),
        "fp32-1x3": req(shape=(1, 3), fp32=[1, 2, 3], params=True),
        "raw-nan": req(raw=floats(float("nan"), 0, float("inf"), 1)),
        "raw-short": req(raw=floats(1, 2, 3)),
        "raw-and-fp32": req(raw=floats(1, 2, 3, 4), fp32=[1, 2, 3, 4]),
        "no-data": req(),
        "shape-1d": req(shape=(4,), raw=floats(1, 2, 3, 4)),
        "shape-negative": req(shape=(-1, 4), raw=b""),
        "shape-huge": req(shape=(1 << 40, 4), raw=b""),
        "batch-over-max": req(shape=(9, 4), raw=floats(*range(36))),
        "wrong-name": req(name="x", raw=floats(1, 2, 3, 4)),
        "wrong-dtype": req(dtype="FP16", raw=floats(1, 2, 3, 4)),
        "wrong-output": req(raw=floats(1, 2, 3, 4), outputs=["nope"]),
        "wide-784": req(shape=(1, 784), name="x", raw=bytes(784 * 4), outputs=["y"]),
    }
    r = Req(model_name="fuzz")
    r.inputs.add(name="input", datatype="FP32").shape.extend([1, 4])
    r.inputs.add(name="input2", datatype="FP32").shape.extend([1, 4])
    r.raw_input_contents.extend([floats(1, 2, 3, 4), floats(1, 2, 3, 4)])
    seeds["two-inputs"] = r.SerializeToString()
    seeds["empty"] = b""
    for name, data in seeds.items():
        write(d, name + ".pb", data)
    write(d, "raw-2x4-truncated.pb", seeds["raw-2x4"][:-5])


# ---- ONNX models ---------------------------------------------------------------
def onnx_corpus(build):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    d = reset("onnx")
    eiectl = os.path.join(build, "client", "eiectl")
    synth = os.path.join(build, "tests", "tools", "eie-synth")
    exported = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, layers, bits, density, extra) in enumerate(EIE_MODELS[:4]):
            eie = os.path.join(tmp, name + ".eie")
            onnx = os.path.join(tmp, name + ".onnx")
            subprocess.run([synth, eie, "--layers", layers, "--bits", str(bits), "--density",
                            str(density), "--seed", str(i + 1)] + extra, check=True)
            subprocess.run([eiectl, "export", eie, "-o", onnx], check=True,
                           stdout=subprocess.DEVNULL)
            with open(onnx, "rb") as f:
                exported[name] = f.read()
        # onnx.proto as compiled for the engine, to build graphs by hand
        fds_path = os.path.join(tmp, "onnx.protoset")
        subprocess.run(["protoc", "--proto_path=" + os.path.join(build, "engine", "onnx"),
                        "--descriptor_set_out=" + fds_path, "onnx.proto"], check=True)
        with open(fds_path, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    for name, data in exported.items():
        write(d, name + ".onnx", data)
    data = exported["mlp-2bit"]
    write(d, "mlp-2bit-truncated.onnx", data[: len(data) // 2])

    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = message_factory.MessageFactory(pool)
    Model = factory.GetPrototype(pool.FindMessageTypeByName("onnx.ModelProto"))
    Tensor = factory.GetPrototype(pool.FindMessageTypeByName("onnx.TensorProto"))
    FLOAT, INT64, DOUBLE = 1, 7, 11

    def tensor(t, name, dims, values, dtype=FLOAT, raw=True):
        t.name = name
        t.dims.extend(dims)
        t.data_type = dtype
        if dtype == INT64:
            t.int64_data.extend(values)
        elif raw:
            fmt = "<%d%s" % (len(values), "d" if dtype == DOUBLE else "f")
            t.raw_data = struct.pack(fmt, *values)
        elif dtype == DOUBLE:
            t.double_data.extend(values)
        else:
            t.float_data.extend(values)
        return t

    def value(vi, name, shape):
        vi.name = name
        vi.type.tensor_type.elem_type = FLOAT
        for dim in shape or []:
            if isinstance(dim, str):
                vi.type.tensor_type.shape.dim.add(dim_param=dim)
            else:
                vi.type.tensor_type.shape.dim.add(dim_value=dim)

    def model(nodes, inits, in_dim=4, out="y", batch=1, in_shape=None, inputs=(), outputs=()):
        """inputs, outputs: (name, shape) past x and out; a shape dim may be a name."""
        m = Model(ir_version=8, producer_name="make-corpus")
        m.opset_import.add(domain="", version=13)
        g = m.graph
        g.name = "seed"
        value(g.input.add(), "x", in_shape or [batch, in_dim])
        for name, shape in inputs:
            value(g.input.add(), name, shape)
        g.output.add(name=out).type.tensor_type.elem_type = FLOAT
        for name, shape in outputs:
            value(g.output.add(), name, shape)
        for op, ins, outs, attrs in nodes:
            n = g.node.add(op_type=op, name=op.lower() + "_" + outs[0])
            n.input.extend(ins)
            n.output.extend(outs)
            for k, v in attrs.items():
                a = n.attribute.add(name=k)
                if isinstance(v, float):
                    a.type, a.f = 1, v
                elif isinstance(v, int):
                    a.type, a.i = 2, v
                elif isinstance(v, str):
                    a.type, a.s = 3, v.encode()
                elif isinstance(v, list):
                    a.type = 7
                    a.ints.extend(v)
                else:
                    a.type = 4
                    tensor(a.t, k, *v)
        for args in inits:
            tensor(g.initializer.add(), *args)
        return m.SerializeToString()

    w43 = [0.5, -0.25, 0, 1, 0.75, 0, -1, 0.125, 0, 0.5, 0.25, -0.5]
    seeds = {
        "gemm-relu-softmax": model(
            [("Gemm", ["x", "W", "B"], ["h"], {"transB": 1}), ("Relu", ["h"], ["r"], {}),
             ("Gemm", ["r", "W2", "B2"], ["z"], {"transB": 1, "alpha": 0.5, "beta": 2.0}),
             ("Softmax", ["z"], ["y"], {"axis": 1})],
            [("W", [3, 4], w43), ("B", [3], [0.1, 0, -0.1]), ("W2", [2, 3], [1, -1, 0.5, 0, 2, 1]),
             ("B2", [2], [0, 0])]),
        "matmul-add-sigmoid": model(
            [("MatMul", ["x", "W"], ["m"], {}), ("Add", ["m", "B"], ["a"], {}),
             ("Sigmoid", ["a"], ["y"], {})],
            [("W", [4, 3], w43), ("B", [3], [1, 2, 3])]),
        "flatten-reshape-tanh": model(
            [("Flatten", ["x"], ["f"], {"axis": 1}),
             ("Constant", [], ["shape"], {"value": ([2], [1, 4], INT64)}),
             ("Reshape", ["f", "shape"], ["s"], {}), ("Gemm", ["s", "W", "B"], ["g"], {"transB": 1}),
             ("Identity", ["g"], ["i"], {}), ("Dropout", ["i"], ["o"], {}),
             ("Tanh", ["o"], ["y"], {})],
            [("W", [3, 4], w43), ("B", [3], [0, 0, 0])]),
        "gemm-double-typed": model(
            [("Gemm", ["x", "W", "B"], ["y"], {"transB": 1})],
            [("W", [3, 4], w43, DOUBLE, False), ("B", [3], [1, 1, 1], FLOAT, False)]),
        "gemm-transA": model(
            [("Gemm", ["x", "W"], ["y"], {"transA": 1})], [("W", [4, 3], w43)], batch=4),
        "unsupported-conv": model([("Conv", ["x", "W"], ["y"], {})], [("W", [3, 4], w43)]),
        # graphs: convolution, pooling, folded BatchNormalization, a residual add
        "conv-pool-gemm": model(
            [("Conv", ["x", "K", "KB"], ["c"], {"pads": [1, 0, 1, 2], "strides": [1, 1]}),
             ("Relu", ["c"], ["r"], {}),
             ("MaxPool", ["r"], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2],
                                        "ceil_mode": 1}),
             ("Flatten", ["p"], ["f"], {"axis": 1}),
             ("Gemm", ["f", "W", "B"], ["y"], {"transB": 1})],
            [("K", [2, 1, 3, 3], [0.5, 0, -0.25, 0, 1, 0, 0.125, 0, -1] * 2),
             ("KB", [2], [0.1, -0.1]), ("W", [3, 18], ([1, 0, -0.5] * 18)[:54]),
             ("B", [3], [0, 0.5, 0])], in_shape=[1, 1, 5, 5]),
        "conv-bn-add-gap": model(
            [("Conv", ["x", "K"], ["c"], {"auto_pad": "SAME_UPPER", "group": 2}),
             ("BatchNormalization", ["c", "S", "O", "M", "V"], ["b"], {"epsilon": 1e-5}),
             ("Add", ["b", "x"], ["a"], {}),
             ("AveragePool", ["a"], ["q"], {"kernel_shape": [2, 2], "count_include_pad": 1,
                                            "pads": [0, 0, 1, 1]}),
             ("Concat", ["q", "q"], ["k"], {"axis": 1}),
             ("GlobalAveragePool", ["k"], ["y"], {})],
            [("K", [2, 1, 3, 3], [0.25, 0, 0, 0, 1, 0, 0, 0, -0.25] * 2),
             ("S", [2], [1, 0.5]), ("O", [2], [0, 0.1]), ("M", [2], [0.2, 0]),
             ("V", [2], [1, 4])], in_shape=[1, 2, 4, 4]),
        # an LSTM fed its initial state each run, then a decoder over every step
        "lstm-fed-state-gemm": model(
            [("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h"], {"hidden_size": 2}),
             ("Squeeze", ["Y", "axis1"], ["s"], {}),
             ("MatMul", ["s", "D"], ["y"], {})],
            [("W", [1, 8, 3], ([0.5, -0.25, 0, 0.75, 0, -1] * 4)),
             ("R", [1, 8, 2], ([0.25, 0, -0.5, 1] * 4)),
             ("B", [1, 16], [0.1, 0, -0.1, 0.2] * 4), ("axis1", [1], [1], INT64),
             ("D", [2, 3], [1, 0, -1, 0.5, 0.25, 0])],
            in_shape=["T", 1, 3], inputs=[("h0", [1, 1, 2]), ("c0", [1, 1, 2])],
            outputs=[("Y_h", [1, 1, 2])]),
        "gemm-missing-weight": model([("Gemm", ["x", "W"], ["y"], {})], []),
        "gemm-shape-mismatch": model([("Gemm", ["x", "W"], ["y"], {"transB": 1})],
                                     [("W", [3, 5], w43 + [0, 0, 0])]),
    }
    for name, data in seeds.items():
        write(d, name + ".onnx", data)
    graph_eie_seeds(build, {k: seeds[k] for k in GRAPH_SEEDS})
    write(d, "tensor-float.pb", tensor(Tensor(), "t", [2, 2], [1, 2, 3, 4]).SerializeToString())
    write(d, "tensor-double-typed.pb",
          tensor(Tensor(), "t", [3], [1, 2, 3], DOUBLE, False).SerializeToString())
    testdata = "/usr/share/libonnx-testdata/data/node/test_gemm_default_vector_bias"
    if os.path.isdir(testdata):  # weights as graph inputs: refused without bindings
        for rel in ("model.onnx", "test_data_set_0/input_1.pb"):
            with open(os.path.join(testdata, rel), "rb") as f:
                write(d, "testdata-gemm-" + os.path.basename(rel), f.read())


# Graph models for the .eie corpus: the ONNX seeds imported exactly (shapes
# and every weight kept) and compressed (4-bit shared codebooks), so the
# reader's node decoding (convolution, pooling, add, concat, LSTM and its
# fed state) has valid inputs to mutate from; and the bundled LSTM model.
GRAPH_SEEDS = ("conv-pool-gemm", "conv-bn-add-gap", "lstm-fed-state-gemm")


def graph_eie_seeds(build, onnx_models):
    d = os.path.join(HERE, "corpus", "eie")
    eiectl = os.path.join(build, "client", "eiectl")
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in onnx_models.items():
            src = os.path.join(tmp, name + ".onnx")
            with open(src, "wb") as f:
                f.write(data)
            for kind, cmd in (("exact", ["import", src]),
                              ("4bit", ["compress", src, "--no-prune", "--bits", "4"])):
                out = os.path.join(tmp, "%s-%s.eie" % (name, kind))
                subprocess.run([eiectl] + cmd + ["-o", out], check=True,
                               stdout=subprocess.DEVNULL)
                with open(out, "rb") as f:
                    models["graph-%s-%s" % (name, kind)] = f.read()
    with open(os.path.join(ROOT, "models", "charlm", "1", "model.eie"), "rb") as f:
        models["charlm"] = f.read()
    for name, data in models.items():
        write(d, name + ".eie", data)
    # near-valid: cut inside the graph section, and a bit flipped in it
    for name in ("graph-conv-pool-gemm-exact", "graph-lstm-fed-state-gemm-4bit"):
        data = models[name]
        write(d, name + "-truncated-half.eie", data[: len(data) // 2])
        b = bytearray(data)
        b[len(b) // 3] ^= 0x04
        write(d, name + "-bitflip.eie", refresh_checksum(bytes(b)))


# ---- REST inference bodies (fuzz_rest.c): byte 0 says how to split -----------
def rest_corpus():
    d = reset("rest")

    def body(obj, binary=b"", version=False):
        js = json.dumps(obj, separators=(",", ":")).encode()
        flags = 2 if version else 0
        if binary:
            return bytes([flags | 1]) + struct.pack("<H", len(js)) + js + binary
        return bytes([flags]) + js

    x = {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    seeds = {
        "one-input": body({"inputs": [x]}),
        "nested-id-params-outputs": body(
            {"id": "r1", "parameters": {"priority": 2, "binary_data_output": True},
             "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                         "data": [[1, 0, -2.5, 3], [0, 0, 1e-3, 65504]]}],
             "outputs": [{"name": "output", "parameters": {"binary_data": False}},
                         {"name": "extra"}]}, version=True),
        "binary-input": body(
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                         "parameters": {"binary_data_size": 16}}],
             "outputs": [{"name": "output", "parameters": {"binary_data": True}}]},
            struct.pack("<4f", 0.25, -1, float("nan"), 3)),
        "json-and-binary-inputs": body(
            {"inputs": [{"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [7, 8]},
                        {"name": "input", "shape": [1, 4], "datatype": "FP32",
                         "parameters": {"binary_data_size": 16}}]},
            struct.pack("<4f", 1, 2, 3, 4)),
        "wrong-datatype": body({"inputs": [dict(x, datatype="INT32")]}),
        "bad-shape": body({"inputs": [dict(x, shape=[1.5, 4])]}),
        "binary-size-past-body": body(
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                         "parameters": {"binary_data_size": 64}}]}, b"\0" * 8),
        "truncated": body({"inputs": [x]})[:30],
        "empty-object": body({}),
    }
    for name, data in seeds.items():
        write(d, name + ".bin", data)


# ---- IDX datasets ----------------------------------------------------------------
def idx_corpus():
    import gzip

    d = reset("idx")

    def images(count, rows, cols, magic=0x803):
        return struct.pack(">4I", magic, count, rows, cols) + bytes(
            (i * 37) & 0xFF for i in range(count * rows * cols))

    def labels(count, classes=10, magic=0x801):
        return struct.pack(">2I", magic, count) + bytes(i % classes for i in range(count))

    def seed(name, img, lab, classes=10, limit=0):
        write(d, name, bytes([classes - 1, limit]) + struct.pack("<I", len(img)) + img + lab)

    seed("3x4x4.idx", images(3, 4, 4), labels(3))
    seed("5x2x3-limit-2.idx", images(5, 2, 3), labels(5), limit=2)
    seed("2x28x28.idx", images(2, 28, 28), labels(2))
    seed("gzip-3x4x4.idx", gzip.compress(images(3, 4, 4), mtime=0),
         gzip.compress(labels(3), mtime=0))
    seed("zero-images.idx", images(0, 4, 4), labels(0))
    seed("count-mismatch.idx", images(3, 4, 4), labels(2))
    seed("truncated-images.idx", images(3, 4, 4)[:-5], labels(3))
    seed("truncated-labels.idx", images(3, 4, 4), labels(3)[:-1])
    seed("label-out-of-range.idx", images(3, 4, 4), labels(3, classes=10), classes=2)
    seed("wrong-magic.idx", images(3, 4, 4, magic=0x801), labels(3))
    seed("short-header.idx", images(3, 4, 4)[:10], labels(3))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    eie_corpus(build)
    config_corpus()
    infer_corpus(build)
    rest_corpus()
    onnx_corpus(build)
    idx_corpus()


if __name__ == "__main__":
    main()
