"""``cato-mq bench faults``: the fault suite of issue 13.

Each row runs on a Redis of its own (``server``) with two sim-engine workers under the
same load, injects one fault (``rows``), and counts per request what the client got:
a result, a failure with a reason (an ``err`` event, or an exception from ``submit``),
or nothing at all by ``wait_s`` after the load (lost). It also counts worker processes
that exited without being killed by the row, and Redis's peak memory (``run``). The
short form (``--short``) runs every row in a few minutes and is a CI test.

May import anything (a benchmark wing).
"""
