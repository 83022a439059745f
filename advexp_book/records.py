"""Typed records: what each chapter measures and keeps, one dataclass per chapter.

A chapter builds its record (e.g. :class:`AraEvaluation`) from what it computed
and saves it with :func:`advexp_book.reproduce.record`; a misspelt or missing
field fails there, when the chapter runs, not later in the report. The claims
(:mod:`advexp_book.claims`) read :class:`Records`, one field per chapter, by
attribute. On disk a record is its fields as JSON (``<results>/records/<name>.json``,
non-finite floats as :func:`advexp_lib.results.to_json` writes them); reading it
back (:meth:`Record.from_dict`) restores every stored
:class:`~advexp_lib.stats.Estimate` and refuses a file whose fields differ from
the dataclass's. Values inside a field are plain data keyed by data (recipe and
network names, budgets), not by display labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from advexp_lib.errors import AdvexpError
from advexp_lib.stats import Estimate

__all__ = [
    "RecordError",
    "Record",
    "Quickstart",
    "ExplanationsUnderAttack",
    "RobustTraining",
    "AraEvaluation",
    "AdversarialExplanations",
    "CompanionPapers",
    "ConciseExplanations",
    "ReproductionReport",
    "PapersNetworks",
    "RECORD_TYPES",
    "Records",
]


class RecordError(AdvexpError, ValueError):
    """A record file whose fields are not its chapter's dataclass's."""


def _estimates(value):
    """``value`` with every dict of exactly {value, lo, hi, n} turned back into an Estimate."""
    if isinstance(value, dict):
        if set(value) == {"value", "lo", "hi", "n"}:
            return Estimate.from_dict(value)
        return {k: _estimates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_estimates(v) for v in value]
    return value


@dataclass
class Record:
    """Base of the chapter records: ``NAME`` is the notebook's record key.

    Examples:
        >>> r = Quickstart("mnist5k", "small_cnn", 0.98, 9.5, 2)
        >>> Quickstart.from_dict(dataclasses.asdict(r)) == r
        True
    """

    NAME: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: dict):
        """The record from its JSON fields (Estimates restored); a field too many or too few raises."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra, missing = set(data) - names, names - set(data)
        if extra or missing:
            raise RecordError(
                f"{cls.NAME}: record fields differ from {cls.__name__}'s: unknown {sorted(extra)}, "
                f"missing {sorted(missing)} (rerun the chapter)"
            )
        return cls(**{k: _estimates(v) for k, v in data.items()})


@dataclass
class Quickstart(Record):
    """Chapter 00: the small CNN on the embedded digits."""

    NAME: ClassVar[str] = "00_quickstart"
    dataset: str
    arch: str
    test_accuracy: float
    train_seconds: float
    num_epochs: int


@dataclass
class ExplanationsUnderAttack(Record):
    """Chapter 01: explanation shift under attack, per recipe {recipe: {method: share}}."""

    NAME: ClassVar[str] = "01_explanations_under_attack"
    eps_rmse: float
    n_eval: int
    success_rate: dict
    share_above_control: dict
    share_beyond_class_swap: dict
    share_beyond_structured_null: dict
    structured_keeps_class: dict
    energy_outside_minus_chance: dict
    comparison_share: dict
    deletion: dict
    fidelity_lead: dict
    fidelity_interaction: dict
    fidelity_win_rate: dict


@dataclass
class RobustTraining(Record):
    """Chapter 02: the four Woods recipes trained on the digits."""

    NAME: ClassVar[str] = "02_robust_training"
    n_test: int
    test_accuracy: dict
    final_psi: dict
    train_seconds: dict


@dataclass
class AraEvaluation(Record):
    """Chapter 03: ARA of our re-trained recipes; ratios {kind: {recipe: Estimate}}."""

    NAME: ClassVar[str] = "03_ara_evaluation"
    n_eval: int
    config: dict
    accuracy: dict
    attack_ara: dict
    btr_ara: dict
    ratio_to_standard: dict
    seeds: list
    ratio_over_seeds: dict
    audit_ok: dict
    ensemble_ara: dict
    ensemble_ratio: dict


@dataclass
class AdversarialExplanations(Record):
    """Chapter 04: AE fidelity; differences {network: {method: Estimate}}."""

    NAME: ClassVar[str] = "04_adversarial_explanations"
    config: dict
    n_eval: int
    n_fidelity: int
    reach: dict
    budgets: dict
    counterfactual: dict
    counterfactual_difference: dict
    agreement: dict
    agreement_difference: dict
    ae_minus_saliency: Any


