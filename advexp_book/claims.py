"""The claims the book tests, as data: one record per claim, with where it stands and how it is judged.

Each :class:`Claim` quotes the paper (its abstract unless ``where`` says
otherwise), names the notebook record and key that measure it, the rule
that turns the measurement's 95% interval into a verdict
(:func:`advexp_lib.stats.verdict`), and its ``evidence``: the networks the
authors published (:data:`AUTHORS`, the primary evidence) or the book's own
re-training of their recipes at CPU budgets (:data:`OURS`). A chapter judges its claims with
:func:`judge`; the reproduction report renders the whole table
(:func:`advexp_book.report.claims_table`) from the records, so every verdict
is computed once, by one rule, from one measurement. ``kind`` is "paper" for
a claim of the papers and "check" for a check of our own (e.g. the
independent attacks), which the report lists apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from advexp_lib.checks import check_choice
from advexp_lib.stats import Estimate, Verdict, verdict

__all__ = [
    "Claim",
    "CLAIMS",
    "AUTHORS",
    "OURS",
    "GREATLY",
    "claim",
    "for_record",
    "judge",
    "measurement",
    "arm_rates",
    "lookup",
]

WOODS = "Woods et al. 2019"
BOOPATHY = "Boopathy et al. 2020"
CHALASANI = "Chalasani et al. 2020"
AUTHORS = "the authors' networks"
OURS = "our re-training"
GREATLY = "> 2"
"""The rule for "greatly improves" an ARA: the ratio's whole 95% interval above 2, fixed before the
published networks were measured (the paper calls its 2.4x ImageNet gain its headline; the README's
figures for the published networks give 11x to 15x)."""


@dataclass(frozen=True)
class Claim:
    """One claim: ``paper``, ``quote`` (its words) and ``where`` it stands; the ``record`` and dotted
    ``key`` of its measurement (an :class:`~advexp_lib.stats.Estimate`); the ``rule`` ("> c" or "< c")
    that judges it; ``kind`` ("paper" or "check"); ``evidence`` (:data:`AUTHORS` or :data:`OURS`);
    ``arms``: the dotted key of the two compared rates, where the measurement is a difference of
    rates, so that a comparison with both at 0 (or 1) is reported as not judged (:func:`judge`).

    Examples:
        >>> c = claim("woods-published-ara-all")
        >>> c.paper, c.rule, c.evidence
        ('Woods et al. 2019', '> 2', "the authors' networks")
    """

    id: str
    paper: str
    quote: str
    where: str
    record: str
    key: str
    rule: str
    measure: str = ""
    kind: str = "paper"
    evidence: str = OURS
    arms: str = ""


_ARA_GAIN = (
    "a novel regularization technique inspired by the Lipschitz constraint, alongside other proposed "
    "improvements including a half-Huber activation function, greatly improves the resistance of NNs "
    "to adversarial examples"
)
_INVALIDATE = "these attacks can invalidate previous attempts to explain the decisions of NNs"
_FIDELITY = (
    "with very robust networks, the attacks themselves may be leveraged as explanations with greater "
    "fidelity to the model"
)
_ISA = (
    "with a proper measurement of interpretation, it is actually difficult to prevent prediction-evasion "
    "adversarial attacks from causing interpretation discrepancy"
)
_INT = (
    "our defense achieves both robust classification and robust interpretation, outperforming "
    "state-of-the-art adversarial training methods against attacks of large perturbation in particular"
)
_CONTROL = (
    "training on the discrepancy of the true class's map alone (Int-one-class, the paper's control) "
    "gives less robustness than the two-class discrepancy of Int"
)
_SPARSE = (
    "adversarial training with l-inf-bounded perturbations yields significantly sparser attribution "
    "vectors, with little degradation in performance on natural test data, compared to natural training"
)
_SPARSER_THAN_L1 = (
    "the sparseness of the attribution vectors is significantly better than that achievable via "
    "l1-regularized natural training"
)

_ARA = "03_ara_evaluation"
_SHIFT = "01_explanations_under_attack"
_AE = "04_adversarial_explanations"
_BOOPATHY = "06_interpretability_sneaking_and_int_training"
_CONCISE = "07_concise_explanations"
_PUBLISHED = "09_papers_networks"


def _c(
    id, paper, quote, record, key, rule, measure, *, where="abstract", kind="paper", evidence=OURS, arms=""
) -> Claim:
    return Claim(id, paper, quote, where, record, key, rule, measure, kind, evidence, arms)


# dataset -> (name, record prefix, (key, shown) of the large budget, the training budget). "Large" is
# judged at the first budget of the reference's grid above the training budget: beyond it (0.4 on MNIST)
# both arms sit at 0 under the audit, where a comparison says nothing.
_BOOPATHY_DATA = {
    "mnist": ("MNIST", "published", ("0_35", "0.35"), "0.3"),
    "cifar10": ("CIFAR-10", "cifar", ("9_255", "9/255"), "8/255"),
}


def _published_pgd(data: str, r: str, b: str, audit: bool) -> Claim:
    """A row on the authors' networks: robust accuracy of r minus b, the large budget (the training
    budget for the control, b = intone), under the audit or under the reference's PGD alone."""
    name, prefix, (at, shown), trained = _BOOPATHY_DATA[data]
    control = b == "intone"
    if control:
        at, shown = trained.replace(".", "_").replace("/", "_"), trained
    where = "" if audit else "ref_"
    attack = "the audit (their PGD, margin loss, random restart)" if audit else "their PGD alone (from x)"
    return _c(
        f"{'check-' if control else 'boopathy-'}published{'' if data == 'mnist' else '-cifar'}-{r}-vs-{b}"
        + ("" if audit else "-their-pgd"),
        BOOPATHY,
        _CONTROL if control else _INT,
        _BOOPATHY,
        f"{prefix}_{where}at_{at}.{r}-{b}",
        "> 0",
        f"the authors' {name} networks: robust accuracy at l-inf eps {shown} under {attack}, {r} minus {b}, "
        f"paired (McNemar p in the chapter)",
        where="our reading of the paper's control" if control else "abstract",
        kind="check" if control else "paper",
        evidence=AUTHORS,
        arms=f"{prefix}_{where}arms_at_{at}.{r}-{b}",
    )


