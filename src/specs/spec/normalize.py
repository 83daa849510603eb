"""Alias resolution: turn any document the original accepts into the canonical shape.

The original format grew by use, so one concept has several spellings (reference §2.3). This
module rewrites a parsed ``parameters_*.toml`` document in place so that
:class:`specs.spec.model.Spec` sees one spelling per concept:

- ``[metadata]`` and top-level ``version``/``last_updated``/``descriptor`` -> ``[meta]``
- ``goal.statement`` -> ``goal.description``; ``execution.mode`` -> ``execution.default_mode``
- ``error_propagation.strategy``/``halt_on_critical``/``propagation_enabled`` -> canonical keys
- progress path, notepad path, consecutive-failure threshold: first alias present wins
- ``[definition_of_complete]`` -> ``[completion_criteria]``
- the Dashboard's nested ``[[speclets]] -> tasks -> steps`` -> flat ``[[tasks]]`` with ``speclet``
- task ``name``/``purpose`` -> ``description``; step ``action`` -> ``description``,
  ``critical`` -> ``critical_flag``, ``dependencies`` -> ``depends_on``,
  ``parallel_enabled`` -> ``parallel_safe``
- inline ``backup_1``... strings and ``backup_methods`` lists -> ``[[backups]]`` tables

Every move is recorded in the source map, so diagnostics still point at the line the user
wrote. Normalising a canonical document changes nothing (the round-trip property relies on it).
"""

from __future__ import annotations

import re
from typing import Any

from specs.diagnostics import Diagnostic, Severity
from specs.spec.sources import DocPath, SourceMap

_BACKUP_KEY = re.compile(r"^backup_(\d+)$")
MODES = ("silent", "collaborative", "dynamic", "education")


