"""A spec's fingerprint without ``[budget]``: ``specs resume`` accepts a spec whose parameters
file changed in nothing else (a raised budget) without ``--force``."""

from __future__ import annotations

import hashlib
import json

from specs.spec.model import Spec

__all__ = ["spec_fingerprint"]


def spec_fingerprint(spec: Spec) -> str:
    """SHA-256 of the normalised spec without ``[budget]``: ``specs resume`` accepts a spec
    whose parameters file changed in nothing else (a raised budget) without ``--force``."""
    data = spec.model_dump(mode="json", exclude={"budget"})
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
