"""Text and Markdown tables of rsi_rl.analysis.tables."""

from __future__ import annotations

import doctest

from rsi_rl.analysis import tables
from rsi_rl.analysis.tables import markdown_table


def test_markdown_table_has_a_header_a_rule_and_a_line_per_row():
    assert markdown_table(["a", "b", "c"], [["1", "2", "3"], ["x", "", "z"]]) == [
        "| a | b | c |",
        "|---|---|---|",
        "| 1 | 2 | 3 |",
        "| x |  | z |",
    ]
    assert markdown_table(["only"], []) == ["| only |", "|---|"]


def test_the_examples_in_the_docstrings_hold():
    assert doctest.testmod(tables).failed == 0
