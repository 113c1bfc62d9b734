"""``cato-mq up``: the whole fleet on this machine, one command, one process tree.

Redis with its append-only file in the data directory (unless ``--redis-url``), one agent
owning ``--devices``, beat and the provisioner (which orders the agent's first replica),
Flower behind a login, and the gateway last, so it accepts requests only once the rest is
there. Ctrl-C or SIGTERM stops them in the reverse order (``cato_mq.fleet.stack``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError

import redis

from cato_mq.fleet import flower, launch
from cato_mq.fleet.home import Home, default_data_dir
from cato_mq.fleet.stack import Service, ServiceFailed, Stack

#: vLLM loads its model before a worker registers: a minute and more on a busy 2-core host
VLLM_READY_S = 600.0
SIM_READY_S = 120.0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    """Any HTTP answer counts: a gateway with no replica yet says 503, but it is up."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except HTTPError:
        return True
    except (URLError, OSError):
        return False


def _check(args: argparse.Namespace) -> None:
    problems = []
    if args.devices < 0:
        problems.append("--devices must be 0 (no local workers) or more")
    for flag, port in (("--port", args.port), ("--flower-port", args.flower_port)):
        if not 0 < port < 65536:
            problems.append(f"{flag} {port} is not a TCP port")
        elif not _port_free(args.host, port):
            problems.append(f"{flag} {port} is in use on {args.host}; pick another with {flag}")
    if args.flower_login:
        flower.Login.parse(args.flower_login)
    if args.engine == "vllm" and importlib.util.find_spec("vllm") is None:
        problems.append("--engine vllm needs an engine package: pip install 'cato-mq[cpu]' (or [gpu], [npu])")
    if problems:
        raise ValueError("\n".join(problems))  # one line each


def _pools_file(args: argparse.Namespace, home: Home) -> str | None:
    """vLLM workers read their model from a pools file: the given one, else the tiny model,
    generated into the data directory on the first run (a few seconds, nothing downloaded)."""
    if args.pools_file:
        return str(Path(args.pools_file).resolve())
    if args.engine != "vllm":
        return None
    from cato_mq.engine.tiny_model import TINY_POOL, make_tiny_model
    from cato_mq.fleet.pools import write_pools

    if not (home.tiny_model / "config.json").is_file():
        _say(f"generating the tiny model in {home.tiny_model} (first run only) ...")
        make_tiny_model(home.tiny_model)
    return str(write_pools(home.pools_file, {"default": {"model": str(home.tiny_model), **TINY_POOL}}))


def services(args: argparse.Namespace, home: Home, redis_url: str, login: flower.Login | None,
             local: launch.LocalRedis | None) -> list[Service]:
    cli = [sys.executable, "-m", "cato_mq.cli"]
    client = _client(redis_url)
    out = []
    if local is not None:
        out.append(Service("redis", local.command(), ready=lambda: _pings(client), ready_timeout_s=120,
                           stop_timeout_s=60, kill_in_hurry=False))
    if args.devices:
        from cato_mq.state import keys

        host = socket.gethostname()
        devices = ",".join(str(i) for i in range(args.devices))
        out.append(Service("agent", [*cli, "agent", "--devices", devices, "--engine", args.engine,
                                     "--host", host, "--log-dir", str(home.logs / "workers")],
                           ready=lambda: client.zscore(keys.agents(), host) is not None,
                           stop_timeout_s=60))  # the agent drains its workers first
    out.append(Service("beat", [*cli, "beat"]))
    out.append(Service("provisioner", [*cli, "provisioner"]))
    if login is not None:
        base = f"http://{args.host}:{args.flower_port}"
        argv = flower.command(args.flower_port, login, home.flower_db, args.host)
        out.append(Service("flower", argv, ready=lambda: _answers(f"{base}/healthcheck")))
    gateway = f"http://{args.host}:{args.port}"
    out.append(Service("gateway", [*cli, "gateway", "--host", args.host, "--port", str(args.port)],
                       ready=lambda: _answers(f"{gateway}/health"), stop_timeout_s=30))
    return out


def _client(url: str) -> redis.Redis[str]:
    """A client for any URL the fleet takes (``rediss://``, ``sentinel://`` too)."""
    from cato_mq.settings import get_settings
    from cato_mq.state.connect import connect

    return connect(url, get_settings().redis_master)


def _pings(client: redis.Redis[str]) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.BusyLoadingError):
        return False


def _wait_replicas(redis_url: str, pools: tuple[str, ...], stop: threading.Event, timeout_s: float) -> None:
    """The provisioner orders each pool's first replica; the fleet serves once they join."""
    from cato_mq.state import keys

    client = _client(redis_url)
    _say(f"waiting for a live replica of {', '.join(pools)} ...")
    until = time.monotonic() + timeout_s
    while not stop.is_set() and any(client.hlen(keys.replicas(p)) == 0 for p in pools):
        if time.monotonic() > until:
            raise TimeoutError(f"no replica joined within {timeout_s:g} s; see the agent's and workers' logs")
        stop.wait(0.1)


