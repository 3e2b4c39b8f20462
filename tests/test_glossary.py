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