@dataclass
class CompanionPapers(Record):
    """Chapter 06: Boopathy et al. ``published``, ``cifar`` and ``matched`` are
    :func:`advexp_book.companion_eval.pgd_record` dicts: ``difference`` and ``arms``
    {"audit" | "their PGD": {budget: {"a-b": ...}}} with budgets as "0.35" or "9/255".
    ``isa_control``: {network ("ours", "mnist normal", "cifar10 normal"): {"minimal" | "equal":
    {p: Estimate}}}, the ISA's D1-minus-D2 reduction against the attack alone at the minimal
    eps or at its own (:func:`advexp_book.companion_eval.isa_summary`). ``matched_over_seeds``
    and ``matched_arms_over_seeds``: {budget: {attack: {"a-b": Estimate | [rate a, rate b]}}}."""

    NAME: ClassVar[str] = "06_interpretability_sneaking_and_int_training"
    n_isa: int
    isa_attack_success: int
    isa_control: dict
    published_test_source: str
    published: dict
    cifar_test_source: str
    cifar: dict
    interpretation: dict
    interpretation_difference: dict
    matched: dict
    matched_seeds: list
    matched_over_seeds: dict
    matched_arms_over_seeds: dict
    published_isa_slope: dict


@dataclass
class ConciseExplanations(Record):
    """Chapter 07: Chalasani et al.; Gini differences {"a-b": Estimate} over ``seeds``;
    ``degradation`` {"digits": accuracy of pgd_linf minus cam_standard}; ``uci``: one row per
    one-layer run (data, training, seed, accuracy, gini) and ``uci_differences`` {data: {what:
    Estimate}} (:mod:`advexp_book.one_layer`)."""

    NAME: ClassVar[str] = "07_concise_explanations"
    n_eval: int
    points: dict
    gini_differences: dict
    gini_digit_differences: dict
    seeds: list
    degradation: dict
    uci: list
    uci_differences: dict
    one_layer_vs_l1: dict
    one_layer: dict
    l1_matched: Any
    stability: dict
    stability_difference: dict
    ignorm_proxy_share: Any


@dataclass
class ReproductionReport(Record):
    """Chapter 08: the verdicts {claim id: verdict} and the evaluation of every recipe."""

    NAME: ClassVar[str] = "08_reproduction_report"
    n_eval: int
    ara_steps: int
    verdicts: dict
    evaluation: dict


@dataclass
class PapersNetworks(Record):
    """Chapter 09: Woods et al.'s published ResNet-44s; ratios {kind: {network: Estimate}}."""

    NAME: ClassVar[str] = "09_papers_networks"
    test_source: str
    jpeg_copies: bool
    n_accuracy: int
    accuracy: dict
    n_eval: int
    config: dict
    attack_ara: dict
    btr_ara: dict
    published_ratio: dict
    ratio_over_adv: dict
    audit_ok: dict
    ensemble_ara: dict
    ensemble_ratio: dict
    budgets: dict
    share_beyond_class_swap: dict
    share_beyond_structured_null: dict
    structured_keeps_class: dict
    energy_outside_minus_chance: dict
    deletion: dict
    fidelity_lead: dict
    fidelity_interaction: dict
    fidelity_win_rate: dict
    counterfactual_difference: dict
    reference_max_diff: dict


RECORD_TYPES: dict[str, type[Record]] = {
    t.NAME: t
    for t in (
        Quickstart,
        ExplanationsUnderAttack,
        RobustTraining,
        AraEvaluation,
        AdversarialExplanations,
        CompanionPapers,
        ConciseExplanations,
        ReproductionReport,
        PapersNetworks,
    )
}
"""Record key (the notebook's name) -> its dataclass."""


@dataclass
class Records:
    """Every chapter's record, one field each (None: the chapter has not recorded).

    Examples:
        >>> r = Records.of(Quickstart("mnist5k", "small_cnn", 0.98, 9.5, 2))
        >>> r.quickstart.test_accuracy, r.ara is None, r.chapter("00_quickstart").arch
        (0.98, True, 'small_cnn')
    """

    quickstart: Quickstart | None = None
    shift: ExplanationsUnderAttack | None = None
    robust_training: RobustTraining | None = None
    ara: AraEvaluation | None = None
    ae: AdversarialExplanations | None = None
    companion: CompanionPapers | None = None
    concise: ConciseExplanations | None = None
    report: ReproductionReport | None = None
    published: PapersNetworks | None = None

    @classmethod
    def of(cls, *records: Record) -> Records:
        """The records given, each in its chapter's field."""
        out = {}
        for r in records:
            if type(r) not in _FIELD:
                raise RecordError(f"records: {type(r).__name__} is not a chapter record")
            out[_FIELD[type(r)]] = r
        return cls(**out)

    @classmethod
    def from_dicts(cls, raw: dict) -> Records:
        """{record key: JSON fields} (what the records folder holds) as typed records; other keys ignored."""
        return cls.of(*(RECORD_TYPES[k].from_dict(v) for k, v in raw.items() if k in RECORD_TYPES))

    def chapter(self, name: str) -> Record | None:
        """The record of the notebook ``name`` (e.g. "03_ara_evaluation"), or None."""
        return getattr(self, _FIELD[RECORD_TYPES[name]]) if name in RECORD_TYPES else None


_FIELD = {
    Quickstart: "quickstart",
    ExplanationsUnderAttack: "shift",
    RobustTraining: "robust_training",
    AraEvaluation: "ara",
    AdversarialExplanations: "ae",
    CompanionPapers: "companion",
    ConciseExplanations: "concise",
    ReproductionReport: "report",
    PapersNetworks: "published",
}
