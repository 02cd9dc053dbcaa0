"""Needle Threading's exact match of retrieved UUID values, worked by hand."""

from __future__ import annotations

from longscope.scoring import score_with_details
from longscope.scoring.needle_threading import uuids_in

A = "1759edc3-72ae-2244-8b01-63c1cd9d2b7d"
B = "f728b4fa-4248-5e3a-0a5d-2f346baa9455"
C = "964a870c-7c87-9b74-1d87-8f9f9cdf5a86"


def test_uuids_are_found_in_order_once_and_lower_cased():
    assert uuids_in(f"First {B.upper()}, then {A} and {B} again.") == [B, A]
    assert uuids_in("no identifiers here 1234-5678") == []


def test_one_value_must_be_the_first_uuid_given():
    assert score_with_details("needle_threading", f'"{A}"', [A]) == (1.0, {"recall": 1.0})
    assert score_with_details("needle_threading", f"The value is {A}.", [A]) == (1.0, {"recall": 1.0})
    # the right value named second still misses: the reply answered with another value first
    assert score_with_details("needle_threading", f"{B} or maybe {A}", [A]) == (0.0, {"recall": 1.0})
    assert score_with_details("needle_threading", "I cannot find it.", [A]) == (0.0, {"recall": 0.0})


def test_several_values_must_be_exactly_the_gold_set():
    gold = [A, B]
    assert score_with_details("needle_threading", f"['{B}', '{A}']", gold) == (1.0, {"recall": 1.0})
    assert score_with_details("needle_threading", f"['{A}']", gold) == (0.0, {"recall": 0.5})
    # an extra value makes the set wrong, though both gold values are there
    assert score_with_details("needle_threading", f"[{A}, {B}, {C}]", gold) == (0.0, {"recall": 1.0})


def test_a_value_that_is_not_a_uuid_must_start_the_reply():
    assert score_with_details("needle_threading", "'blue-river' is the value", ["blue-river"])[0] == 1.0
    assert score_with_details("needle_threading", "It is blue-river", ["blue-river"])[0] == 0.0
    assert score_with_details("needle_threading", "anything", [])[0] == 0.0
