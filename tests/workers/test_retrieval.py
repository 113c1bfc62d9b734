from workers.retrieval import chunks, search, tokens


def test_tokens_split_identifiers() -> None:
    assert tokens("def parseHttpRequest(raw_bytes): pass") == [
        "def", "parse", "http", "request", "raw", "bytes", "pass",
    ]


def test_search_ranks_the_matching_chunk_first() -> None:
    files = [
        ("net.py", "def parse_http_request(raw):\n    return raw.split(b'\\r\\n')\n"),
        ("math.py", "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n"),
    ]
    hits = search("complete fibonacci for n", files)
    assert hits and hits[0].path == "math.py"
    assert all(h.path != "net.py" for h in hits)  # no shared terms, no hit


def test_long_files_are_chunked_and_located() -> None:
    text = "\n".join(f"x{i} = {i}" for i in range(30)) + "\ndef needle_finder(): pass\n"
    hits = search("needle finder", [("big.py", text)])
    assert hits[0].start_line == 25
    assert len(chunks("big.py", text)) == 3


def test_empty_context_finds_nothing() -> None:
    assert search("anything", []) == []
