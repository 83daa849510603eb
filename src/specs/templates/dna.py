"""``specs init``: the project constitution (``project_constitution.toml``) from a short
interview, with its deterministic DNA code.

The interview follows the original's DNA_SPEC (reference §2.4, decision A38): the project's
name and purpose, its software stack, external dependencies and custom backup tools, and the
autonomy it wants (silent, dynamic or collaborative); it adds the two choices the original
dashboard asks for, risk tolerance and testing rigour. What DNA_SPEC has the interviewer infer
from the purpose (risk level, complexity, domain, whether it faces users) is inferred here by
keywords and offered as the default, so the answers stay the user's. The derived settings are
DNA_SPEC's: the critical-step range, the failure strategy and threshold follow the risk
(high: 60-80 %, halt_on_critical, 2; moderate: 40-60 %, collaborative_review, 3; low: 20-40 %,
continue_and_log, 5); the escalation threshold follows the autonomy (silent 5, dynamic 3,
collaborative 0).

**The DNA code** (:func:`dna_code`) is deterministic (decision A39): the project name is
normalised (Unicode NFKC, case-folded, runs of white space made one space, trimmed), hashed
with SHA-256, and the first 16 bits of the digest, two at a time from the most significant,
give the 8 letters: 00 A, 01 T, 10 G, 11 C. The same name always gives the same code. When a
DNA folder with that code already holds the constitution of a *different* project, the code
of ``name#1`` is tried, then ``name#2``, and so on (:func:`unique_dna_code`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit

from specs.spec.files import PROJECT_FILE
from specs.spec.project import RISK_CRITICAL_RANGE, RISK_STRATEGY, RISK_THRESHOLD
from specs.templates.variables import Answers, Asker, Variable, resolve_answers

__all__ = ["DNA", "ESCALATION", "constitution_document", "dna_code", "infer", "interview",
           "normalise_name", "unique_dna_code"]

DNA = re.compile(r"^[ATGC]{8}$")
LETTERS = "ATGC"
ESCALATION = {"silent": 5, "dynamic": 3, "collaborative": 0}
TESTING = {"basic": (["unit"], False), "standard": (["unit", "integration"], True),
           "comprehensive": (["unit", "integration", "end_to_end"], True)}
LANGUAGES = ("python", "typescript", "javascript", "go", "rust", "java", "kotlin", "swift",
             "c#", "c++", "ruby", "php", "scala", "elixir", "r", "sql")

_HIGH = r"medical|health\w*|patient\w*|clinic\w*|financ\w*|payment\w*|bank\w*|trading|" \
        r"security|secure|production|compliance|regulat\w*|safety|critical infrastructure"
_LOW = r"prototype|experiment\w*|proof of concept|poc|learning|learn|toy|hobby|content|" \
       r"documentation|blog|personal|demo|sandbox"
_COMPLEX = r"multiple systems|distributed|microservices?|platform|integrat\w*|pipeline\w*|" \
           r"several services|enterprise"
_SIMPLE = r"script|single|small|simple|one-off|tiny|minimal"
_USERS = r"users?|customers?|clients?|\bui\b|web|app|api|interface|dashboard|website|" \
         r"portal|mobile|students?|patients?|staff|visitors?"
_DOMAINS = (("machine_learning", r"machine learning|\bml\b|model training|neural|llm"),
            ("data_analysis", r"data|analytics?|reports?|metrics|dashboard"),
            ("sysadmin", r"server\w*|deploy\w*|infrastructure|devops|kubernetes|backup"),
            ("automation", r"automat\w*|workflow|scheduled|cron|bot"),
            ("content", r"content|writing|blog|documentation|articles?"))


def normalise_name(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def dna_code(name: str) -> str:
    """The 8-letter DNA code of a project name (see the module docstring)."""
    digest = hashlib.sha256(normalise_name(name).encode("utf-8")).digest()
    bits = int.from_bytes(digest[:2], "big")
    return "".join(LETTERS[(bits >> (14 - 2 * i)) & 3] for i in range(8))


def unique_dna_code(name: str, folder: Path) -> str:
    """The DNA code of ``name`` not taken in ``folder`` by another project's constitution."""
    wanted = normalise_name(name)
    attempt = 0
    while True:
        code = dna_code(name if attempt == 0 else f"{name}#{attempt}")
        owner = _project_name(folder / code / PROJECT_FILE)
        if owner is None or normalise_name(owner) == wanted:
            return code
        attempt += 1