CLAIMS: tuple[Claim, ...] = (
    *(
        _c(
            f"woods-published-{'ara' if kind == 'attack' else 'btr'}-{r}",
            WOODS,
            _ARA_GAIN,
            _PUBLISHED,
            f"published_ratio.{kind}.{r}",
            GREATLY,
            f"{'Attack' if kind == 'attack' else 'BTR'} ARA, {r} / standard, the published ResNet-44s on "
            f"CIFAR-10 test images (offline: the JPEG copies), paired over images (greatly: above 2)",
            evidence=AUTHORS,
        )
        for kind, r in (("attack", "robust"), ("attack", "all"), ("btr", "all"))
    ),
    _c(
        "woods-published-all-vs-adv",
        WOODS,
        _ARA_GAIN,
        _PUBLISHED,
        "ratio_over_adv.attack.all",
        "> 1",
        "Attack ARA, all / adv: the robust additions with adversarial training against adversarial "
        "training alone, the published ResNet-44s, paired over images",
        where="abstract; the comparison with adversarial training (our reading)",
        evidence=AUTHORS,
    ),
    *(
        _c(
            f"woods-published-invalidate-{m}",
            WOODS,
            _INVALIDATE,
            _PUBLISHED,
            f"share_beyond_class_swap.standard.{m}",
            "> 0.05",
            f"{m.replace('_', ' ')}: share of attacks moving the new class's map beyond noise, "
            f"D(I_t(x), I_t(x')), the published standard ResNet-44",
            evidence=AUTHORS,
        )
        for m in ("saliency", "integrated_gradients", "grad_cam")
    ),
    *(
        _c(
            f"woods-published-fidelity-ae-vs-{m}",
            WOODS,
            _FIDELITY,
            _PUBLISHED,
            f"counterfactual_difference.all.{m}",
            "> 0",
            f"Delta log p(t) of an equal-RMSE edit on the map's top 10% pixels, AE minus "
            f"{m.replace('_', ' ')}, the published all ResNet-44 at 1.5 x its median minimal RMSE, paired",
            evidence=AUTHORS,
        )
        for m in ("saliency", "integrated_gradients", "grad_cam")
    ),
    _c(
        "woods-ara-robust",
        WOODS,
        _ARA_GAIN,
        _ARA,
        "ratio_over_seeds.attack.robust",
        GREATLY,
        "Attack ARA, robust / standard, means over 3 training seeds each (greatly: above 2)",
    ),
    _c(
        "woods-ara-all",
        WOODS,
        _ARA_GAIN,
        _ARA,
        "ratio_over_seeds.attack.all",
        GREATLY,
        "Attack ARA, all / standard, means over 3 training seeds each (greatly: above 2)",
    ),
    _c(
        "woods-btr-all",
        WOODS,
        _ARA_GAIN,
        _ARA,
        "ratio_over_seeds.btr.all",
        GREATLY,
        "BTR ARA, all / standard, means over 3 training seeds each (greatly: above 2)",
    ),
    *(
        _c(
            f"woods-invalidate-{m}",
            WOODS,
            _INVALIDATE,
            _SHIFT,
            f"share_beyond_class_swap.standard.{m}",
            "> 0.05",
            f"{m.replace('_', ' ')}: share of attacks moving the new class's map beyond noise, "
            f"D(I_t(x), I_t(x')), i.e. beyond what the class change alone explains (standard)",
        )
        for m in ("saliency", "integrated_gradients", "grad_cam")
    ),
    *(
        _c(
            f"woods-fidelity-ae-vs-{m}",
            WOODS,
            _FIDELITY,
            _AE,
            f"counterfactual_difference.all.{m}",
            "> 0",
            f"Delta log p(t) of an equal-RMSE edit on the map's top 10% pixels, AE minus "
            f"{m.replace('_', ' ')} (all, at 1.5 x its median minimal RMSE), paired",
        )
        for m in ("saliency", "integrated_gradients", "grad_cam")
    ),
    *(
        _c(
            f"boopathy-isa-{p}x",
            BOOPATHY,
            _ISA,
            _BOOPATHY,
            f"isa_reduction_difference.{p}",
            "> 0",
            f"ISA at {p} x the minimal eps: reduction of D1 minus reduction of D2, paired",
        )
        for p in ("1", "2", "3")
    ),
    _c(
        "boopathy-published-isa-slope",
        BOOPATHY,
        _ISA,
        _BOOPATHY,
        "published_isa_slope.difference",
        "> 0",
        "the authors' natural network: the reference's normalized slope of the ISA's monotone envelope, "
        "hiding from D1 minus hiding from D2, paired",
        evidence=AUTHORS,
    ),
    *(
        _published_pgd(data, r, b, audit)
        for data in ("mnist", "cifar10")
        for audit in (True, False)
        for r in ("int", "int2")
        for b in ("adv", "trades")
        if audit or b == "adv"
    ),
    *(_published_pgd(data, "int", "intone", True) for data in ("mnist", "cifar10")),
    *(
        _c(
            f"boopathy-published-interpretation-{data}-{r}-vs-{b}",
            BOOPATHY,
            _INT,
            _BOOPATHY,
            f"interpretation_difference.{data}.{r}-{b}",
            "> 0",
            f"robust interpretation as the reference's eval.py measures it (aai_topk): Kendall tau of the "
            f"true class's CAM before and after the attack on its top-8 cells, {r} minus {b}, the authors' "
            f"{_BOOPATHY_DATA[data][0]} networks at eps {_BOOPATHY_DATA[data][3]}, paired over the images "
            f"both keep",
            evidence=AUTHORS,
        )
        for data in ("mnist", "cifar10")
        for r in ("int", "int2")
        for b in ("adv", "trades")
    ),
    _c(
        "chalasani-sparser-than-natural",
        CHALASANI,
        _SPARSE,
        _CONCISE,
        "gini_differences.pgd_linf-cam_standard",
        "> 0",
        "Gini of IG, pgd_linf minus cam_standard, paired",
    ),
    _c(
        "check-sparser-than-natural-digit-pixels",
        CHALASANI,
        _SPARSE,
        _CONCISE,
        "gini_digit_differences.pgd_linf-cam_standard",
        "> 0",
        "Gini of IG over each digit's own pixels (x > 0), pgd_linf minus cam_standard, paired",
        where="our check: the paper's Gini counts the black background too",
        kind="check",
    ),
    _c(
        "check-one-layer-sparser-than-l1",
        CHALASANI,
        _SPARSER_THAN_L1,
        _CONCISE,
        "one_layer_vs_l1.pgd_0_1",
        "> 0",
        "logistic regression (the theorem's setting): Gini of IG, PGD at eps 0.1 minus the sparsest l1 "
        "model of matched accuracy, paired",
        where="our check in the one-layer setting of the paper's theorem",
        kind="check",
    ),
    _c(
        "chalasani-sparser-than-l1",
        CHALASANI,
        _SPARSER_THAN_L1,
        _CONCISE,
        "gini_differences.pgd_linf-l1",
        "> 0",
        "Gini of IG, pgd_linf minus l1 (the reference's strength), paired",
    ),
    _c(
        "chalasani-sparser-than-l1-matched",
        CHALASANI,
        _SPARSER_THAN_L1,
        _CONCISE,
        "gini_differences.pgd_linf-l1_matched",
        "> 0",
        "Gini of IG, pgd_linf minus the sparsest l1 network of matched accuracy, paired",
    ),
    *(
        _c(
            f"check-agreement-{j}",
            WOODS,
            "other networks see the target class in a robust network's AEs more often than in a "
            "standard network's",
            _AE,
            f"agreement_difference.{j}",
            "> 0",
            f"share of AEs a {j} network (cam_cnn) calls their target, all minus standard, each at "
            f"its own budget, paired",
            where="our check of the fidelity claim",
            kind="check",
        )
        for j in ("cam_standard", "pgd_linf")
    ),
    _c(
        "check-quantus-ae-vs-saliency",
        WOODS,
        "Quantus's faithfulness correlation ranks the robust network's AE above its saliency map",
        _AE,
        "ae_minus_saliency",
        "> 0",
        "faithfulness correlation (pixels set to black), AE minus saliency (all), paired",
        where="our check with a black-baseline metric (biased against additive edits)",
        kind="check",
    ),
    _c(
        "check-pgd-maps-more-stable",
        CHALASANI,
        "natural model-training while encouraging stable explanations (via an extra term in the loss "
        "function), is equivalent to adversarial training",
        _CONCISE,
        "stability_difference.pgd_linf.Kendall tau",
        "> 0",
        "Kendall tau of IG maps under the top-k attack, pgd_linf minus cam_standard, paired",
        where="abstract, proven for 1-layer networks; our check on a deep one",
        kind="check",
    ),
    _c(
        "check-published-ara-all-ensemble",
        WOODS,
        "the robust recipe's ARA gain over standard training survives the strongest attack we have",
        _PUBLISHED,
        "ensemble_ratio.all",
        "> 1",
        "ensemble (RMSE search, DDN, FMN) Attack ARA, all / standard, the published ResNet-44s, the "
        "audit's images",
        where="our check (Carlini et al. 2019)",
        kind="check",
        evidence=AUTHORS,
    ),
    _c(
        "check-ara-all-ensemble",
        WOODS,
        "the robust recipe's ARA gain over standard training survives the strongest attack we have",
        _ARA,
        "ensemble_ratio.all",
        "> 1",
        "ensemble (RMSE search, DDN, FMN) Attack ARA, all / standard",
        where="our check (Carlini et al. 2019)",
        kind="check",
    ),
)
"""Every claim the book tests, in the order the reproduction report shows them."""


