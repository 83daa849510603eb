"""Which template fits a goal: ``specs templates suggest "GOAL"``.

Each template is scored on the goal's text, and every point comes with its reason:

- **keywords** of ``template.toml`` found in the goal (whole words; a single keyword of four
  letters or more also matches its longer forms: ``refactor`` matches ``refactoring``): 2
  points each, 3 for a phrase of several words;
- the **structure** of the goal: its first word (``fix``, ``add``, ``review``, ...) or its form
  (a question is research: 2 points; a question that names data is data analysis: 3);
- the **selection tree** of the original's workflow library (reference §5.6): a production
  incident with data loss, a breach or the system down is Forensic, another production incident
  or broken code is Troubleshoot (unless the goal already names the fix), mysterious code is
  code archaeology: 5 points;
- **history** (a seam for the history database): given the number of specs made from each
  template and how many reached ACHIEVED, a template with at least three such specs gains up to
  2 points (or loses up to 2) by its success rate.

Templates that score nothing are left out; ties keep the library's order by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from specs.templates.model import Template

__all__ = ["Suggestion", "suggest"]

_INCIDENT = r"incident|outage|production|prod|on-?call|pager|sev[ -]?[0-4]|postmortem|" \
            r"post-mortem|customers? (?:can't|cannot|could not)"
_SEVERE = r"data loss|lost data|corrupt\w*|breach\w*|leak\w*|unauthori[sz]ed|down\b|" \
          r"unavailable|crash\w* for|cascad\w*|went down|is down|outage"
_BROKEN = r"broken|fail\w*|error\w*|crash\w*|exception|doesn't work|does not work|" \
          r"not working|stopped working|regression|bug\w*|wrong"
_MYSTERY = r"mysterious|legacy|undocumented|understand|what does|how does|why does|" \
           r"inherited|nobody knows|no one knows|reverse[- ]engineer|archaeolog\w*"
_DATA = r"data|dataset|csv|table|metrics?|numbers|sales|revenue|rows?|statistic\w*"

#: the first words that say what kind of work a goal is, and the template that does it
_LEADS: dict[str, tuple[str, ...]] = {
    "bug_fix": ("fix", "repair", "correct"),
    "feature_implementation": ("add", "implement", "support", "allow", "enable", "build",
                               "create", "introduce"),
    "code_review": ("review", "audit", "assess"),
    "refactor": ("refactor", "restructure", "simplify", "clean", "tidy", "extract", "split",
                 "modernise", "modernize", "rename"),
    "documentation": ("document", "explain", "describe"),
    "research": ("research", "investigate", "evaluate", "compare", "choose", "find out"),
    "data_analysis": ("analyse", "analyze", "measure", "quantify", "chart", "plot"),
    "troubleshoot": ("diagnose", "debug", "troubleshoot"),
    "code_archaeology": ("understand", "map", "trace"),
}


@dataclass(frozen=True)
class Suggestion:
    """One template for the goal: its score and every reason for it."""

    template: Template
    score: float
    reasons: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.template.name


def _found(pattern: str, text: str) -> str | None:
    match = re.search(rf"(?<![\w-])(?:{pattern})(?![\w-])", text)
    return match.group(0) if match else None


def _keyword(keyword: str, text: str) -> bool:
    word = re.escape(keyword.lower())
    tail = r"\w*" if " " not in keyword and len(keyword) >= 4 else ""
    return re.search(rf"(?<![\w-]){word}{tail}(?![\w-])", text) is not None


def _tree(text: str) -> dict[str, str]:
    """The original's selection tree: template name -> the reason it picks it."""
    incident, severe = _found(_INCIDENT, text), _found(_SEVERE, text)
    if incident and severe:
        return {"forensic": f"the selection tree: a production incident ({incident!r}) with "
                            f"data loss, a breach or the system down ({severe!r}) -> Forensic"}
    if incident:
        return {"troubleshoot": f"the selection tree: a production incident ({incident!r}) "
                                "without data loss or an outage -> Troubleshoot",
                "forensic": f"a production incident ({incident!r}): Forensic if its root cause "
                            "must be established"}
    broken = _found(_BROKEN, text)
    if broken and re.match(r"(fix|repair|correct)\b", text):
        return {"troubleshoot": f"broken code ({broken!r}), but the goal names the fix: "
                                "Troubleshoot if the cause is still unknown"}
    if broken:
        return {"troubleshoot": f"the selection tree: broken code ({broken!r}) -> Troubleshoot"}
    mystery = _found(_MYSTERY, text)
    if mystery:
        return {"code_archaeology": f"the selection tree: mysterious code ({mystery!r}) -> "
                                    "code archaeology"}
    return {}


def _structure(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    first = re.match(r"\s*([a-z][a-z' -]*?)\b", text)
    words = text.split()
    lead = words[0] if words else ""
    for name, leads in _LEADS.items():
        for word in leads:
            if text.startswith(word + " ") or lead == word:
                out[name] = f"the goal starts with {word!r}"
                break
    question = text.rstrip().endswith("?") or (first is not None and re.match(
        r"(which|what|should|is|are|does|do|how many|how much|why|when|where)\b", text))
    if question:
        data = _found(_DATA, text)
        if data:
            out.setdefault("data_analysis", f"the goal is a question about data ({data!r})")
        out.setdefault("research", "the goal is a question")
    return out


def suggest(goal: str, templates: Iterable[Template], *,
            success_rates: Mapping[str, tuple[int, int]] | None = None,
            limit: int | None = None) -> list[Suggestion]:
    """The templates that fit ``goal``, best first (see the module docstring).

    ``success_rates`` maps a template name to ``(specs made from it that ran, of those the
    ones that reached ACHIEVED)``: the history seam, filled from the history database when
    there is one.
    """
    text = " ".join(goal.lower().split())
    tree, structure = _tree(text), _structure(text)
    found: list[Suggestion] = []
    for template in sorted(templates, key=lambda t: t.name):
        score, reasons = 0.0, []
        hits = [k for k in template.keywords if _keyword(k, text)]
        if hits:
            score += sum(3 if " " in k else 2 for k in hits)
            reasons.append("keywords: " + ", ".join(hits))
        if template.name in structure:
            score += 3 if "about data" in structure[template.name] else 2
            reasons.append(structure[template.name])
        if template.name in tree:  # a side remark of the tree is a reason, not points
            score += 5 if tree[template.name].startswith("the selection tree") else 0
            reasons.append(tree[template.name])
        ran, achieved = (success_rates or {}).get(template.name, (0, 0))
        if score and ran >= 3:
            rate = achieved / ran
            score += round(4 * (rate - 0.5), 2)
            reasons.append(f"{achieved} of {ran} specs made from it reached ACHIEVED")
        if score > 0:
            found.append(Suggestion(template, score, tuple(reasons)))
    found.sort(key=lambda s: -s.score)
    return found[:limit] if limit is not None else found
