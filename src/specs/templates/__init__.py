"""The templates library: from a goal to a runnable spec in a minute (docs/templates.md).

A **template** is a spec folder plus an optional ``template.toml`` of typed questions
(:mod:`~specs.templates.model`, :mod:`~specs.templates.variables`). Templates come from layered
sources, the highest winning a name (:mod:`~specs.templates.sources`); ``specs new`` renders one
with the answers (:mod:`~specs.templates.render`), validates it and writes it with its
provenance (:mod:`~specs.templates.instantiate`, :mod:`~specs.templates.provenance`);
``specs templates update`` re-renders a newer version and merges it with the user's edits
(:mod:`~specs.templates.merge`, :mod:`~specs.templates.update`). Around them:
:mod:`~specs.templates.suggest` (which template for a goal), :mod:`~specs.templates.extract`
(a proven spec back to a template), :mod:`~specs.templates.draft` (a spec drafted by the LLM and
repaired until it validates) and :mod:`~specs.templates.dna` (``specs init``: the project
constitution and its DNA code).
"""

from specs.templates.errors import TemplateError
from specs.templates.instantiate import (
    Created,
    Rendered,
    SpecExists,
    check_descriptor,
    create_spec,
    new_spec,
    preview,
    render_template,
    sample_answers,
    spec_folder,
)
from specs.templates.model import CATEGORIES, Template, load_template
from specs.templates.provenance import PROVENANCE_FILE, Provenance, read_provenance
from specs.templates.sources import Library, builtin_folder, discover
from specs.templates.variables import (
    AnswerError,
    Answers,
    Variable,
    coerce,
    display,
    resolve_answers,
)

__all__ = [
    "CATEGORIES",
    "PROVENANCE_FILE",
    "AnswerError",
    "Answers",
    "Created",
    "Library",
    "Provenance",
    "Rendered",
    "SpecExists",
    "Template",
    "TemplateError",
    "Variable",
    "builtin_folder",
    "check_descriptor",
    "coerce",
    "create_spec",
    "discover",
    "display",
    "load_template",
    "new_spec",
    "preview",
    "read_provenance",
    "render_template",
    "resolve_answers",
    "sample_answers",
    "spec_folder",
]
