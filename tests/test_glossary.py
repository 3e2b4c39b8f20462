"""The glossary names, for each of the method's terms, the function that does what the method
means by it, and says what the method says."""

from __future__ import annotations

import importlib
import inspect

import pytest

from closedloop.glossary import TERMS

#: key -> (the Chinese term, words the method's meaning must contain, method.md section)
METHOD_MEANINGS = {
    # §3, §9: grouping is by attributes and decides the offer
    "grouping": ("分群", ["attributes", "category", "style", "channel", "offer"]),
    # §3: grading ranks by value and decides benefits
    "grading": ("分级", ["value", "benefits"]),
    # §4: Contact, Identify, Data, React
    "cidr": ("CIDR", ["Contact", "Identify", "Data", "React"]),
    # §5: upgrade opportunity, by chance of upgrading × contribution
    "upgrade": ("提升", ["frequency", "tier", "chance", "contribution"]),
    # §6: Bayes' theorem: is B likelier after A
    "bayes": ("贝叶斯", ["P(B | A)", "P(B)", "after A"]),
}


def _functions(package: str):
    for name in (part.strip() for part in package.split(",")):
        module, _, attribute = name.rpartition(".")
        yield name, getattr(importlib.import_module(module), attribute)


@pytest.mark.parametrize("key", sorted(METHOD_MEANINGS))
def test_the_term_names_the_function_that_implements_it(key):
    term = TERMS[key]
    chinese, words = METHOD_MEANINGS[key]
    assert chinese in term.zh
    for word in words:
        assert word.lower() in term.meaning.lower(), f"{key}: '{word}' not in {term.meaning!r}"
    found = list(_functions(term.package))
    assert found
    for name, function in found:
        assert inspect.isfunction(function), f"{key}: {name} is not a function"


def test_grouping_and_grading_are_not_the_same_thing():
    assert TERMS["grouping"].package == "closedloop.groups.groups"
    assert TERMS["grading"].package == "closedloop.rfm.member_tiers"
    cidr = [name for name, _ in _functions(TERMS["cidr"].package)]
    # each step of CIDR has its function: contact, identify (tier and group), data, react
    for name in (
        "closedloop.funnel.attribution",
        "closedloop.rfm.member_tiers",
        "closedloop.groups.groups",
        "closedloop.rfm.rfm_table",
        "closedloop.kpi.touches_due",
    ):
        assert name in cidr
    assert TERMS["bayes"].package == "closedloop.basket.conditional"


def test_every_contact_type_and_points_term_has_its_entry():
    """React's six contact types (in the contact lists' own Chinese) and the points programme's
    terms each have an English and a Chinese entry naming a function that exists."""
    from closedloop import contacts

    for kind, chinese in contacts.TYPES.items():
        term = TERMS[f"contact_{kind.replace('-', '')}"]
        assert term.zh == chinese and kind.split("-")[0] in term.en
    points_terms = [
        "points_programme",
        "points_balance",
        "rolling_expiry",
        "calendar_expiry",
        "points_expiring",
        "points_threshold",
        "threshold_groups",
        "points_group_a",
        "points_group_b",
        "points_group_c",
        "points_group_d",
        "issue_ratio",
        "redemption_ratio",
        "redemption_rate",
        "cost_rate",
        "points_cost",
        "three_stage_activation",
    ]
    for key in [f"contact_{k.replace('-', '')}" for k in contacts.TYPES] + points_terms:
        term = TERMS[key]
        assert term.en and term.zh and term.meaning, key
        assert term.en != term.zh, key
        name = term.package.split(" ")[0]
        module, _, attribute = name.rpartition(".")
        found = getattr(importlib.import_module(module), attribute)
        assert callable(found) or inspect.ismodule(found), key
    # the groups around the method's threshold: 1200 is A, 2000 is B
    assert "1200" in TERMS["points_group_a"].meaning and "2000" in TERMS["points_group_b"].meaning
