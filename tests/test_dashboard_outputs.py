"""A step's output followed as it grows (src/specs/dashboard/outputs.py): whole lines only,
the rest when the attempt ends, secrets masked (the captures are raw), paths made only from
what the events recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from specs.dashboard.outputs import OutputTail, output_path
from specs.secrets import Masker


def test_lines_come_whole_and_the_rest_at_the_end(tmp_path: Path) -> None:
    masker = Masker({"SERVICE_TOKEN": "tok-0123456789abcdef"})
    tail = OutputTail(tmp_path, "1.1", masker)
    path = output_path(tmp_path, "1.1", "primary", 1, "stdout")
    path.parent.mkdir(parents=True)
    running = [("primary", 1, False)]
    assert tail.read(running) == []  # no file yet
    path.write_text("line 1\nline 2 is hal")
    assert [c["text"] for c in tail.read(running)] == ["line 1\n"]
    with path.open("a") as handle:
        handle.write("f done\nkey tok-01234")
    assert [c["text"] for c in tail.read(running)] == ["line 2 is half done\n"]
    with path.open("a") as handle:
        handle.write("56789abcdef end")  # a secret written in two pieces
    assert tail.read(running) == []
    chunks = tail.read([("primary", 1, True)])  # the attempt ended: the last, unfinished line
    assert chunks == [{"method": "primary", "attempt": 1, "stream": "stdout",
                       "text": "key [secret SERVICE_TOKEN] end"}]
    assert tail.read([("primary", 1, True)]) == []


@pytest.mark.parametrize("method", ["../x", "primary/../../lock", "backup_a", ""])
def test_an_attempts_path_is_made_only_from_a_method_label(tmp_path: Path,
                                                           method: str) -> None:
    with pytest.raises(ValueError):
        output_path(tmp_path, "1.1", method, 1, "stdout")
    with pytest.raises(ValueError):
        output_path(tmp_path, "1.1", "primary", 1, "../events.jsonl")
