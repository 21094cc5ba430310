"""What a run knows beyond the profile when it conflates: the reviewers' verdicts of earlier
runs (`match.decisions`, read by the runner) and whether the layer is low precision, and why
(a layer extracted from a PDF map, coordinates rounded to tens of metres, or the profile)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from conflation.feedback import ReviewerDecision
from pipeline.kernel.reasons import Reason


@dataclass(frozen=True)
class RunFacts:
    reviewer: Mapping[str, ReviewerDecision] = field(default_factory=dict)  # by source id
    low_precision: bool = False  # every create or modify goes to review
    precision_note: Reason | None = None  # why, for the reasons