def claim(claim_id: str) -> Claim:
    """The claim with this id (one of :data:`CLAIMS`).

    Examples:
        >>> claim("chalasani-sparser-than-l1").record
        '07_concise_explanations'
    """
    ids = {c.id: c for c in CLAIMS}
    return ids[check_choice(claim_id, "claim", list(ids))]


def for_record(record: str) -> tuple[Claim, ...]:
    """The claims measured in the notebook record ``record`` (e.g. "03_ara_evaluation").

    Examples:
        >>> [c.id for c in for_record("01_explanations_under_attack")][:1]
        ['woods-invalidate-saliency']
    """
    return tuple(c for c in CLAIMS if c.record == record)


def judge(claim_id: str, estimate: Estimate | None, arms=None) -> Verdict:
    """The verdict on the claim ``claim_id``: ``verdict(estimate, claim.rule, arms=arms)``.

    ``arms``: the two compared rates (:func:`arm_rates`), or None.

    Examples:
        >>> str(judge("woods-ara-all", Estimate(2.8, 2.3, 3.4, 100)))
        'reproduced'
    """
    return verdict(estimate, claim(claim_id).rule, arms=arms)


def arm_rates(records: dict, c: Claim):
    """The two rates the claim's measurement compares (its ``arms`` key), or None (no key, or absent).

    Examples:
        >>> c = claim("boopathy-published-int-vs-adv")
        >>> arm_rates({c.record: {"published_arms_at_0_35": {"int-adv": [0.0, 0.0]}}}, c)
        (0.0, 0.0)
    """
    value = lookup(records, c.record, c.arms) if c.arms else None
    return tuple(float(v) for v in value) if isinstance(value, list | tuple) and len(value) == 2 else None


def lookup(records: dict, record: str, key: str):
    """``records[record]`` descended along the dotted ``key``; None where anything is missing.

    Examples:
        >>> lookup({"03": {"a": {"b": 1}}}, "03", "a.b"), lookup({}, "03", "a.b")
        (1, None)
    """
    value = records.get(record)
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def measurement(records: dict, c: Claim) -> Estimate | None:
    """The claim's measurement from the records (an Estimate, or one stored as a dict), or None if absent.

    ``records`` maps record names to figures: what :func:`advexp_book.reproduce.load_records` reads, or a
    chapter's own figures before it records them (``{run.name: figures}``).

    Examples:
        >>> c = claim("woods-ara-all")
        >>> figures = {"ratio_over_seeds": {"attack": {"all": Estimate(2.0, 1.5, 2.5, 100)}}}
        >>> measurement({c.record: figures}, c).value
        2.0
    """
    value = lookup(records, c.record, c.key)
    if isinstance(value, Estimate):
        return value
    if isinstance(value, dict) and {"value", "lo", "hi", "n"} <= set(value):
        return Estimate.from_dict(value)
    return None
