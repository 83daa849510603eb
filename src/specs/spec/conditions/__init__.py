"""Conditions: the small, safe expression language of ``condition`` keys (docs/conditions.md).

A condition is parsed by its own tokenizer and Pratt parser into a tree of frozen dataclasses
and evaluated against JSON-like data (dict, list, str, int, float, bool, None). There is no
``eval``: a condition can only read step outputs, step statuses and variables.

Grammar (EBNF; keywords are case-sensitive except the optional leading ``IF``)::

    condition  = [ "IF" ] expr ;
    expr       = or ;
    or         = and { "or" and } ;
    and        = not { "and" not } ;
    not        = "not" not | comparison ;
    comparison = sum { compare_op sum } ;              (* chained: 0 < x < 1 *)
    compare_op = "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in" ;
    sum        = product { ( "+" | "-" ) product } ;
    product    = unary { ( "*" | "/" | "%" ) unary } ;
    unary      = ( "-" | "+" ) unary | primary ;
    primary    = NUMBER | STRING | "true" | "false" | "True" | "False" | "null"
               | "[" [ expr { "," expr } [ "," ] ] "]" | "(" expr ")"
               | ( "len" | "exists" ) "(" expr ")" | reference ;
    reference  = ( STEP_OUTPUT | TASK_STEP_OUTPUT | "steps" "[" STRING "]" "." "output" ) path
               | "steps" "[" STRING "]" "." "status" | "vars" ( "." NAME | "[" STRING "]" ) path ;
    path       = { "." NAME | "[" INDEX "]" } ;         (* INDEX: an integer or a string *)
    STEP_OUTPUT      = "step" DIGITS "_output" ;
    TASK_STEP_OUTPUT = "task" DIGITS "_step" DIGITS "_output" ;

Limits: 2,000 characters, 64 levels of nesting, integers up to 10**100 (literals up to 100
digits), strings and lists up to 1,000,000 items. Only :class:`ConditionError` escapes.

The package: :mod:`~specs.spec.conditions.tree` (the nodes, :class:`ConditionError`),
:mod:`~specs.spec.conditions.parse`, :mod:`~specs.spec.conditions.evaluate`,
:mod:`~specs.spec.conditions.typecheck` (what ``specs validate`` checks) and
:mod:`~specs.spec.conditions.values` (kinds and operators, shared).
"""

from __future__ import annotations

from specs.spec.conditions.evaluate import Scope, evaluate
from specs.spec.conditions.parse import excerpt, parse, rebase
from specs.spec.conditions.tree import Condition, ConditionError, Reference, step_ref
from specs.spec.conditions.typecheck import Kinds, schema_lookup, type_errors

__all__ = ["Condition", "ConditionError", "Kinds", "Reference", "Scope", "evaluate", "excerpt",
           "parse", "rebase", "schema_lookup", "step_ref", "type_errors"]