class Normalizer:
    """Rewrites one document in place; collects diagnostics."""

    def __init__(self, doc: dict[str, Any], sources: SourceMap) -> None:
        self.doc = doc
        self.sources = sources
        self.diagnostics: list[Diagnostic] = []

    # -- helpers -----------------------------------------------------------------------------

    def warn(self, code: str, message: str, path: DocPath, hint: str = "",
             strict: bool = False, severity: Severity = Severity.WARNING) -> None:
        self.diagnostics.append(
            Diagnostic(severity, code, message, self.sources.at(path), hint, strict))

    def error(self, code: str, message: str, path: DocPath, hint: str = "") -> None:
        self.warn(code, message, path, hint, severity=Severity.ERROR)

    def rename(self, table: dict[str, Any], path: DocPath, old: str, new: str) -> None:
        """Move ``table[old]`` to ``table[new]`` unless ``new`` is already there."""
        if old not in table:
            return
        if new in table:
            value = table.pop(old)
            if value != table[new]:
                self.warn("W-ALIAS-CONFLICT",
                          f"both '{new}' and its alias '{old}' are given; '{new}' is used",
                          (*path, old), f"delete '{old}'")
            return
        table[new] = table.pop(old)
        self.sources.redirect((*path, new), (*path, old))

    def table(self, key: str) -> dict[str, Any] | None:
        value = self.doc.get(key)
        return value if isinstance(value, dict) else None

    def table_list(self, container: dict[str, Any], key: str, path: DocPath,
                   what: str) -> list[dict[str, Any]]:
        """``container[key]`` as a list of tables; anything else is reported and dropped."""
        value = container.get(key)
        if value is None:
            return []
        if isinstance(value, dict):
            self.error("E-SHAPE", f"'{key}' must be an array of tables ([[{what}]]), "
                       "not a single table", (*path, key), f"write [[{what}]]")
            container[key] = [value]
            return container[key]  # type: ignore[no-any-return]
        if not isinstance(value, list):
            self.error("E-SHAPE", f"'{key}' must be an array of tables ([[{what}]])",
                       (*path, key))
            del container[key]
            return []
        kept = [item for item in value if isinstance(item, dict)]
        if len(kept) != len(value):
            self.error("E-SHAPE", f"every entry of '{key}' must be a table", (*path, key))
            container[key] = kept
        return kept

    def ensure_id(self, item: dict[str, Any], path: DocPath, what: str, fallback: int,
                  severity: Severity = Severity.ERROR) -> None:
        """Make ``item['id']`` an int; report a missing or non-integer id."""
        value = item.get("id")
        if isinstance(value, bool) or value is None:
            self.warn("E-ID-MISSING" if severity is Severity.ERROR else "W-ID-MISSING",
                      f"{what} has no id; position {fallback} is assumed", path,
                      "add `id = <number>`", severity=severity)
            item["id"] = fallback
            return
        if isinstance(value, int):
            return
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            item["id"] = int(value.strip())
            return
        self.error("E-ID-TYPE", f"{what} id {value!r} is not a whole number", (*path, "id"),
                   "ids are integers such as `id = 1`")
        item["id"] = fallback

    # -- the passes -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.meta()
        self.sections()
        self.speclets()
        tasks = self.table_list(self.doc, "tasks", (), "tasks")
        for index, task in enumerate(tasks):
            self.task(task, ("tasks", index), index)
        return self.doc

    def meta(self) -> None:
        doc = self.doc
        meta = doc.setdefault("meta", {}) if isinstance(doc.get("meta", {}), dict) else None
        if meta is None:
            return
        # precedence (reference §2.3): [meta] > [metadata] > top-level scalars
        metadata = self.table("metadata")
        if metadata is not None:
            for key in list(metadata):
                new = "goal_descriptor" if key == "descriptor" else key
                self.move_into_meta(meta, metadata, ("metadata",), key, new)
            if not metadata:
                del doc["metadata"]
        top = {"version": "version", "last_updated": "last_updated",
               "descriptor": "goal_descriptor"}
        for old, new in top.items():
            if old in doc and not isinstance(doc[old], dict):
                self.move_into_meta(meta, doc, (), old, new)
        if not meta:
            del doc["meta"]

    def move_into_meta(self, meta: dict[str, Any], table: dict[str, Any], path: DocPath,
                       old: str, new: str) -> None:
        """Move ``table[old]`` to ``meta[new]``; if ``meta`` has it already, it wins."""
        if new in meta:
            value = table.pop(old)
            if value != meta[new]:
                self.warn("W-ALIAS-CONFLICT",
                          f"both 'meta.{new}' and its alias '{'.'.join((*map(str, path), old))}'"
                          f" are given; 'meta.{new}' is used", (*path, old), f"delete '{old}'")
            return
        meta[new] = table.pop(old)
        self.sources.redirect(("meta", new), (*path, old))

    def sections(self) -> None:
        doc = self.doc
        goal = self.table("goal")
        if goal is not None:
            self.rename(goal, ("goal",), "statement", "description")
        execution = self.table("execution")
        if execution is not None:
            self.rename(execution, ("execution",), "mode", "default_mode")
            self.lower(execution, ("execution",), "default_mode")
            escalation = execution.get("dynamic_escalation")
            if (isinstance(escalation, dict) and "escalation_threshold" not in execution
                    and "trigger_consecutive_failures" in escalation):
                execution["escalation_threshold"] = escalation["trigger_consecutive_failures"]
                self.sources.redirect(("execution", "escalation_threshold"),
                                      ("execution", "dynamic_escalation",
                                       "trigger_consecutive_failures"))
        constraints = self.table("constraints")
        if constraints is not None and "max_consecutive_failures" in constraints:
            execution = doc.setdefault("execution", {})
            if isinstance(execution, dict) and "escalation_threshold" not in execution:
                execution["escalation_threshold"] = constraints["max_consecutive_failures"]
                self.sources.redirect(("execution", "escalation_threshold"),
                                      ("constraints", "max_consecutive_failures"))
        self.error_propagation()
        self.first_of(("logging", "output_file"), [
            ("progress_tracking", "progress_file"), ("meta", "log_output"),
            ("logging", "log_file"), ("progress_log", "file"), ("progress_tracking", "log_file")])
        self.first_of(("knowledge_capture", "notepad_path"), [("meta", "notepad_output")])
        done = self.table("definition_of_complete")
        if done is not None:
            criteria = doc.setdefault("completion_criteria", {})
            if isinstance(criteria, dict):
                for key in list(done):
                    if key not in criteria:
                        criteria[key] = done.pop(key)
                        self.sources.redirect(("completion_criteria", key),
                                              ("definition_of_complete", key))
                if not done:
                    del doc["definition_of_complete"]

    def error_propagation(self) -> None:
        ep = self.table("error_propagation")
        if ep is None:
            return
        path: DocPath = ("error_propagation",)
        self.rename(ep, path, "propagation_enabled", "enabled")
        self.rename(ep, path, "strategy", "propagation_strategy")
        self.lower(ep, path, "propagation_strategy")
        if ep.get("halt_on_critical") is True:
            if "propagation_strategy" not in ep:
                ep["propagation_strategy"] = "halt_on_critical"
                self.sources.redirect((*path, "propagation_strategy"),
                                      (*path, "halt_on_critical"))
            elif ep["propagation_strategy"] != "halt_on_critical":
                self.warn("W-STRATEGY-CONFLICT",
                          f"halt_on_critical = true and strategy "
                          f"'{ep['propagation_strategy']}' are both set; the strategy is used",
                          (*path, "halt_on_critical"), "remove one of the two")

    def first_of(self, target: DocPath, aliases: list[DocPath]) -> None:
        """Set ``target`` from the first alias present, when it is not set itself."""
        section, key = str(target[0]), str(target[1])
        current = self.doc.get(section)
        if isinstance(current, dict) and key in current:
            return
        for alias in aliases:
            table = self.doc.get(str(alias[0]))
            if isinstance(table, dict) and isinstance(table.get(alias[1]), str):
                dest = self.doc.setdefault(section, {})
                if isinstance(dest, dict):
                    dest[key] = table[alias[1]]
                    self.sources.redirect(target, alias)
                return

    def lower(self, table: dict[str, Any], path: DocPath, key: str) -> None:
        value = table.get(key)
        if isinstance(value, str):
            table[key] = value.strip().lower()

    def speclets(self) -> None:
        speclets = self.table_list(self.doc, "speclets", (), "speclets")
        nested = any(isinstance(s.get("tasks"), list)
                     and any(isinstance(t, dict) for t in s["tasks"]) for s in speclets)
        names = {str(s["name"]).strip().lower(): s.get("id")
                 for s in speclets if isinstance(s.get("name"), str)}
        tasks_out: list[Any] | None = None
        for i, speclet in enumerate(speclets):
            path: DocPath = ("speclets", i)
            self.rename(speclet, path, "dependencies", "depends_on")
            if "description" not in speclet and "purpose" in speclet:
                self.rename(speclet, path, "purpose", "description")
            deps = speclet.get("depends_on")
            if isinstance(deps, list):
                speclet["depends_on"] = [
                    names.get(d.strip().lower(), d) if isinstance(d, str) else d for d in deps]
            if not nested or not isinstance(speclet.get("tasks"), list):
                continue
            if tasks_out is None:
                existing = self.doc.get("tasks")
                tasks_out = existing if isinstance(existing, list) else []
                self.doc["tasks"] = tasks_out
            ids: list[Any] = []
            for j, task in enumerate(speclet["tasks"]):
                if not isinstance(task, dict):
                    ids.append(task)
                    continue
                task["speclet"] = speclet.get("id")
                self.sources.redirect(("tasks", len(tasks_out)), (*path, "tasks", j))
                tasks_out.append(task)
                ids.append(task.get("id"))
            speclet["tasks"] = ids

    def task(self, task: dict[str, Any], path: DocPath, index: int) -> None:
        self.ensure_id(task, path, "task", index + 1)
        for alias in ("name", "purpose"):
            if "description" not in task and isinstance(task.get(alias), str):
                self.rename(task, path, alias, "description")
        self.rename(task, path, "dependencies", "depends_on")
        self.lower(task, path, "mode")
        steps = self.table_list(task, "steps", path, "tasks.steps")
        for index_s, step in enumerate(steps):
            self.step(step, (*path, "steps", index_s), index_s)

    def step(self, step: dict[str, Any], path: DocPath, index: int) -> None:
        self.ensure_id(step, path, "step", index + 1)
        self.rename(step, path, "action", "description")
        self.rename(step, path, "critical", "critical_flag")
        self.rename(step, path, "dependencies", "depends_on")
        self.rename(step, path, "parallel_enabled", "parallel_safe")
        self.lower(step, path, "mode")
        self.lower(step, path, "execution_method")
        if isinstance(step.get("verify"), str):
            step["verify"] = [step["verify"]]
        backups = self.table_list(step, "backups", path, "tasks.steps.backups")
        inline = sorted(
            (int(m.group(1)), key) for key in list(step)
             if (m := _BACKUP_KEY.match(key)) and isinstance(step[key], str))
        methods = step.get("backup_methods")
        if inline:
            if backups:
                self.warn("W-BACKUP-FORMS", "inline backup_N strings and [[backups]] tables "
                          "are both given; the inline ones are appended", (*path, inline[0][1]))
            backups = step.setdefault("backups", backups)
            for number, key in inline:
                self.sources.redirect((*path, "backups", len(backups)), (*path, key))
                backups.append({"id": number, "description": step.pop(key)})
        elif (isinstance(methods, list) and all(isinstance(m, str) for m in methods)
                and not backups):
            backups = step.setdefault("backups", backups)
            for number, text in enumerate(methods, start=1):
                self.sources.redirect((*path, "backups", len(backups)),
                                      (*path, "backup_methods", number - 1))
                backups.append({"id": number, "description": text,
                                "execution_method": "cognitive"})
            del step["backup_methods"]
        for index_b, backup in enumerate(backups):
            bpath = (*path, "backups", index_b)
            self.ensure_id(backup, bpath, "backup", index_b + 1, Severity.WARNING)
            self.lower(backup, bpath, "execution_method")
            if isinstance(backup.get("verify"), str):
                backup["verify"] = [backup["verify"]]
        # a missing trigger is the one the ladder order implies (backups run in id order)
        previous: int | None = None
        for backup in sorted(backups, key=lambda b: b["id"] if isinstance(b["id"], int) else 0):
            if "trigger_condition" not in backup:
                backup["trigger_condition"] = (
                    "primary_failure" if previous is None else f"backup_{previous}_failure")
            previous = backup["id"] if isinstance(backup["id"], int) else previous


def expected_trigger(backup_id: int) -> str:
    """The trigger a backup with this id must have (reference §2.1, A45)."""
    return "primary_failure" if backup_id == 1 else f"backup_{backup_id - 1}_failure"
