"""Each chapter's results, turned into its typed record by one call.

A chapter's last cell passes what it computed (result objects, tables, estimates) to the
function named after it; the function fills the fields of the chapter's dataclass in
:mod:`advexp_book.records`, keyed by data (recipe, network, method), and nothing else. It
measures nothing new: it summarizes what the chapter computed (intervals of result objects,
bootstrap means of per-image values, sizes read from the results) and drops per-image tensors.
"""

from __future__ import annotations

from advexp_lib.stats import bootstrap_mean

from .companion_eval import interpretation_summary, pgd_record
from .experiments import deletion_means, win_rates
from .records import (
    AdversarialExplanations,
    AraEvaluation,
    CompanionPapers,
    ConciseExplanations,
    ExplanationsUnderAttack,
    PapersNetworks,
    ReproductionReport,
    RobustTraining,
)

__all__ = [
    "explanations_under_attack",
    "robust_training",
    "ara_evaluation",
    "adversarial_explanations",
    "companion_papers",
    "concise_explanations",
    "reproduction_report",
    "papers_networks",
]


def _ara_fields(results: dict, audit) -> dict:
    """The ARA fields chapters 03 and 09 share: {kind: {network: AraResult}} ``results`` and the
    :func:`~advexp_book.experiments.robustness_audit` ``audit``, as intervals and checks."""
    return dict(
        attack_ara={r: res.interval() for r, res in results["attack"].items()},
        btr_ara={r: res.interval() for r, res in results["btr"].items()},
        audit_ok={r: row["ok"] for r, row in audit.rows.items()},
        ensemble_ara={r: e.interval() for r, e in audit.ensembles.items()},
    )


def _n_images(results: dict) -> int:
    """The number of images behind {kind: {network: AraResult}} (every result has one each)."""
    return len(next(iter(results["attack"].values())).distances)


def _by_network(shifts: dict, field: str) -> dict:
    """{network: dict(shift.<field>)} of :class:`~advexp_book.experiments.ShiftResult` s."""
    return {r: dict(getattr(s, field)) for r, s in shifts.items()}


def explanations_under_attack(
    eps,
    n_eval,
    shifts,
    explainers,
    energy_outside,
    deletion,
    fidelity_lead,
    fidelity_interaction,
) -> ExplanationsUnderAttack:
    """Chapter 01's record from its {recipe: ShiftResult} ``shifts``, the energy-outside table
    {(recipe, method): row} and the deletion results {recipe: per-map drops} (whose bootstrap means
    it keeps)."""
    return ExplanationsUnderAttack(
        eps_rmse=eps,
        n_eval=int(n_eval),
        success_rate={r: s.success_rate for r, s in shifts.items()},
        share_above_control={r: {e.name: s.share[e.name] for e in explainers} for r, s in shifts.items()},
        share_beyond_class_swap=_by_network(shifts, "share_beyond_class_swap"),
        share_beyond_structured_null=_by_network(shifts, "share_beyond_structured_null"),
        structured_keeps_class={r: s.structured_keeps_class for r, s in shifts.items()},
        energy_outside_minus_chance={
            r: {
                m: {f"k{k:.0%}"[:-1]: row[f"minus_chance_k{k:.0%}"[:-1]] for k in (0.1, 0.2)}
                for (lab, m), row in energy_outside.items()
                if lab == r
            }
            for r in shifts
        },
        deletion=deletion_means(deletion),
        fidelity_lead=fidelity_lead,
        fidelity_interaction=fidelity_interaction,
        fidelity_win_rate={r: win_rates(d) for r, d in deletion.items()},
        comparison_share=_by_network(shifts, "comparison_share"),
    )


def robust_training(final, n_test) -> RobustTraining:
    """Chapter 02's record from its :func:`~advexp_book.report.training_table` ``final`` (one row
    per recipe; a recipe without adaptive strength has no final psi)."""
    return RobustTraining(
        n_test=int(n_test),
        test_accuracy=final["test accuracy"].to_dict(),
        final_psi=final["final psi"].dropna().to_dict(),
        train_seconds=final["train seconds"].to_dict(),
    )


def ara_evaluation(results, audit, table, **rest) -> AraEvaluation:
    """Chapter 03's record from the ARA results {kind: {recipe: AraResult}}, the audit, the
    :func:`~advexp_book.report.ara_table` ``table`` (its accuracy column) and ``rest``, the record's
    remaining fields as they are."""
    return AraEvaluation(
        n_eval=_n_images(results), accuracy=table["accuracy"].to_dict(), **_ara_fields(results, audit), **rest
    )


