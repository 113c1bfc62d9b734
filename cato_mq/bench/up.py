"""``cato-mq bench up``: from typing ``cato-mq up`` to the first answer through the gateway.

Runs the real command on a fresh data directory (so a vLLM run includes generating the tiny
model), sends one completion to the gateway as soon as the banner is printed, and samples
the memory of the whole process tree meanwhile. Memory is PSS (proportional set size):
pages the processes share, such as the Python libraries every child maps, are split among
them rather than counted once per process, so the sum is what the fleet really takes.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from cato_mq.fleet.launch import free_port, process_tree

BANNER_END = "Ctrl-C stops everything"


@dataclass(frozen=True, slots=True)
class UpRun:
    engine: str
    up_s: float  # command to banner: every service ready, a replica live
    first_answer_s: float  # command to the first completion answered through the gateway
    peak_pss_mib: float  # whole process tree, sampled every 0.2 s until the answer
    processes: int


def pss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue  # exited meanwhile
    return total_kib / 1024


def run_once(engine: str, devices: int, data_dir: Path) -> UpRun:
    port = free_port()
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cato_mq.cli", "up", "--data-dir", str(data_dir), "--engine", engine,
         "--devices", str(devices), "--port", str(port), "--flower-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    peak, count, done = 0.0, 0, threading.Event()

    def sample() -> None:
        nonlocal peak, count
        while not done.wait(0.2):
            pids = process_tree(proc.pid)
            peak, count = max(peak, pss_mib(pids)), max(count, len(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        assert proc.stdout is not None
        key = ""
        for line in proc.stdout:
            if line.strip().startswith("api key "):
                key = line.split()[2]
            if line.startswith(BANNER_END):
                break
        else:
            raise RuntimeError(f"cato-mq up exited with code {proc.wait()} before it was up")
        up_s = time.monotonic() - began
        body = json.dumps({"model": "default", "prompt": "def fib(n):", "max_tokens": 16}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                         headers={"content-type": "application/json",
                                                  "authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            json.load(answer)
        first_s = time.monotonic() - began
    finally:
        done.set()
        sampler.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return UpRun(engine, up_s, first_s, peak, count)


def report(runs: list[UpRun]) -> str:
    rows = ["| engine | up (banner) | first answer | peak memory (PSS, whole tree) | processes |",
            "|---|---|---|---|---|"]
    rows += [f"| {r.engine} | {r.up_s:.1f} s | {r.first_answer_s:.1f} s | {r.peak_pss_mib:.0f} MiB | {r.processes} |"
             for r in runs]
    return "\n".join(rows)


def main(args: argparse.Namespace) -> int:
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ("sim", "vllm")]
    if unknown or not engines:
        raise ValueError(f"--engines takes sim and/or vllm, not {args.engines!r}")
    runs = []
    for engine in engines:
        with tempfile.TemporaryDirectory(prefix="cato-bench-up-") as tmp:
            print(f"cato-mq up --engine {engine} on a fresh data directory ...", file=sys.stderr, flush=True)
            runs.append(run_once(engine, args.devices, Path(tmp)))
    print(report(runs))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0
