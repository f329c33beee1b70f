"""The reporting topics of TRIPOD+AI and CLAIM that labral fills: one list for two documents.

``labral bench``'s checklist (:mod:`labral.bench.checklist`, in results.json and report.html)
and the bundle's model card (:mod:`labral.train.model_card`, README.md) are both written
under these topics, in this order, so an evaluator reads a bundle and its benchmark in the
same terms. Each document fills what it knows and marks every other topic with
:data:`NOT_FILLED` and the reason, never a guess. The topics are not the guidelines' item
numbers (TRIPOD+AI has 27 items, CLAIM 44): an author maps them when filing.
"""

from __future__ import annotations

#: Prefix of a topic a document cannot fill; the reason follows it.
NOT_FILLED = "not filled: "

#: (key, title) of every topic, in document order.
TOPICS: tuple[tuple[str, str], ...] = (
    ("source", "data source and provenance"),
    ("eligibility", "participants and eligibility criteria"),
    ("reference", "outcome and reference standard"),
    ("sample_size", "sample size (clips, patients, hips)"),
    ("splits", "data splits and overlap with training"),
    ("missing", "missing data"),
    ("model", "model, version and operating threshold"),
    ("discrimination", "discrimination with CIs (AUROC)"),
    ("calibration", "calibration (ECE, Brier, reliability)"),
    ("subgroups", "subgroups and fairness"),
    ("utility", "clinical utility"),
    ("sample_size_justification", "sample-size justification"),
    ("limitations", "limitations"),
    ("code", "code and model availability"),
    ("ethics", "ethics approval, consent and registration"),
    ("intended_use", "intended use and clinical setting"),
)


def not_filled(why: str) -> str:
    """A topic's text when the document cannot fill it: :data:`NOT_FILLED` and ``why``."""
    return NOT_FILLED + why