def adversarial_explanations(
    config,
    n_eval,
    n_fidelity,
    reach,
    budgets,
    counterfactual,
    counterfactual_difference,
    agreement,
    agreement_difference,
    ae_minus_saliency,
) -> AdversarialExplanations:
    """Chapter 04's record: the counterfactual drops {network: {method: {"delta_log_p": tensor}}}
    become bootstrap means; the agreement rows lose their per-image ``hit`` tensors;
    ``n_fidelity`` is the images asked for, of which at most ``n_eval`` exist."""
    return AdversarialExplanations(
        config=config,
        n_eval=int(n_eval),
        n_fidelity=min(int(n_fidelity), int(n_eval)),
        reach=reach,
        budgets=budgets,
        counterfactual={
            n: {m: bootstrap_mean(v["delta_log_p"].double()) for m, v in r.items()}
            for n, r in counterfactual.items()
        },
        counterfactual_difference=counterfactual_difference,
        agreement={
            n: {j: {k: v for k, v in r.items() if k != "hit"} for j, r in by.items()}
            for n, by in agreement.items()
        },
        agreement_difference=agreement_difference,
        ae_minus_saliency=ae_minus_saliency,
    )


def companion_papers(isa, isa_control, published, cifar, matched, interpretation, **rest) -> CompanionPapers:
    """Chapter 06's record. ``published``, ``cifar`` and ``matched`` are (PGD results, paired
    tests) pairs for :func:`~advexp_book.companion_eval.pgd_record`; ``interpretation`` is
    {dataset: {network: interpretation_robustness(...)}}; ``isa`` the ISA's result; ``rest``
    the record's remaining fields as they are, with ``published_isa_slope`` a dict of the
    (one, two, difference) slopes in that order."""
    slope = dict(zip(("one", "two", "difference"), rest.pop("published_isa_slope").values()))
    return CompanionPapers(
        isa_attack_success=int(isa.success.sum()),
        isa_control=isa_control,
        published=pgd_record(*published),
        cifar=pgd_record(*cifar),
        matched=pgd_record(*matched),
        interpretation={d: interpretation_summary(by) for d, by in interpretation.items()},
        published_isa_slope=slope,
        **rest,
    )


def concise_explanations(sweep, one_layer_points, uci, shares, **rest) -> ConciseExplanations:
    """Chapter 07's record: the sweep's points {recipe: {accuracy, gini, gini_digit}}, the
    one-layer table ``uci`` (a long DataFrame) as rows, the IG-norm proxy's share (or None)."""
    keep = ("accuracy", "gini", "gini_digit")
    return ConciseExplanations(
        points={name: {k: p[k] for k in keep} for name, p in sweep.items()},
        one_layer={name: {k: p[k] for k in keep} for name, p in one_layer_points.items()},
        uci=uci.to_dict(orient="records"),
        ignorm_proxy_share=None if shares is None else shares["ce_recipe_steps"]["share_of_reference"],
        **rest,
    )


def reproduction_report(claims_table, **rest) -> ReproductionReport:
    """Chapter 08's record: {claim id: verdict} from :func:`~advexp_book.report.claims_table`, and
    ``rest``, the record's remaining fields as they are."""
    return ReproductionReport(verdicts=dict(zip(claims_table["id"], claims_table["verdict"])), **rest)


def papers_networks(
    results, audit, shifts, energy, deletion, reproduction, *, accuracy, test_source, **rest
) -> PapersNetworks:
    """Chapter 09's record from the ARA results {kind: {network: AraResult}}, the audit, the
    {network: ShiftResult} ``shifts``, the energy table {(network, method): row}, the deletion
    results {network: per-map drops} (kept as bootstrap means), the reproduction of the reference's
    example explanations, the accuracies {network: Estimate} and where the test images came from."""
    return PapersNetworks(
        test_source=test_source,
        jpeg_copies="JPEG copies" in test_source,
        n_accuracy=next(iter(accuracy.values())).n,
        accuracy=accuracy,
        n_eval=_n_images(results),
        **_ara_fields(results, audit),
        deletion=deletion_means(deletion),
        share_beyond_class_swap=_by_network(shifts, "share_beyond_class_swap"),
        share_beyond_structured_null=_by_network(shifts, "share_beyond_structured_null"),
        structured_keeps_class={r: s.structured_keeps_class for r, s in shifts.items()},
        energy_outside_minus_chance={f"{r}.{m}": row["minus_chance_k10"] for (r, m), row in energy.items()},
        fidelity_win_rate={r: win_rates(d) for r, d in deletion.items()},
        reference_max_diff={n: t["max_diff_255"].max() for n, t in reproduction["vs reference"].items()},
        **rest,
    )
