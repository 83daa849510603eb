"""The Spec model: every section and key of the SPEC Engine format, typed and immutable.

One pydantic class per section of ``parameters_<d>.toml`` (reference §2.1-§2.2) plus the keys
``specs`` adds (SPEC_FORMAT.md §2). Every model is frozen and keeps unknown keys: they live in
``model_extra`` and the validator reports them as ``info``; they are never dropped.

The model holds the *normalised* spec: the loader (:mod:`specs.spec.load`) has already resolved
aliases (``goal.statement`` -> ``goal.description``, ``critical`` -> ``critical_flag``, inline
``backup_1`` strings -> :class:`Backup` tables, the nested SPECLet shape -> flat tasks ...),
filled skeletal steps from the Markdown and applied the project constitution's defaults. So a
model dumped back to TOML (:func:`specs.spec.tomlio.to_toml`) loads into an equal model.

``None`` means "not given"; where the reference gives a default, the loader fills it in.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from specs.spec.limits import (
    MAX_BACKOFF_SECONDS,
    MAX_COUNT,
    MAX_ITERATIONS,
    MAX_PARALLEL,
    MAX_RETRIES,
    MAX_SECONDS,
    MAX_TOKENS,
)

__all__ = [
    "Backup",
    "Budget",
    "CompletionCriteria",
    "Composition",
    "Deployment",
    "Education",
    "ErrorPropagation",
    "Execution",
    "Goal",
    "Include",
    "KnowledgeCapture",
    "Llm",
    "LoggingSection",
    "McpTools",
    "McpVerification",
    "Meta",
    "Mode",
    "ProgressTracking",
    "RetrySection",
    "SoftwareStack",
    "Spec",
    "Speclet",
    "Step",
    "Strategy",
    "Task",
    "Transition",
    "UserInterface",
    "VerificationSection",
    "copy_with",
]

Mode = Literal["silent", "collaborative", "dynamic", "education"]
Strategy = Literal["halt_on_critical", "continue_and_log", "collaborative_review"]
ExecutionMethod = Literal["cognitive", "command", "script", "tool", "python", "human"]
TriggerRule = Literal["all_success", "all_done", "none_failed_min_one_success", "one_failed"]
FailurePolicy = Literal["abort_siblings", "finish_siblings"]
Ref = int | str

MODES: tuple[str, ...] = ("silent", "collaborative", "dynamic", "education")
STRATEGIES: tuple[str, ...] = ("halt_on_critical", "continue_and_log", "collaborative_review")


class Section(BaseModel):
    """Base of every section: frozen, keeps unknown keys (``model_extra``)."""

    # inf and nan are no count or duration (a float key that needs them does not exist)
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True,
                              allow_inf_nan=False)

    @property
    def unknown_keys(self) -> dict[str, Any]:
        """Keys the format does not define, kept as they were."""
        return dict(self.model_extra or {})


# --- actions and checks: shared by steps and backups -------------------------------------------


class Action(Section):
    """How a step or a backup is carried out (SPEC_FORMAT.md §2 "actions")."""

    execution_method: ExecutionMethod | None = None
    command: str | None = None
    tool_path: str | None = None
    tool_args: str | None = None
    callable: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    total_timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    env: dict[str, str] | None = None
    cwd: str | None = None
    retry_on_exit_codes: list[int] | None = None
    output_file: str | None = None
    # expected-output checks (their verdict drives retries and backups)
    verify: list[str] | None = None
    expected_files: list[str] | None = None
    output_schema: dict[str, Any] | str | None = None
    verify_with: Literal["llm"] | None = None

    @property
    def effective_method(self) -> str:
        """The execution method in force (``command`` implies ``command`` etc.)."""
        if self.execution_method:
            return self.execution_method
        if self.command:
            return "command"
        if self.callable:
            return "python"
        if self.tool_path:
            return "tool"
        return "cognitive"

    @property
    def is_cognitive(self) -> bool:
        """An LLM agent carries it out: ``cognitive``, or a ``tool``/``script`` method with no
        ``tool_path`` (the original's "use the tool" prose: the agent picks the tool)."""
        method = self.effective_method
        return method == "cognitive" or (method in ("tool", "script") and not self.tool_path)


class Backup(Action):
    """An alternative method, tried in id order when the previous method failed (Art. VII)."""

    id: int
    description: str = ""
    trigger_condition: str | None = None
    max_retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)


