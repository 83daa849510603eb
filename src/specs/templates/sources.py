"""Where templates come from: layered sources, the highest layer winning a name.

From the highest to the lowest layer:

``env``
    the folders in ``SPECS_TEMPLATES`` (separated like ``PATH``);
``project``
    ``.specs/templates/`` in the working directory or the nearest parent that has one;
``user``
    ``templates/`` in the user's configuration folder (``platformdirs``: on Linux
    ``$XDG_CONFIG_HOME/specs``, else ``~/.config/specs``; on macOS ``~/Library/Application
    Support/specs``);
``extra``
    the folders and git repositories listed in ``templates.toml`` files (the project's
    ``.specs/templates.toml`` first, then the user's), in the order they list them;
``built-in``
    the templates shipped with specs.

A layer folder holds one folder per template (a spec folder with an optional
``template.toml``). A ``templates.toml`` lists sources::

    [[sources]]
    path = "../team-templates"          # relative to this file

    [[sources]]
    git = "https://example.com/org/spec-templates.git"
    ref = "v1.2.0"                      # a branch, a tag or a commit (default: the remote HEAD)
    subdir = "templates"                # the folder inside the repository (default: its root)

A git source is cloned once (with the ``git`` command) into the user's cache folder and read
from there; ``specs templates sync`` fetches it again. A source that cannot be read is
reported (one line, naming the file and line) and the other layers are still used.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from specs.errors import UsageError
from specs.templates.model import Template, TemplateError, load_template

__all__ = ["BUILTIN", "CONFIG_FILE", "Layer", "Library", "builtin_folder", "discover", "layers"]

BUILTIN = "built-in"
CONFIG_FILE = "templates.toml"
GIT_TIMEOUT = 300.0
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Layer:
    """One source of templates: its layer name, the folder read, where it came from."""

    name: str
    folder: Path | None
    origin: str
    problem: str | None = None


@dataclass
class Library:
    """The templates of every layer: ``templates`` by name (the highest layer's), ``shadowed``
    (names a higher layer overrides), ``problems`` (sources or templates that could not be
    read, one line each)."""

    layers: list[Layer]
    templates: dict[str, Template] = field(default_factory=dict)
    shadowed: list[Template] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def get(self, name: str) -> Template:
        """The template ``name``; :class:`UsageError` naming the close ones when there is
        none."""
        found = self.templates.get(name)
        if found is not None:
            return found
        close = difflib.get_close_matches(name, list(self.templates), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else \
            f"; available: {', '.join(sorted(self.templates)) or 'none'}"
        broken = [p for p in self.problems if name in p]
        why = f" ({broken[0]})" if broken else ""
        raise UsageError(f"no template named {name!r}{why}{hint} (see `specs templates`)")


def builtin_folder() -> Path:
    return Path(__file__).parent / "builtin"


def discover(cwd: Path | None = None, env: Mapping[str, str] | None = None, *,
             sync: bool = False) -> Library:
    """Read every layer (see the module docstring); ``sync`` fetches git sources again."""
    found = layers(cwd, env, sync=sync)
    library = Library(found)
    for layer in found:
        if layer.problem:
            library.problems.append(layer.problem)
        if layer.folder is None or not layer.folder.is_dir():
            continue
        for folder in sorted(p for p in layer.folder.iterdir() if p.is_dir()):
            if not any(folder.glob("parameters_*.toml")):
                continue
            try:
                template = load_template(folder, layer=layer.name, origin=layer.origin)
            except TemplateError as exc:
                library.problems.append(str(exc))
                continue
            winner = library.templates.get(template.name)
            if winner is None:
                library.templates[template.name] = template
            else:
                library.shadowed.append(template)
                library.templates[template.name] = _shadowing(winner, template)
    return library


def _shadowing(winner: Template, lower: Template) -> Template:
    return replace(winner, shadows=(*winner.shadows, lower.layer))


def layers(cwd: Path | None = None, env: Mapping[str, str] | None = None, *,
           sync: bool = False) -> list[Layer]:
    """The layers, highest first."""
    cwd = Path.cwd() if cwd is None else cwd
    env = os.environ if env is None else env
    out: list[Layer] = []
    for part in (env.get("SPECS_TEMPLATES") or "").split(os.pathsep):
        if part.strip():
            folder = Path(part).expanduser()
            out.append(Layer("env", folder, str(folder), None if folder.is_dir() else
                             f"SPECS_TEMPLATES: {folder} is not a folder"))
    project = _nearest(cwd, Path(".specs") / "templates")
    if project is not None:
        out.append(Layer("project", project, str(project)))
    user = user_config_dir(env)
    out.append(Layer("user", user / "templates", str(user / "templates")))
    configs = [c for c in (_nearest(cwd, Path(".specs") / CONFIG_FILE, file=True),
                           user / CONFIG_FILE) if c is not None and c.is_file()]
    for config in configs:
        out += _config_layers(config, env, sync)
    out.append(Layer(BUILTIN, builtin_folder(), "specs"))
    return out


def user_config_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg and os.name == "posix" and not _is_macos():
        return Path(xdg) / "specs"
    return Path(platformdirs.user_config_dir("specs", appauthor=False))


def user_cache_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and os.name == "posix" and not _is_macos():
        return Path(xdg) / "specs"
    return Path(platformdirs.user_cache_dir("specs", appauthor=False))


def _is_macos() -> bool:
    return os.uname().sysname == "Darwin" if hasattr(os, "uname") else False


def _nearest(cwd: Path, relative: Path, *, file: bool = False) -> Path | None:
    for folder in [cwd.resolve(), *cwd.resolve().parents]:
        candidate = folder / relative
        if (candidate.is_file() if file else candidate.is_dir()):
            return candidate
    return None


def _config_layers(config: Path, env: Mapping[str, str], sync: bool) -> list[Layer]:
    try:
        text = config.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [Layer("extra", None, str(config), f"{config}: cannot be read: {exc}")]
    sources = doc.get("sources", [])
    if not isinstance(sources, list):
        return [Layer("extra", None, str(config), f"{config}: `sources` must be an array of "
                      "tables ([[sources]])")]
    lines = _source_lines(text)
    out = []
    for index, entry in enumerate(sources):
        where = f"{config}:{lines[index] if index < len(lines) else 1}"
        if not isinstance(entry, dict) or ("path" in entry) == ("git" in entry):
            out.append(Layer("extra", None, where, f"{where}: each [[sources]] gives either "
                             "path = \"FOLDER\" or git = \"URL\""))
            continue
        if "path" in entry:
            folder = (config.parent / Path(str(entry["path"])).expanduser()).resolve()
            out.append(Layer("extra", folder, str(folder), None if folder.is_dir() else
                             f"{where}: {folder} is not a folder"))
            continue
        out.append(_git_layer(entry, where, env, sync))
    return out


def _source_lines(text: str) -> list[int]:
    return [i + 1 for i, line in enumerate(text.splitlines())
            if re.match(r"^\s*\[\[\s*sources\s*\]\]", line)]


def _git_layer(entry: dict[str, Any], where: str, env: Mapping[str, str], sync: bool) -> Layer:
    url = str(entry["git"])
    ref = str(entry["ref"]) if entry.get("ref") else None
    subdir = str(entry.get("subdir") or "")
    origin = f"{url}@{ref}" if ref else url
    if ".." in Path(subdir).parts or Path(subdir).is_absolute():
        return Layer("extra", None, origin, f"{where}: subdir {subdir!r} must stay inside the "
                     "repository")
    key = hashlib.sha256(f"{url}\n{ref or ''}".encode()).hexdigest()[:16]
    checkout = user_cache_dir(env) / "templates" / key
    try:
        if not (checkout / ".git").exists():
            _clone(url, ref, checkout)
        elif sync:
            _fetch(checkout, ref)
    except _GitFailed as exc:
        return Layer("extra", None, origin, f"{where}: git source {url}: {exc}")
    folder = checkout / subdir if subdir else checkout
    return Layer("extra", folder, origin, None if folder.is_dir() else
                 f"{where}: git source {url} has no folder {subdir!r}")


class _GitFailed(Exception):
    pass


def _git(*args: str, cwd: Path | None = None) -> None:
    if shutil.which("git") is None:
        raise _GitFailed("the git command is not installed")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True,
                                text=True, timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise _GitFailed(f"git {args[0]} took longer than {GIT_TIMEOUT:.0f} s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise _GitFailed(f"git {args[0]} failed: {lines[-1] if lines else result.returncode}")


def _clone(url: str, ref: str | None, checkout: Path) -> None:
    staging = checkout.with_name(checkout.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    branch = ["--branch", ref] if ref and not _SHA.match(ref) else []
    _git("clone", "--quiet", *branch, "--", url, str(staging))
    if ref and _SHA.match(ref):
        _git("checkout", "--quiet", ref, cwd=staging)
    shutil.rmtree(checkout, ignore_errors=True)
    staging.rename(checkout)


def _fetch(checkout: Path, ref: str | None) -> None:
    _git("fetch", "--quiet", "--tags", "origin", cwd=checkout)
    if ref and _SHA.match(ref):
        target = ref
    elif ref:
        target = f"origin/{ref}"
        try:
            _git("rev-parse", "--verify", "--quiet", target, cwd=checkout)
        except _GitFailed:
            target = ref  # a tag
    else:
        target = "origin/HEAD"
    _git("reset", "--quiet", "--hard", target, cwd=checkout)
