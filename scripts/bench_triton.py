#!/usr/bin/env python3
"""Benchmark: N clients streaming through one `edge-edet serve` against N clients each running the model locally.

    python scripts/bench_triton.py [--model person4.onnx] [--clients 1,2,4] [--source VIDEO] [--max-frames N]

Without --model it exports the bundled person detector (lite0, --dynamic-batch 4) into a temporary
folder.  Every client is a real `edge-edet run --no-drop --headless` process on the same video,
all started at once.  Reported per configuration: aggregate FPS (all frames over the longest
client's stream time, so it never flatters), p50 / p99 end-to-end latency (capture to sink, from
each client's summary: mean of p50s, max of p99s) and, for the server, the mean batch Triton
formed (inference count / execution count from its statistics, over that configuration only).
Server and local runs alternate per client count (the idle server stays up), so the load of a
shared machine drifts over both alike.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = os.path.join(os.path.dirname(REPO), "shared", "data", "video", "people_walking.mp4")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def edge_edet(*argv, **kwargs):
    return [sys.executable, "-m", "edge_edet", *argv]


def export_person(folder):
    path = os.path.join(folder, "person4.onnx")
    subprocess.run(edge_edet("export", "--model", "lite0", "--weights", "person", "--dynamic-batch", "4",
                             "--output", path), cwd=REPO, check=True)
    return path


def server_counts(client, name):
    stats = client.get_inference_statistics(name, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def run_clients(engine, count, source, folder, tag, max_frames):
    procs, paths = [], []
    for index in range(count):
        path = os.path.join(folder, f"{tag}-{count}-{index}.json")
        argv = ["run", "--engine", engine, "--source", source, "--no-drop", "--headless", "--summary-json", path]
        if max_frames:
            argv += ["--max-frames", str(max_frames)]
        procs.append(subprocess.Popen(edge_edet(*argv), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True))
        paths.append(path)
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a client failed: {err.strip()}")
    summaries = [json.load(open(path)) for path in paths]
    frames = sum(s["frames"] for s in summaries)
    longest = max(s["elapsed_s"] for s in summaries)
    return {"clients": count, "frames": frames, "dropped": sum(s["dropped"] for s in summaries),
            "aggregate_fps": round(frames / longest, 2),
            "latency_p50_ms": round(sum(s["latency"]["p50_ms"] for s in summaries) / count, 1),
            "latency_p99_ms": round(max(s["latency"]["p99_ms"] for s in summaries), 1),
            "network_ms": [s.get("backend", {}).get("remote", {}).get("network_ms") for s in summaries]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="deploy ONNX with a dynamic batch (default: export person4)")
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--max-queue-delay-us", type=int, default=2000)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    import tritonclient.grpc as grpcclient

    with tempfile.TemporaryDirectory(prefix="bench_triton-") as folder:
        model = args.model or export_person(folder)
        http, grpc, metrics = free_ports(3)
        server = subprocess.Popen(edge_edet("serve", "--engine", model, "--name", "person", "--http-port", str(http),
                                            "--grpc-port", str(grpc), "--metrics-port", str(metrics),
                                            "--max-queue-delay-us", str(args.max_queue_delay_us)),
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc}")
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if client.is_model_ready("person"):
                    break
            except Exception:
                pass
            if server.poll() is not None:
                raise SystemExit(f"serve failed: {server.stdout.read()}")
            time.sleep(0.5)
        results = []
        try:  # interleaved (server, then local, per client count) so a shared machine's drift hits both alike
            for count in counts:
                before = server_counts(client, "person")
                row = run_clients(f"triton://127.0.0.1:{grpc}/person", count, args.source, folder, "triton",
                                  args.max_frames)
                after = server_counts(client, "person")
                row["mean_batch"] = round((after[0] - before[0]) / max(1, after[1] - before[1]), 2)
                row["mode"] = "triton"
                results.append(row)
                print(json.dumps(row), flush=True)
                row = run_clients(model, count, args.source, folder, "local", args.max_frames)
                row["mode"] = "local ORT"
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            client.close()
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=60)

    best_local = max(r["aggregate_fps"] for r in results if r["mode"] != "triton")
    print()
    print(f"{'mode':<10} {'clients':>7} {'frames':>6} {'agg FPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10}")
    for r in results:
        print(f"{r['mode']:<10} {r['clients']:>7} {r['frames']:>6} {r['aggregate_fps']:>8.2f} {r['latency_p50_ms']:>8.1f} "
              f"{r['latency_p99_ms']:>8.1f} {r.get('mean_batch', '-'):>10}")
    top = [r for r in results if r["mode"] == "triton" and r["clients"] == max(counts)][0]
    print(f"\nserver with {top['clients']} clients: {top['aggregate_fps']:.2f} FPS = "
          f"{top['aggregate_fps'] / best_local * 100:.0f}% of the best local configuration ({best_local:.2f} FPS); "
          f"mean batch {top['mean_batch']}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