class Step(Action):
    """One step of a task: what to do, what must come out, how hard to try."""

    id: int
    description: str = ""
    expected_output: str | None = None
    critical_flag: bool = True
    mode: Mode | None = None
    max_retries: int = Field(default=2, ge=0, le=MAX_RETRIES)
    primary_method: str | None = None
    method: str | None = None  # the original's "primary" marker; informational
    # what else the Markdown spec says about the step, whole: "Description: ...",
    # "Verification: ...", "Logging: ...", unlabelled notes (the loader fills it)
    details: list[str] | None = None
    backups: list[Backup] = Field(default_factory=list)
    mcp_tools_available: bool | None = None
    shadcn_components_needed: list[str] | None = None
    # dependencies and parallel execution (reference §5.1)
    depends_on: list[Ref] | None = None
    parallel_safe: bool | None = None
    parallel_group: str | None = None
    output_files: list[str] | None = None
    resources_required: list[str] | None = None
    trigger_rule: TriggerRule | None = None
    # conditional execution (reference §5.3)
    condition: str | None = None
    skip_ok: bool | None = None


class Task(Section):
    """A task: an ordered group of steps serving the goal."""

    id: int
    description: str = ""
    research_enabled: bool = False
    research_sources: list[str] | None = None
    steps: list[Step] = Field(default_factory=list)
    critical_balance: float | None = None
    mode_specific: str | None = None
    # task-level defaults for the task's steps (exe 1.5, fixtures)
    critical: bool | None = None
    mode: Mode | None = None
    max_retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
    # roadmap keys
    depends_on: list[Ref] | None = None
    condition: str | None = None
    exit_criteria: list[str] | None = None
    speclet: Ref | None = None
    name: str | None = None
    purpose: str | None = None
    # composition (docs/composition.md): set on tasks that come from an included spec
    namespace: str | None = None  # the alias path: "a", or "a.b" for a spec b included by a
    folder: str | None = None  # absolute path of the spec folder the task came from; None = root

    @cached_property
    def ref(self) -> str:
        """Global task reference: ``"<id>"``, or ``"<speclet>.<id>"`` for nested SPECLets,
        prefixed with ``"<namespace>."`` for a task from an included spec."""
        local = f"{self.speclet}.{self.id}" if self.speclet is not None else str(self.id)
        return f"{self.namespace}.{local}" if self.namespace else local


# --- sections -----------------------------------------------------------------------------------


class Meta(Section):
    """``[meta]`` (aliases: ``[metadata]``, top-level ``version``/``descriptor``)."""

    file_role: str | None = None
    created_by: str | None = None
    goal_descriptor: str | None = None
    related_files: list[str] | None = None
    log_output: str | None = None
    created_date: str | None = None
    version: str | None = None
    last_updated: str | None = None
    notepad_output: str | None = None
    project_dna: str | None = None
    project_name: str | None = None
    spec_version: str | None = None
    speclet_id: int | None = None
    speclet_name: str | None = None
    generated_date: str | None = None
    dna_code: str | None = None
    experimental_speclet: bool | None = None
    purpose: str | None = None


class DynamicEscalation(Section):
    enabled: bool = True
    trigger_consecutive_failures: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    trigger_backup_exhaustion: bool | None = None
    trigger_critical_step_failure: bool | None = None


class Execution(Section):
    """``[execution]``: run mode, escalation thresholds, parallelism."""

    default_mode: Mode = "dynamic"
    escalation_threshold: int = Field(default=3, ge=0, le=MAX_COUNT)
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    escalation_triggers: list[str] = Field(default_factory=list)
    allow_mode_switching: bool = True
    supported_modes: list[Mode] | None = None
    dynamic_escalation: DynamicEscalation | None = None
    logging: dict[str, Any] | None = None
    progress_tracking: dict[str, Any] | None = None
    parallel_enabled: bool = False
    max_parallel_steps: int = Field(default=2, ge=1, le=MAX_PARALLEL)
    parallel_failure_policy: FailurePolicy = "abort_siblings"
    workspace: str | None = None
    cache: bool | None = None