def _project_name(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""  # unreadable: treat it as someone else's
    name = doc.get("metadata", {}).get("project_name")
    return str(name) if name is not None else ""


def _has(pattern: str, text: str) -> str | None:
    match = re.search(rf"(?<![\w-])(?:{pattern})(?![\w-])", text.lower())
    return match.group(0) if match else None


def infer(purpose: str) -> dict[str, Any]:
    """What DNA_SPEC infers from the purpose: risk, complexity, domain, user-facing, each
    with the keyword that decided it (``*_reason``)."""
    out: dict[str, Any] = {}
    high, low = _has(_HIGH, purpose), _has(_LOW, purpose)
    out["risk"], out["risk_reason"] = (
        ("high", f"the purpose mentions {high!r}") if high else
        ("low", f"the purpose mentions {low!r}") if low else
        ("moderate", "nothing marks it high or low risk (the default)"))
    complex_, simple = _has(_COMPLEX, purpose), _has(_SIMPLE, purpose)
    out["complexity"], out["complexity_reason"] = (
        ("complex", f"the purpose mentions {complex_!r}") if complex_ else
        ("simple", f"the purpose mentions {simple!r}") if simple else
        ("moderate", "several components, presumably (the default)"))
    users = _has(_USERS, purpose)
    out["user_facing"] = bool(users)
    out["user_facing_reason"] = f"the purpose mentions {users!r}" if users else \
        "the purpose names no users, UI or API"
    out["domain"], out["domain_reason"] = "software_development", "the default"
    for domain, pattern in _DOMAINS:
        word = _has(pattern, purpose)
        if word:
            out["domain"], out["domain_reason"] = domain, f"the purpose mentions {word!r}"
            break
    return out


def _questions(inferred: Mapping[str, Any]) -> tuple[Variable, ...]:
    return (
        Variable("stack", "Required software stack (languages, frameworks, tools), or "
                 "flexible", default="flexible"),
        Variable("dependencies", "External dependencies (APIs, databases, cloud services), "
                 "or none", type="list", default=[]),
        Variable("backup_tools", "Custom backup tools (scripts or programs a backup method may "
                 "run), or none", type="list", default=[]),
        Variable("autonomy", "Execution autonomy: silent (fully autonomous), dynamic "
                 "(autonomous, escalates when in doubt) or collaborative (a human approves "
                 "critical steps)", type="choice",
                 choices=("silent", "dynamic", "collaborative"), default="dynamic"),
        Variable("risk", f"Risk tolerance of the project ({inferred['risk_reason']})",
                 type="choice", choices=("high", "moderate", "low"), default=inferred["risk"]),
        Variable("testing", "Testing rigour: basic (unit tests), standard (unit and "
                 "integration, test-first) or comprehensive (also end-to-end)", type="choice",
                 choices=("basic", "standard", "comprehensive"), default="standard"),
        Variable("user_facing", f"Does it face users (a UI or an API)? "
                 f"({inferred['user_facing_reason']})", type="bool",
                 default=inferred["user_facing"]),
    )


def interview(given: Mapping[str, Any], *, ask: Asker | None = None) -> dict[str, Any]:
    """The answers of the interview (``given`` from flags; ``ask`` for the rest), with the
    inferred values beside them."""
    first = resolve_answers((
        Variable("name", "The project's name (it makes the DNA code)", min=1, max=120),
        Variable("purpose", "What are you trying to achieve with this project? (1-2 sentences)",
                 min=10, multiline=False)), {k: v for k, v in given.items()
                                             if k in ("name", "purpose")}, ask=ask)
    inferred = infer(first.values["purpose"])
    rest: Answers = resolve_answers(_questions(inferred), {
        k: v for k, v in given.items() if k not in ("name", "purpose", "complexity")}, ask=ask)
    answers = {**first.values, **rest.values}
    answers = {k: [] if k in ("dependencies", "backup_tools") and v in (["none"], ["None"])
               else v for k, v in answers.items()}
    complexity = given.get("complexity") or inferred["complexity"]
    if complexity not in ("simple", "moderate", "complex"):
        from specs.errors import UsageError

        raise UsageError(f"complexity: must be one of simple, moderate, complex (got "
                         f"{complexity!r})")
    return {**answers, "complexity": complexity, "inferred": inferred}


def constitution_document(answers: Mapping[str, Any], code: str, *,
                          now: dt.datetime | None = None,
                          history: list[dict[str, Any]] | None = None) -> str:
    """The text of ``project_constitution.toml`` for the interview's ``answers``."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    risk, autonomy = answers["risk"], answers["autonomy"]
    inferred = answers["inferred"]
    types, tdd = TESTING[answers["testing"]]
    stack = answers["stack"]
    words = re.findall(r"[a-z#+]+", stack.lower())
    language = next((lang for lang in LANGUAGES if lang in words), None)
    doc = tomlkit.document()
    doc.add(tomlkit.comment("Project Constitution"))
    doc.add(tomlkit.comment("Generated by `specs init` (the DNA interview)"))
    doc.add(tomlkit.comment(f"Date: {stamp}"))
    doc["metadata"] = {"dna_code": code, "project_name": answers["name"],
                       "constitution_version": "1.0", "generated_date": stamp,
                       "system_constitution_version": "1.0"}
    doc["project"] = {"purpose": answers["purpose"], "domain": inferred["domain"],
                      "risk_level": risk, "complexity": answers["complexity"],
                      "user_facing": answers["user_facing"]}
    doc["execution"] = {"default_mode": autonomy, "escalation_threshold": ESCALATION[autonomy],
                        "confidence_threshold": 0.6}
    doc["quality"] = {"critical_percentage": RISK_CRITICAL_RANGE[risk],
                      "output_specificity": "moderate",
                      "documentation_required": ["progress_log", "summary_report"]}
    doc["error_handling"] = {"propagation_enabled": True,
                             "propagation_strategy": RISK_STRATEGY[risk],
                             "failure_threshold": RISK_THRESHOLD[risk], "read_prior_steps": True}
    doc["testing"] = {"required": True, "types": types, "tdd_preferred": tdd,
                      "rigour": answers["testing"]}
    doc["backups"] = {"mandatory_for_critical": True, "preferred_types": ["cognitive", "tool"],
                      "custom_tools": list(answers["backup_tools"]), "max_backups_per_step": 2}
    doc["retry"] = {"max_retries": 2, "backoff_strategy": "exponential"}
    doc["resources"] = {"time_limit_minutes": 0, "task_timeout_minutes": 0,
                        "step_timeout_seconds": 0,
                        "external_dependencies": list(answers["dependencies"]),
                        "external_service_failures": "retry_with_backoff"}
    constraints: dict[str, Any] = {"software_stack": stack}
    if language is not None:  # DNA_SPEC writes null here, which is not TOML: leave it out
        constraints["language"] = language
    constraints.update(frameworks=[], tools=[], prohibited_actions=[
        "Do not delete files outside project directory",
        "Do not modify system configuration",
        "Do not expose credentials in logs",
        "Do not install packages without approval"])
    doc["constraints"] = constraints
    doc["optional_features"] = {
        "user_stories": "user_facing_only" if answers["user_facing"] else "never",
        "clarification_phase": "complex_only", "research_enabled_default": False,
        "research_sources_available": ["web_search", "documentation"],
        "quickstart_validation": True, "parallel_execution": False}
    doc["logging"] = {"detail_level": "standard", "include_metrics": True, "retention_days": 90}
    doc["review"] = {"required_before_execution": autonomy == "collaborative",
                     "change_tracking": "git"}
    doc["compliance"] = {"security_requirements": ["no_credentials_in_logs",
                                                   "encrypt_sensitive_data"], "regulatory": []}
    doc["_inference_notes"] = {
        "risk_reasoning": inferred["risk_reason"] if risk == inferred["risk"] else
        f"chosen by the user (inferred: {inferred['risk']}, {inferred['risk_reason']})",
        "domain_reasoning": inferred["domain_reason"],
        "complexity_reasoning": inferred["complexity_reason"],
        "user_stories_reasoning": inferred["user_facing_reason"],
        "failure_strategy_reasoning": f"{risk} risk -> {RISK_STRATEGY[risk]}"}
    entries = list(history or [])
    entries.append({"version": f"1.{len(entries)}" if entries else "1.0", "date": stamp,
                    "changes": "Updated via `specs init --force`" if entries else
                    "Initial constitution via the DNA interview (`specs init`)"})
    doc["version_history"] = entries
    return tomlkit.dumps(doc)