def banner(args: argparse.Namespace, home: Home, redis_url: str, login: flower.Login | None, key: str | None,
           took_s: float) -> str:
    gateway = f"http://{args.host}:{args.port}"
    engine = f"{args.engine} engine, {args.devices} device(s)" if args.devices else "no local workers"
    body = '{"model": "default", "prompt": "def fib(n):", "max_tokens": 32}'
    shown = key or "YOUR-KEY"
    lines = [
        f"cato-mq is up ({engine}) after {took_s:.1f} s",
        f"  gateway  {gateway}/v1  (OpenAI API; Prometheus metrics at {gateway}/metrics)",
        f"  api key  {key}  (kept in {home.api_keys_file})" if key else
        "  api key  one of CATO_API_KEYS_FILE's",
        f"  flower   http://{args.host}:{args.flower_port}  login {login}" if login else "  flower   not started",
        f"  redis    {redis_url}",
        f"  data     {home.root}  (logs in {home.logs})",
        "",
        "Try it:",
        f"  curl -s {gateway}/v1/completions -H 'authorization: Bearer {shown}' "
        f"-H 'content-type: application/json' -d '{body}'",
        f"  python -c 'from openai import OpenAI; c = OpenAI(base_url=\"{gateway}/v1\", api_key=\"{shown}\"); "
        "print(c.completions.create(model=\"default\", prompt=\"def fib(n):\", max_tokens=32).choices[0].text)'",
        f"  CATO_REDIS_URL='{redis_url}' cato-mq submit --kind completion --prompt 'def fib(n):'",
        "",
        "Ctrl-C stops everything (twice: without waiting for in-flight work).",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    _check(args)
    home = Home(Path(args.data_dir).expanduser().resolve()).prepare()
    (home.logs / "workers").mkdir(exist_ok=True)
    began = time.monotonic()
    stop = threading.Event()
    signals = 0

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal signals
        signals += 1
        # set from another thread: the handler runs in the main thread, which may be inside
        # stop.wait() holding the event's lock, and Event.set() here would wait on it forever
        # (seen: `cato-mq up` ignoring SIGINT and SIGTERM, blocked on a futex)
        threading.Thread(target=_wake, args=(signals > 1,), daemon=True).start()

    def _wake(hurry: bool) -> None:
        stop.set()
        if hurry:
            stack.hurry.set()

    local = None
    if args.redis_url:
        redis_url = args.redis_url
        _client(redis_url).ping()  # out of reach: exit 1 with redis' own message
    else:
        local = launch.LocalRedis(home.redis_port(args.redis_port), home.redis_dir, home.redis_password(),
                                  args.redis_maxmemory)
        redis_url = local.url
    login = None
    if importlib.util.find_spec("flower") is not None:
        login = flower.Login.parse(args.flower_login) if args.flower_login else flower.Login.generate()
    else:
        _say("flower is not installed (pip install 'cato-mq[monitor]'): starting without it")
    env = {"CATO_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    key = None
    if not os.environ.get("CATO_API_KEYS_FILE"):  # the gateway asks for a key, made once
        key = home.api_key()
        env["CATO_API_KEYS_FILE"] = str(home.api_keys_file)
    pools_file = _pools_file(args, home)
    if pools_file:
        env["CATO_POOLS_FILE"] = pools_file
    stack = Stack(home.logs, env, _say)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for service in services(args, home, redis_url, login, local):
            stack.start(service, stop)
            if stop.is_set():
                break
        if not stop.is_set() and args.devices:
            from cato_mq.settings import get_settings

            pools = get_settings().pools
            _wait_replicas(redis_url, pools, stop, VLLM_READY_S if args.engine == "vllm" else SIM_READY_S)
        if not stop.is_set():
            print(banner(args, home, redis_url, login, key, time.monotonic() - began), flush=True)
            stack.watch(stop)
        return 0
    except ServiceFailed as exc:
        _say(f"cato-mq up: {exc}\n--- last lines of {home.logs / (exc.service + '.log')}\n{exc.log_tail}")
        return 1
    finally:
        stack.stop_all()
        _say("stopped")


def register(sub: Any) -> None:
    u = sub.add_parser("up", help="run the whole fleet here: Redis, agent, beat, provisioner, Flower, gateway",
                       description="Run the whole fleet on this machine until Ctrl-C or SIGTERM, then stop "
                                   "it in order. Data (Redis's append-only file, logs) stays in --data-dir.")
    u.add_argument("--data-dir", default=str(default_data_dir()), help="kept between runs (default: %(default)s)")
    u.add_argument("--redis-url", help="use this Redis instead of starting one")
    u.add_argument("--redis-port", type=int, help="port of the embedded Redis (default: the last run's, or free)")
    u.add_argument("--redis-maxmemory", default="1gb",
                   help="memory cap of the embedded Redis; when full, new requests are refused (default: %(default)s)")
    u.add_argument("--devices", type=int, default=1, help="devices the local agent owns; 0: no local workers")
    u.add_argument("--engine", choices=["sim", "vllm"], default="sim",
                   help="sim: simulated engine; vllm: real vLLM (the tiny model unless --pools-file)")
    u.add_argument("--pools-file", help="model pools file for --engine vllm")
    u.add_argument("--host", default="127.0.0.1", help="address the gateway and Flower listen on")
    u.add_argument("--port", type=int, default=8000, help="gateway port (default: %(default)s)")
    u.add_argument("--flower-port", type=int, default=5555, help="Flower port (default: %(default)s)")
    u.add_argument("--flower-login", help="USER:PASSWORD for Flower (default: a generated one, printed)")
    u.set_defaults(func=main)