class Education(Section):
    enabled: bool = False
    approval_gates: str = "increased"
    rationale_required: bool = True
    alternatives_shown: bool = True
    comparison_depth: Literal["brief", "moderate", "detailed"] = "detailed"
    learning_pace: Literal["slow", "moderate", "fast"] = "moderate"


class Goal(Section):
    """``[goal]``: the single goal (alias ``statement``)."""

    description: str = ""
    singular: bool | None = None
    measurable: bool | None = None
    north_star_compliant: bool | None = None
    type: str | None = None


class SoftwareStack(Section):
    deployment_type: str | None = None
    primary_language: str | None = None
    framework: str | None = None
    database: str | dict[str, Any] | None = None
    ui_library: str | None = None
    packaging_method: str | None = None
    backend: str | dict[str, Any] | None = None
    frontend: str | dict[str, Any] | None = None


class UserInterface(Section):
    required: bool = False
    interface_type: str | None = None
    target_users: str | None = None
    skill_level: str | None = None
    accessibility: list[str] | None = None


class Deployment(Section):
    target_platform: str | None = None
    installation_type: str | None = None
    configuration_required: list[str] | None = None
    startup_method: str | None = None
    hosting_options: list[str] | None = None


class CompletionCriteria(Section):
    """``[completion_criteria]`` (alias ``[definition_of_complete]``): requirements, not results."""

    acceptance_criteria: list[str] | None = None
    production_ready: bool | None = None
    user_tested: bool | None = None
    functional_complete: bool | None = None
    interface_complete: bool | None = None
    deployment_complete: bool | None = None
    documentation_complete: bool | None = None
    primary_deliverable: str | None = None
    quality_standards: list[str] | None = None
    verification_method: str | None = None
    core_features: list[str] | None = None
    build_requirements: list[str] | None = None
    checks: list[dict[str, Any]] | None = None


class McpVerification(Section):
    check_on_startup: bool = True
    halt_if_required_missing: bool = True
    warn_if_recommended_missing: bool = True
    log_available_tools: bool = True


class McpTools(Section):
    required: list[str] = Field(default_factory=list)
    recommended: list[str] = Field(default_factory=list)
    optional: list[str] = Field(default_factory=list)
    verification: McpVerification = Field(default_factory=McpVerification)
    config: dict[str, Any] | None = None


class Speclet(Section):
    """``[[speclets]]`` in the template shape (the nested Dashboard shape is normalised to it)."""

    id: Ref
    description: str = ""
    depends_on: list[Ref] = Field(default_factory=list)
    tasks: list[Ref] = Field(default_factory=list)
    parallel_allowed: bool | None = None
    name: str | None = None
    purpose: str | None = None
    critical: bool | None = None
    spec: str | None = None


class ErrorPropagation(Section):
    enabled: bool = True
    read_prior_steps: bool = True
    dependency_tracking: bool = True
    propagation_strategy: Strategy | None = None
    failure_threshold: int = Field(default=3, ge=0, le=MAX_COUNT)
    halt_on_critical: bool | None = None


class KnowledgeCapture(Section):
    enabled: bool = True
    notepad_path: str | None = None
    capture_types: list[str] = Field(
        default_factory=lambda: [
            "insights", "technical_notes", "ideas", "connections", "observations"]
    )
    update_frequency: Literal["per_step", "per_task", "end_only"] = "per_task"


class LoggingSection(Section):
    output_file: str | None = None
    log_events: list[str] | None = None
    record_retries: bool = True
    record_timestamps: bool = True
    record_mode_switches: bool = True
    log_file: str | None = None


class VerificationSection(Section):
    """``[verification]``: each key switches the matching pre-flight check on or off."""

    check_task_alignment: bool = True
    check_step_order: bool = True
    check_file_integrity: bool = True
    check_mode_consistency: bool = True
    validate_backup_coverage: bool = True
    verify_cross_references: bool = True
    check_expected_outputs: bool = True
    validate_backup_trigger_conditions: bool = True


class ProgressTracking(Section):
    progress_file: str | None = None
    fields: list[str] | None = None
    update_frequency: str | None = None
    log_file: str | None = None
    master_log: str | None = None


