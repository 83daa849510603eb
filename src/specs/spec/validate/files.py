"""The files beside the parameters file: the exe file, the Markdown against the TOML (bridging,
1.8), and the MCP servers of ``[mcp_tools]``."""

from __future__ import annotations

from collections.abc import Iterable

from specs.diagnostics import Diagnostic, Location, Severity
from specs.spec.mcp_servers import McpConfigError, config_problems, find_servers
from specs.spec.validate.base import (
    Checker,
    _refs,
)


class FileChecks(Checker):
    """The exe file, bridging, and ``[mcp_tools]`` servers."""

    def check_files(self) -> Iterable[Diagnostic]:
        if self.loaded.exe_path is not None:
            yield Diagnostic(Severity.INFO, "I-EXE-PRESENT", f"{self.loaded.exe_path.name} is "
                             "documentation; specs does not interpret it",
                             Location(str(self.loaded.exe_path)))

    def check_bridging(self) -> Iterable[Diagnostic]:
        md = self.loaded.markdown
        if md is None or not self.spec.verification.check_task_alignment or not md.tasks:
            return
        if len(md.tasks) == len(self.spec.tasks) and all(
                t.id == m.id and [s.id for s in t.steps] == [s.id for s in m.steps]
                for t, m in zip(self.spec.tasks, md.tasks, strict=True)):
            return  # the same steps in both files (the common case, told without sets)
        toml_refs = {(task.id, step.id) for task in self.spec.tasks for step in task.steps}
        md_refs = {(t.id, s.id) for t in md.tasks for s in t.steps}
        md_file = str(self.loaded.markdown_path)
        only_md = sorted(md_refs - toml_refs)
        only_toml = sorted(toml_refs - md_refs)
        if only_md:
            first = next(s for t in md.tasks for s in t.steps if (t.id, s.id) == only_md[0])
            yield Diagnostic(Severity.WARNING, "W-BRIDGE", f"steps {_refs(only_md)} are in the "
                             "Markdown but not in the TOML (Art. III)",
                             Location(md_file, first.line), "keep both files in step",
                             strict=True)
        if only_toml and md_refs:
            yield self.rule("W-BRIDGE", f"steps {_refs(only_toml)} are in the TOML but not in "
                            "the Markdown (Art. III)", ("tasks",), "keep both files in step")

    def check_mcp_tools(self) -> Iterable[Diagnostic]:
        """``[mcp_tools]``: server definitions of the wrong shape (E-MCP-CONFIG) and servers
        named but not defined anywhere ``specs run`` looks (docs/mcp.md)."""
        mcp = self.spec.mcp_tools
        if mcp is None:
            return
        for name, entry in (mcp.config or {}).items():
            for key, problem in config_problems(entry):
                path = ("mcp_tools", "config", name) + ((key,) if key in entry else ())
                yield self.error("E-MCP-CONFIG", f"[mcp_tools.config.{name}] {problem}", path)
        try:
            servers, broken = find_servers(self.loaded)
        except McpConfigError as exc:
            yield self.error("E-MCP-CONFIG", str(exc), ("mcp_tools",))
            return
        halts = mcp.verification.check_on_startup and mcp.verification.halt_if_required_missing
        for kind, names in (("required", mcp.required), ("recommended", mcp.recommended)):
            for index, name in enumerate(names):
                if name in servers:
                    continue
                why = broken.get(name) or "it is not configured"
                severity = Severity.WARNING if kind == "required" and halts else Severity.INFO
                code = "W-MCP-UNCONFIGURED" if severity is Severity.WARNING \
                    else "I-MCP-UNCONFIGURED"
                effect = "`specs run` stops before the run" if severity is Severity.WARNING \
                    else "its tools will be missing"
                yield self.diag(severity, code, f"{kind} MCP server {name!r}: {why}; "
                                f"{effect}", ("mcp_tools", kind, index),
                                f"define it with [mcp_tools.config.{name}] command = \"...\" "
                                "or in .mcp.json (docs/mcp.md)")
