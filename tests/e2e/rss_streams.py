"""Measurement, not a test: the daemon's RSS with 3000 health Watch streams
open and after they close, and with 3000 unary calls from a client that
advertises a zero receive window. Run from tests/e2e:

    EIE_BUILD_ROOT=../../build /usr/bin/python3 rss_streams.py ['[server]\\nsend_timeout = 1s']

The optional argument is extra config text (e.g. max_watch_streams = 100000
to see the memory of 3000 open Watch streams and its return after they close).
"""
import sys
import time

import grpc

import test_hardening as t
from harness import Daemon

N = 3000


def mb(d):
    return t.rss_kb(d.proc.pid) / 1024


def main():
    extra = sys.argv[1].replace("\\n", "\n") if len(sys.argv) > 1 else ""
    with Daemon(extra) as d:
        time.sleep(0.5)
        idle = mb(d)
        chans = [grpc.insecure_channel("127.0.0.1:%d" % d.health_port,
                                       options=(("grpc.use_local_subchannel_pool", 1),))
                 for _ in range(4)]
        calls = []
        for i in range(N):
            watch = chans[i % 4].unary_stream(
                t.HEALTH + "Watch", request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=t.HealthResp.FromString)
            calls.append(watch(t.HealthReq(service="readiness")))
        opened = refused = 0
        for c in calls:
            try:
                next(c)
                opened += 1
            except grpc.RpcError:
                refused += 1
        during = mb(d)
        for c in calls:
            c.cancel()
        for ch in chans:
            ch.close()
        time.sleep(3)
        print("watch: %d open, %d refused; RSS idle %.1f MB, with the streams %.1f MB, "
              "3 s after closing %.1f MB" % (opened, refused, idle, during, mb(d)))
        before = mb(d)
        socks = [t.stalled_calls(d.port, 1000) for _ in range(N // 1000)]
        time.sleep(2)
        held, live = mb(d), t.metrics(d.metrics_port)["eie_server_live_calls"]
        time.sleep(3)
        later, live2 = mb(d), t.metrics(d.metrics_port)["eie_server_live_calls"]
        for s in socks:
            s.close()
        print("zero window: RSS before %.1f MB; 2 s after %d calls %.1f MB (%d live); "
              "5 s after %.1f MB (%d live)" % (before, N, held, live, later, live2))


if __name__ == "__main__":
    main()
