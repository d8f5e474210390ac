#!/usr/bin/env python3
"""pipe's own overhead when embedding through an HTTP provider: a local
OpenAI-compatible server that answers at once, and pipe's wall time minus
the time the server spent answering.

    cargo build --release && python3 bench/embed_http.py --sizes 30000

`--baseline OTHER/target/release/pipe` measures another build too, side by
side (baseline first, then this one, per size, against the same server).

For each size: a project under bench/out/embed-http-<size> (gitignored) with
data from `pipe sample --seed 1` and one model whose [embed] table is
`provider = "openai"` at the local server. The server (in this script, on
127.0.0.1) prepares each answer's bytes once per batch size, so that its own
time is small and measured: it sums the time from reading a request to
having written its answer. The model sends one request at a time
(`parallel = 1`), so pipe's work and the server's never overlap and the
difference is exactly pipe's. Reported, per size:

- the full embeddings build (every text sent), its wall time, the server's
  busy time, and pipe's overhead = wall - server, per 30k texts;
- the same build with every vector cached (0 texts sent);
- a one-movie edit (1 text sent).
"""
import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIPE = REPO / "target" / "release" / "pipe"
DIMS = 64


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.busy = 0.0
        self.texts = 0
        self.requests = 0
        self.lock = threading.Lock()
        self.answers = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        t0 = time.perf_counter()
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length))
        n = len(body["input"])
        answer = self.server.answers.get(n)
        if answer is None:
            vector = [round(0.01 * (i + 1), 4) for i in range(DIMS)]
            data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(n)]
            answer = json.dumps(
                {"object": "list", "data": data, "model": body["model"],
                 "usage": {"prompt_tokens": n, "total_tokens": n}}
            ).encode()
            self.server.answers[n] = answer
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        dt = time.perf_counter() - t0
        with self.server.lock:
            self.server.busy += dt
            self.server.texts += n
            self.server.requests += 1


# The binary `pipe` runs (this build, or --baseline's).
BIN = [PIPE]


def pipe(args, cwd, env):
    t0 = time.perf_counter()
    p = subprocess.run([BIN[0], *args], cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"pipe {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
    return dt


def bench(n, server, tag="this"):
    work = REPO / "bench" / "out" / f"embed-http-{n}-{tag}"
    if work.exists():
        shutil.rmtree(work)
    (work / "models.d").mkdir(parents=True)
    (work / "pipeline.toml").write_text(
        '[settings]\nmodels = "models.d"\noutput-root = "public"\n\n'
        '[inputs]\nmovies = "data/movies.json"\ncollections = "data/collections.json"\n\n'
        '[targets.embeddings]\nkind = "embeddings"\n'
    )
    url = f"http://127.0.0.1:{server.server_address[1]}"
    (work / "models.d" / "bench.toml").write_text(
        f'id = "bench"\nname = "Bench"\ndimensions = {DIMS}\n'
        'embeddings = "data/embeddings-bench-movies.db"\ndefault = true\n\n'
        f'[embed]\nprovider = "openai"\nmodel = "bench"\nurl = "{url}/v1"\n'
        'batch = 256\nparallel = 1\n'
    )
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    pipe(["sample", "--movies", str(n), "--seed", "1", "--dir", str(work), "-q"], work, env)
    out = {}

    def measured(label):
        with server.lock:
            server.busy, server.texts, server.requests = 0.0, 0, 0
        wall = pipe(["build", "-q", "embeddings@bench"], work, env)
        with server.lock:
            out[label] = (wall, server.busy, server.texts, server.requests)

    # Warm-up: the first build after generating the data competes with the
    # kernel writing it back; measure a second cold build (no cache, no state).
    measured("warm-up")
    shutil.rmtree(work / ".pipe")
    (work / "data" / "embeddings-bench-movies.db").unlink()
    measured("full")
    (work / "data" / "embeddings-bench-movies.db").unlink()
    measured("cached")
    movies = json.loads((work / "data" / "movies.json").read_text())
    first = next(k for k in movies if not k.startswith("_"))
    movies[first]["metadata"]["Plot"] = "An edited plot for the benchmark."
    (work / "data" / "movies.json").write_text(json.dumps(movies, ensure_ascii=False, indent=2), encoding="utf-8")
    measured("one edit")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="30000")
    ap.add_argument("--baseline", help="another pipe binary to measure side by side")
    args = ap.parse_args()
    if not PIPE.exists():
        sys.exit("build first: cargo build --release")
    server = Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"load before: {os.getloadavg()}", file=sys.stderr)
    print("| pipe | movies | build | texts sent | requests | wall | server busy | pipe overhead | per 30k texts |")
    print("|---|---|---|---|---|---|---|---|---|")
    builds = ([(Path(args.baseline), "baseline")] if args.baseline else []) + [(PIPE, "this")]
    for n in [int(s) for s in args.sizes.split(",")]:
        for binary, tag in builds:
            BIN[0] = binary
            for label, (wall, busy, texts, requests) in bench(n, server, tag).items():
                if label == "warm-up":
                    continue
                over = wall - busy
                per = f"{over * 30000 / texts:.2f} s" if texts else "-"
                print(f"| {tag} | {n} | {label} | {texts} | {requests} | {wall:.2f} s | {busy:.2f} s | {over:.2f} s | {per} |")
    print(f"load after: {os.getloadavg()}", file=sys.stderr)
    server.shutdown()


if __name__ == "__main__":
    main()
