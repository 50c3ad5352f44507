"""The ready line both programs print, and its one reader (mfa_shared/ready_line.py): over real
pipes of real processes, and over any lines hypothesis makes up."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st

from mfa_shared.ready_line import READY, read_json_line, read_ready_line, ready_line


@contextmanager
def child(script: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)


def test_a_line_already_in_the_streams_buffer_is_found() -> None:
    """Three lines in one write: the first readline takes all of them into the stream's
    buffer, where waiting on the pipe would never see the ready line."""
    text = "".join(f"{line}\n" for line in ["starting", '{"event": "other"}', ready_line(port=1),
                                              "after"])  # fmt: skip
    script = f"import sys,time;sys.stdout.write({text!r});sys.stdout.flush();time.sleep(60)"
    with child(script) as process:
        assert process.stdout is not None
        assert read_ready_line(process.stdout, timeout=30) == {"event": "ready", "port": 1}
        assert process.stdout.readline() == "after\n"  # left for whoever reads next


def test_a_process_that_ends_unready_is_given_up_on_at_once() -> None:
    timeout = 30.0
    with child("print('no ready line'); print('{\"event\": \"listening\"}')") as process:
        assert process.stdout is not None
        started = time.monotonic()
        assert read_ready_line(process.stdout, timeout) is None
        assert time.monotonic() - started < timeout / 2  # at the end of the stream, not later


def test_a_silent_process_is_given_up_on_at_the_timeout() -> None:
    with child("import time; time.sleep(60)") as process:
        assert process.stdout is not None
        started = time.monotonic()
        assert read_ready_line(process.stdout, timeout=0.3) is None
        assert time.monotonic() - started >= 0.3


json_objects = st.dictionaries(
    st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8), max_size=4
)
other_lines = st.one_of(
    st.text(alphabet=st.characters(exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")),
    json_objects.filter(lambda line: line.get("event") != READY).map(json.dumps),
    st.lists(st.integers(), max_size=3).map(json.dumps),
)


@given(st.lists(other_lines, max_size=8), json_objects, st.lists(other_lines, max_size=3))
def test_the_reader_takes_the_first_ready_line_whatever_comes_around_it(
    before: list[str], fields: dict[str, object], after: list[str]
) -> None:
    fields.pop("event", None)
    stream = io.StringIO("\n".join([*before, ready_line(**fields), *after]) + "\n")
    assert read_ready_line(stream, timeout=10) == {"event": READY, **fields}
    assert read_ready_line(io.StringIO("\n".join(before) + "\n"), timeout=10) is None


def test_any_json_line_can_be_waited_for() -> None:
    stream = io.StringIO('{"a": 1}\n{"b": 2}\n')
    assert read_json_line(stream, lambda line: "b" in line, timeout=10) == {"b": 2}
