"""The cache of cognitive attempts (`--cache`, `[execution] cache = true`), end to end through
`specs run` against the real local LLM server: an unchanged spec re-run makes zero requests
(the server's request count), a changed prompt misses, a corrupt entry is ignored with a
warning and replaced, attempts that wrote files are not cached, a changed file the model read
misses, and `--no-cache` wins over the spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llm_server import (
    LlmServer,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from test_llm_steps import HEAD, TWO_STEPS, cli, write


def jsonl(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def of(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


class Runs:
    """`specs run` of one spec folder, each run in the same state folder (one cache)."""

    def __init__(self, folder: Path, server: LlmServer, state: Path) -> None:
        self.folder, self.server, self.state = folder, server, state
        self.stderr = ""

    def __call__(self, *args: str, code: int = 0) -> list[dict[str, Any]]:
        done = cli("run", self.folder, "--json", "--state-dir", self.state, *args,
                   env={"OPENAI_BASE_URL": self.server.openai_url})
        assert done.returncode == code, done.stderr
        self.stderr = done.stderr
        return jsonl(done.stdout)


def greet(server: LlmServer) -> None:
    server.handler = lambda r: openai_chat("Hello, team!", usage=(100, 20))


def test_an_unchanged_spec_rerun_makes_zero_requests(llm_server: LlmServer,
                                                     tmp_path: Path) -> None:
    greet(llm_server)
    run = Runs(write(tmp_path, TWO_STEPS), llm_server, tmp_path / "state")
    first = run("--cache")
    assert len(llm_server.posts) == 2
    assert [e["cached"] for e in of(first, "attempt-ended")] == [False, False]
    entries = list((tmp_path / "state" / "cache").rglob("*.json"))
    assert len(entries) == 2
    second = run("--cache")
    assert len(llm_server.posts) == 2  # not one request more
    ended = of(second, "attempt-ended")
    assert [e["cached"] for e in ended] == [True, True]
    assert all(e["usage"] == {"input_tokens": 0, "output_tokens": 0} and e["cost_usd"] == 0
               for e in ended)
    assert [e["output"] for e in ended] == [e["output"] for e in of(first, "attempt-ended")]
    assert not of(second, "llm-call")
    assert of(second, "run-ended")[-1]["goal_achievement_status"] == "ACHIEVED"
    doc = json.loads((tmp_path / "demo" / "progress_demo.json").read_text())
    assert doc["llm_usage"]["cached_attempts"] == 2 and doc["llm_usage"]["calls"] == 0


def test_the_spec_turns_the_cache_on_and_no_cache_turns_it_off(llm_server: LlmServer,
                                                               tmp_path: Path) -> None:
    greet(llm_server)
    text = TWO_STEPS.replace('default_mode = "silent"', 'default_mode = "silent"\ncache = true')
    run = Runs(write(tmp_path, text), llm_server, tmp_path / "state")
    run()
    run()
    assert len(llm_server.posts) == 2
    events = run("--no-cache")
    assert len(llm_server.posts) == 4
    assert [e["cached"] for e in of(events, "attempt-ended")] == [False, False]


def test_without_the_cache_every_run_calls(llm_server: LlmServer, tmp_path: Path) -> None:
    greet(llm_server)
    run = Runs(write(tmp_path, TWO_STEPS), llm_server, tmp_path / "state")
    run()
    run()
    assert len(llm_server.posts) == 4
    assert not (tmp_path / "state" / "cache").exists()


def test_a_changed_prompt_misses(llm_server: LlmServer, tmp_path: Path) -> None:
    greet(llm_server)
    folder = write(tmp_path, TWO_STEPS)
    run = Runs(folder, llm_server, tmp_path / "state")
    run("--cache")
    params = folder / "parameters_demo.toml"
    params.write_text(params.read_text().replace('"the polished greeting"',
                                                 '"the polished greeting, in capitals"'))
    events = run("--cache")
    assert len(llm_server.posts) == 3  # step 2 asked again; step 1 came from the cache
    assert [e["cached"] for e in of(events, "attempt-ended")] == [True, False]
    assert "in capitals" in json.dumps(llm_server.posts[-1].body)


def test_another_model_misses(llm_server: LlmServer, tmp_path: Path) -> None:
    greet(llm_server)
    run = Runs(write(tmp_path, TWO_STEPS), llm_server, tmp_path / "state")
    run("--cache", "--model", "model-a")
    run("--cache", "--model", "model-b")
    assert len(llm_server.posts) == 4
    run("--cache", "--model", "model-a")
    assert len(llm_server.posts) == 4


def test_a_corrupt_entry_is_ignored_with_a_warning_and_replaced(llm_server: LlmServer,
                                                                tmp_path: Path) -> None:
    greet(llm_server)
    run = Runs(write(tmp_path, TWO_STEPS), llm_server, tmp_path / "state")
    run("--cache")
    entries = sorted((tmp_path / "state" / "cache").rglob("*.json"))
    entries[0].write_text('{"format": 1, "key": "trunc')
    entries[1].write_text(json.dumps({"format": 1, "key": "another", "text": "x"}))
    events = run("--cache")
    warnings = of(events, "warning")
    assert len(warnings) == 2
    assert all("is corrupt" in w["message"] and "ignored" in w["message"] for w in warnings)
    assert "warning: cache entry" in run.stderr and "is corrupt" in run.stderr
    assert len(llm_server.posts) == 4
    assert of(events, "run-ended")[-1]["goal_achievement_status"] == "ACHIEVED"
    for entry in entries:  # replaced by the fresh answers
        assert json.loads(entry.read_text())["text"] == "Hello, team!"
    run("--cache")
    assert len(llm_server.posts) == 4


ONE = HEAD + """
[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Write the greeting"
expected_output = "a greeting"
"""


def test_an_attempt_that_wrote_a_file_is_not_cached(llm_server: LlmServer,
                                                    tmp_path: Path) -> None:
    def answer(recorded: Any) -> dict[str, Any]:
        if recorded.method != "POST":
            return {"object": "list", "data": []}
        if any(m["role"] == "tool" for m in recorded.body["messages"]):
            return openai_chat("Wrote hello.txt")
        return openai_chat(None, tool_calls=[("c1", "write_file",
                                              {"path": "hello.txt", "content": "hi\n"})])

    llm_server.handler = answer
    folder = write(tmp_path, ONE)
    run = Runs(folder, llm_server, tmp_path / "state")
    run("--cache")
    assert (folder / "hello.txt").read_text() == "hi\n"
    (folder / "hello.txt").unlink()
    events = run("--cache")
    assert len(llm_server.posts) == 4  # called again: the file is written again
    assert (folder / "hello.txt").read_text() == "hi\n"
    assert [e["cached"] for e in of(events, "attempt-ended")] == [False]
    assert not list((tmp_path / "state" / "cache").rglob("*.json"))


def test_read_only_attempts_are_cached_until_a_file_read_changes(llm_server: LlmServer,
                                                                 tmp_path: Path) -> None:
    def answer(recorded: Any) -> dict[str, Any]:
        if recorded.method != "POST":
            return {"object": "list", "data": []}
        tool = [m for m in recorded.body["messages"] if m["role"] == "tool"]
        if tool:
            return openai_chat(f"The notes say: {tool[0]['content'].strip()}")
        return openai_chat(None, tool_calls=[("c1", "read_file", {"path": "notes.txt"})])

    llm_server.handler = answer
    folder = write(tmp_path, ONE)
    (folder / "notes.txt").write_text("say hi\n")
    run = Runs(folder, llm_server, tmp_path / "state")
    first = run("--cache")
    assert of(first, "attempt-ended")[0]["output"] == "The notes say: say hi"
    again = run("--cache")
    assert len(llm_server.posts) == 2
    assert of(again, "attempt-ended")[0]["cached"] is True
    (folder / "notes.txt").write_text("say hello\n")
    changed = run("--cache")
    assert len(llm_server.posts) == 4
    assert of(changed, "attempt-ended")[0]["output"] == "The notes say: say hello"


def test_a_retry_with_the_same_request_calls_the_model(llm_server: LlmServer,
                                                       tmp_path: Path) -> None:
    """A cached answer that failed its checks is not served again to the retry."""
    text = ONE.replace('expected_output = "a greeting"', 'expected_output = "a greeting"\n'
                       'max_retries = 1\nverify = [\'test "$(cat ok)" = yes\']')
    greet(llm_server)
    folder = write(tmp_path, text)
    (folder / "ok").write_text("no")
    run = Runs(folder, llm_server, tmp_path / "state")
    events = run("--cache", code=1)
    calls = len(llm_server.posts)
    assert calls == 2  # the retry was not answered from the first attempt's entry
    assert [(e["outcome"], e["cached"]) for e in of(events, "attempt-ended")] == [
        ("failure", False), ("failure", False)]
    (folder / "ok").write_text("yes")
    events = run("--cache")
    assert of(events, "attempt-ended")[0]["cached"] is True
    assert len(llm_server.posts) == calls


def test_the_key_covers_what_decides_the_answer(tmp_path: Path) -> None:
    from specs.llm.cache import CacheEntry, ResponseCache
    from specs.llm.providers.base import Message, Request

    cache = ResponseCache(tmp_path / "cache")
    base = Request(model="", messages=(Message("user", "hi"),), temperature=0.2,
                   max_output_tokens=100)
    key = cache.key("openai", "m", base)
    variants = [cache.key("anthropic", "m", base), cache.key("openai", "m2", base),
                cache.key("openai", "m", Request(model="", messages=(Message("user", "hi!"),),
                                                 temperature=0.2, max_output_tokens=100)),
                cache.key("openai", "m", Request(model="", messages=base.messages,
                                                 temperature=0.3, max_output_tokens=100)),
                cache.key("openai", "m", Request(model="", messages=base.messages,
                                                 temperature=0.2, max_output_tokens=101)),
                cache.key("openai", "m", Request(model="", messages=base.messages,
                                                 temperature=0.2, max_output_tokens=100,
                                                 json_schema={"type": "object"}))]
    assert len({key, *variants}) == 7
    assert cache.key("openai", "m", base) == key
    assert cache.load(key) == (None, None)
    entry = CacheEntry(key, "hello", {"a": 1}, {"input_tokens": 3, "output_tokens": 4}, "m",
                       (("read_file", {"path": "x"}, "0" * 64),))
    assert cache.store(entry) is None
    assert cache.load(key) == (entry, None)
    assert not list(cache.path(key).parent.glob("*.tmp"))