class RetrySection(Section):
    """``[retry]`` (ours, mirrors the project constitution): backoff for transient failures."""

    max_retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
    backoff_strategy: Literal["exponential", "fixed", "none"] = "exponential"
    backoff_base_seconds: float = Field(default=2.0, ge=0, le=MAX_BACKOFF_SECONDS)
    backoff_factor: float = Field(default=2.0, ge=1, le=10)
    backoff_max_seconds: float = Field(default=60.0, ge=0, le=MAX_BACKOFF_SECONDS)
    jitter: bool = True


class Include(Section):
    path: str
    as_: str | None = Field(default=None, alias="as")


class Composition(Section):
    includes: list[str | Include] = Field(default_factory=list)


class Llm(Section):
    provider: Literal["openai", "anthropic"] | None = None
    model: str | None = None
    base_url: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    requests_per_minute: float | None = Field(default=None, gt=0, le=1e9)
    tokens_per_minute: float | None = Field(default=None, gt=0, le=MAX_TOKENS)
    max_turns: int | None = Field(default=None, gt=0, le=MAX_COUNT)
    judge_model: str | None = None  # the model of verify_with = "llm" (default: model)
    prices: dict[str, Any] | None = None
    tools: dict[str, Any] | None = None


class Budget(Section):
    max_cost_usd: float | None = Field(default=None, ge=0, le=1e9)
    max_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)


class Transition(Section):
    from_task: Ref
    to_task: Ref
    when: str | None = None
    max_iterations: int = Field(default=3, ge=1, le=MAX_ITERATIONS)


class Spec(Section):
    """A whole spec: the normalised content of ``parameters_<d>.toml``."""

    meta: Meta = Field(default_factory=Meta)
    goal: Goal = Field(default_factory=Goal)
    execution: Execution = Field(default_factory=Execution)
    education: Education | None = None
    software_stack: SoftwareStack | None = None
    user_interface: UserInterface | None = None
    deployment: Deployment | None = None
    completion_criteria: CompletionCriteria | None = None
    mcp_tools: McpTools | None = None
    speclets: list[Speclet] | None = None
    components: dict[str, Any] | None = None
    constraints: dict[str, Any] | None = None
    tasks: list[Task] = Field(default_factory=list)
    error_propagation: ErrorPropagation = Field(default_factory=ErrorPropagation)
    knowledge_capture: KnowledgeCapture = Field(default_factory=KnowledgeCapture)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    verification: VerificationSection = Field(default_factory=VerificationSection)
    progress_tracking: ProgressTracking | None = None
    retry: RetrySection = Field(default_factory=RetrySection)
    # sections seen only in real files (reference §2.2): kept as tables
    validation: dict[str, Any] | None = None
    progress_log: dict[str, Any] | None = None
    constitution: dict[str, Any] | None = None
    project_constitution: dict[str, Any] | None = None
    interface_contract: dict[str, Any] | None = None
    dependencies: dict[str, Any] | None = None
    operational_modes: dict[str, Any] | None = None
    troubleshooting: dict[str, Any] | None = None
    reporting: dict[str, Any] | None = None
    constitutional_compliance: dict[str, Any] | None = None
    post_execution_analysis: dict[str, Any] | None = None
    pattern_metadata: dict[str, Any] | None = None
    # keys we add (SPEC_FORMAT.md §2)
    vars: dict[str, Any] | None = None
    resources: dict[str, int] | None = None
    composition: Composition | None = None
    llm: Llm | None = None
    budget: Budget | None = None
    transitions: list[Transition] | None = None

    @property
    def descriptor(self) -> str:
        return self.meta.goal_descriptor or ""

    def steps(self) -> list[tuple[Task, Step]]:
        """Every (task, step) pair in spec order."""
        return [(task, step) for task in self.tasks for step in task.steps]

    def step_count(self) -> int:
        return sum(len(task.steps) for task in self.tasks)


_M = TypeVar("_M", bound=Section)


def copy_with(model: _M, update: dict[str, Any]) -> _M:
    """``model`` with the fields in ``update`` replaced: ``model.model_copy(update=...)``
    without the values its cached properties computed before (``Task.ref`` depends on
    ``namespace``: a copied cache would keep the old ref)."""
    copied = model.model_copy(update=update)
    for name, attr in vars(type(model)).items():
        if isinstance(attr, cached_property):
            copied.__dict__.pop(name, None)
    return copied
