"""Delivery tags and epoch candidates: unique within a process and across a fork."""

from __future__ import annotations

import os

from cato_mq.state import tags


def test_tags_do_not_repeat_in_a_process() -> None:
    drawn = [tags.unique() for _ in range(10_000)]
    assert len(set(drawn)) == len(drawn)


def test_a_forked_child_draws_tags_its_parent_never_does() -> None:
    before = tags.unique()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first tags, to the parent
        os.write(write, " ".join(tags.unique() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode().split()
    os.waitpid(pid, 0)
    parent = [tags.unique() for _ in range(3)]
    assert len(child) == 3 and not set(child) & {before, *parent}
    assert child[0][:16] != before[:16]  # a prefix of its own
