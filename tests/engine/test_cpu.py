"""engine.cpu: the meter against real processes, and the fit of the host's cost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cato_mq.engine.cpu import ENGINE_TITLES, CpuMeter, CpuUse, host_cost

#: A child that names itself (as vLLM titles its model runner) and burns CPU, then says so
#: and stays alive until its stdin closes: the meter reads only processes still alive.
BURNER = """
import ctypes, sys, time
if sys.argv[1] != "-":
    ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
until = time.process_time() + float(sys.argv[2])
while time.process_time() < until:
    pass
print("done", flush=True)
sys.stdin.read()
"""


def test_the_meter_splits_the_engines_cpu_from_the_hosts() -> None:
    meter = CpuMeter()
    engine = subprocess.Popen([sys.executable, "-c", BURNER, ENGINE_TITLES[1], "0.4"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    host = subprocess.Popen([sys.executable, "-c", BURNER, "-", "0.3"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        for child in (engine, host):
            assert child.stdout is not None and child.stdout.readline() == "done\n"
        use = meter.read(nodes=3, tokens=40)
    finally:
        for child in (engine, host):
            assert child.stdin is not None
            child.stdin.close()
            child.wait(10)
    # the burn, plus each interpreter's start-up (a fraction of a second at most)
    assert 0.4 <= use.engine_s < 1.2
    assert 0.3 <= use.host_s < 2.0
    assert use.wall_s >= 0.3 and (use.nodes, use.tokens) == (3, 40)


def test_the_fit_finds_the_cost_per_node_and_per_token_when_the_mix_varies() -> None:
    runs = [(3000, 300_000), (2500, 150_000), (1200, 120_000)]
    uses = [CpuUse(0.0, 0.002 * n + 0.00005 * t, 20.0, n, t) for n, t in runs]
    assert host_cost(uses) == pytest.approx((0.002, 0.00005))
    # what the profile already paid a token comes off the per-token cost, not the per-node
    assert host_cost(uses, paid_per_token_s=0.00002) == pytest.approx((0.002, 0.00003))


def test_with_one_mix_or_a_cost_below_zero_the_tokens_alone_carry_the_hosts_work() -> None:
    same_mix = [CpuUse(0.0, 0.0001 * t, 20.0, t // 100, t) for t in (100_000, 200_000, 300_000)]
    assert host_cost(same_mix) == pytest.approx((0.0, 0.0001))
    assert host_cost(same_mix, paid_per_token_s=0.00004) == pytest.approx((0.0, 0.00006))
    # a profile that paid more than the runs spent leaves nothing to charge, not a refund
    assert host_cost(same_mix, paid_per_token_s=0.001) == (0.0, 0.0)
    # more host time with fewer tokens: a negative per-token cost is not a cost
    odd = [CpuUse(0.0, 10.0, 20.0, 1000, 100_000), CpuUse(0.0, 12.0, 20.0, 1100, 50_000)]
    assert host_cost(odd) == pytest.approx((0.0, (10.0 * 100_000 + 12.0 * 50_000) / (100_000**2 + 50_000**2)))
    assert host_cost([]) == (0.0, 0.0)
