"""The constitution's quality rules and what the spec says of itself: Art. II counts, Art. VI
critical balance, Art. V placeholders, Art. XIV build goals (stack, deployment, completion
criteria, the user interface), self-reported statistics (A35), modes."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from specs.diagnostics import Diagnostic, Severity
from specs.spec.project import critical_range, inherits
from specs.spec.validate.base import (
    _CRITICAL,
    BUILD_GOAL,
    Checker,
)
from specs.spec.validate.placeholders import placeholder, placeholder_free, texts

FOR_USERS = re.compile(
    r"\bfor\s+(?:[\w'-]+\s+){0,5}?(users?|people|customers?|clients?|volunteers?|staff|"
    r"students?|teachers?|developers?|patients?|admins?|administrators?|employees?|members?|"
    r"shoppers?|visitors?|players?|teams?|engineers?|researchers?|owners?|managers?|operators?|"
    r"listeners?|readers?|children|families|everyone|anyone|humans?|doctors?|nurses?|"
    r"clinicians?|volunteer|workers?|buyers?|sellers?|creators?|designers?|analysts?|"
    r"non-technical)\b", re.I)
EXTERNAL_API = re.compile(r"\b(api|apis|external service|third[- ]party|integration)\b", re.I)
NEEDS_PACKAGING = {"desktop_app", "mobile", "cli"}
DEPLOYED_APPS = {"desktop_app", "web_app"}


class QualityChecks(Checker):
    """Quality rules (warnings marked strict) and checks of the spec's own claims."""

    def check_counts(self) -> Iterable[Diagnostic]:
        tasks = self.spec.tasks
        if self.spec.speclets:
            for si, speclet in enumerate(self.spec.speclets):
                if speclet.tasks and not 2 <= len(speclet.tasks) <= 5:
                    yield self.rule("W-COUNT-TASKS", f"SPECLet {speclet.id} has "
                                    f"{len(speclet.tasks)} tasks; Art. II asks for 2-5",
                                    ("speclets", si))
        elif tasks and not 2 <= len(tasks) <= 5:
            yield self.rule("W-COUNT-TASKS", f"{len(tasks)} tasks; Art. II asks for 2-5",
                            ("tasks",), "split or merge tasks, or group them in SPECLets")
        for ti, task in enumerate(tasks):
            if len(task.steps) > 5:
                yield self.rule("W-COUNT-STEPS", f"task {task.ref} has {len(task.steps)} steps;"
                                " Art. II asks for 1-5", ("tasks", ti),
                                "split the task")

    @functools.cached_property
    def critical_counts(self) -> list[int]:
        """How many steps of each task are critical."""
        return [sum(map(_CRITICAL, task.steps)) for task in self.spec.tasks]

    def check_critical_balance(self) -> Iterable[Diagnostic]:
        total = self.spec.step_count()
        if not total:
            return
        critical = sum(self.critical_counts)
        low, high = self.critical_range()
        ratio = critical / total
        if not low <= ratio <= high:
            yield self.rule("W-CRIT-BALANCE", f"{critical} of {total} steps are critical "
                            f"({ratio:.0%}); the range is {low:.0%}-{high:.0%} (Art. VI)",
                            ("tasks",), "review which steps really block the goal")
        for ti, (task, c) in enumerate(zip(self.spec.tasks, self.critical_counts, strict=True)):
            n = len(task.steps)
            if n > 1 and c in (0, n):
                yield self.rule("W-CRIT-TASK", f"task {task.ref}: {'all' if c else 'none'} of "
                                f"its {n} steps are critical (Art. VI)", ("tasks", ti))

    def critical_range(self) -> tuple[float, float]:
        return critical_range(self.spec, self.loaded.project)

    def inherits(self, project_key: str) -> bool:
        return inherits(self.spec, project_key)

    def check_placeholders(self) -> Iterable[Diagnostic]:
        if placeholder_free(self.spec):
            return
        for path, text in texts(self.spec):
            found = placeholder(text)
            if found:
                yield self.error("E-PLACEHOLDER", f"leftover template placeholder "
                                 f"{found!r} (Art. V)", path, "replace it with the real text")

    def check_build_goal(self) -> Iterable[Diagnostic]:
        if not self.build_goal:
            return
        stack = self.spec.software_stack
        word = BUILD_GOAL.search(self.goal)
        keyword = word.group(0) if word else "build"
        missing = [key for key in ("deployment_type", "primary_language")
                   if not _filled(getattr(stack, key, None) if stack else None)]
        if missing:
            yield self.rule("W-STACK", f"the goal says '{keyword}' but [software_stack] lacks "
                            f"{' and '.join(missing)} (Art. XIV, P-STACK)",
                            ("software_stack",) if stack else ("goal",),
                            "name the deployment type and primary language")
        kind = (stack.deployment_type or "").lower() if stack else ""
        if kind in NEEDS_PACKAGING and not _filled(stack.packaging_method if stack else None):
            yield self.rule("W-STACK", f"deployment_type '{kind}' needs packaging_method",
                            ("software_stack",), "set packaging_method (or \"none\")")
        if kind in DEPLOYED_APPS:
            deployment = self.spec.deployment
            lacking = [k for k in ("target_platform", "installation_type", "startup_method")
                       if not _filled(getattr(deployment, k, None) if deployment else None)]
            if lacking:
                yield self.rule("W-DEPLOYMENT", f"deployment_type '{kind}' needs [deployment] "
                                f"{', '.join(lacking)}", ("deployment",) if deployment else
                                ("software_stack", "deployment_type"))
        yield from self.completion()

    def completion(self) -> Iterable[Diagnostic]:
        criteria = self.spec.completion_criteria
        ui = self.spec.user_interface
        if criteria is None:
            yield self.rule("W-COMPLETION", "a build goal needs [completion_criteria] "
                            "(Art. XIV)", ("goal",), "list at least 3 acceptance_criteria")
            return
        flags = [k for k in ("production_ready", "user_tested", "functional_complete",
                             "interface_complete", "deployment_complete",
                             "documentation_complete") if getattr(criteria, k) is True]
        count = len(criteria.acceptance_criteria or []) + len(flags) + len(
            criteria.core_features or []) + len(criteria.quality_standards or [])
        if count < 3:
            yield self.rule("W-COMPLETION", f"[completion_criteria] has {count} criteria; at "
                            "least 3 are needed (Art. XIV)", ("completion_criteria",))
        if ui is not None and ui.required and criteria.interface_complete is None:
            yield self.rule("W-COMPLETION", "the UI is required but interface_complete is not "
                            "among the completion criteria", ("completion_criteria",))
        if EXTERNAL_API.search(self.goal) and criteria.production_ready is None:
            yield self.rule("W-COMPLETION", "the goal mentions external APIs but "
                            "production_ready is not set", ("completion_criteria",))

    def check_user_interface(self) -> Iterable[Diagnostic]:
        ui = self.spec.user_interface
        match = FOR_USERS.search(self.goal)
        if match and not (ui and ui.required):
            yield self.rule("W-UI-USERS", f"the goal is '{match.group(0)}' but "
                            "[user_interface] required is not true (Art. XIV)",
                            ("user_interface",) if ui else ("goal",),
                            "set required = true and describe the interface")
        if ui is not None and ui.required:
            lacking = [k for k in ("interface_type", "target_users", "skill_level")
                       if not _filled(getattr(ui, k))]
            if lacking:
                yield self.rule("W-UI-FIELDS", f"[user_interface] is required but lacks "
                                f"{', '.join(lacking)}", ("user_interface",))

    def check_self_reported(self) -> Iterable[Diagnostic]:
        stats = self.spec.validation or {}
        total = self.spec.step_count()
        critical = sum(self.critical_counts)
        claims = {"total_steps": total, "critical_steps": critical}
        for key, actual in claims.items():
            claimed = stats.get(key)
            if isinstance(claimed, int) and claimed != actual:
                yield self.diag(Severity.WARNING, "W-STATS", f"[validation] {key} = {claimed}, "
                                f"but the spec has {actual}", ("validation", key),
                                "update or remove the self-reported number")
        claimed_pct = stats.get("critical_percentage_actual")
        if isinstance(claimed_pct, int | float) and not isinstance(claimed_pct, bool) and total:
            actual_pct = 100 * critical / total
            value = claimed_pct * 100 if claimed_pct <= 1 else claimed_pct
            if abs(value - actual_pct) >= 1:
                yield self.diag(Severity.WARNING, "W-STATS", f"[validation] "
                                f"critical_percentage_actual = {claimed_pct}, but {critical} of "
                                f"{total} steps are critical ({actual_pct:.0f} %)",
                                ("validation", "critical_percentage_actual"),
                                "update or remove the self-reported number")

    def check_modes(self) -> Iterable[Diagnostic]:
        execution = self.spec.execution
        education = self.spec.education
        if execution.default_mode == "education" and education is not None and not \
                education.enabled:
            yield self.diag(Severity.WARNING, "W-EDU-DISABLED", "default_mode is 'education' "
                            "but [education] enabled = false; education mode is used",
                            ("execution", "default_mode"))
        ep = self.spec.error_propagation
        if not ep.enabled or not ep.read_prior_steps:
            yield self.diag(Severity.WARNING, "W-ART-VIII", "error propagation is switched off;"
                            " specs still reads prior steps and logs an Art. VIII violation",
                            ("error_propagation",))
        if not self.spec.knowledge_capture.enabled:
            yield self.diag(Severity.WARNING, "W-ART-XV", "knowledge capture is off; the "
                            "notepad is mandatory under Art. XV", ("knowledge_capture",))


def _filled(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value)
    return isinstance(value, str) and value.strip().lower() not in ("", "n/a", "not_applicable")
