"""The side-by-side benchmark's own arithmetic and checks (benchmarks/peers): no server, no timing."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from benchmarks.common import process_tree
from benchmarks.load import answer_check
from benchmarks.peers.__main__ import psycopg_url, rotated
from benchmarks.peers.table import Row, format_table, median_rows, with_ratios


def _row(scenario: str, contender: str, turns_per_s: float, cpu: float, errors: int = 0) -> Row:
    return Row(scenario, contender, turns_per_s, 10.0, 20.0, cpu, 1.0, 100.0, errors)


class TestRatiosAgainstTheOriginal:
    def test_each_row_is_divided_by_the_originals_row_of_its_own_scenario(self) -> None:
        rows = with_ratios(
            [
                _row("zero c1", "original", 100, 4.0),
                _row("zero c1", "chatserver", 150, 3.0),
                _row("zero c16", "original", 200, 5.0),
                _row("zero c16", "chatserver", 100, 10.0),
            ]
        )
        by_key = {(r.scenario, r.contender): r for r in rows}
        assert by_key[("zero c1", "chatserver")].throughput_x == pytest.approx(1.5)
        assert by_key[("zero c1", "chatserver")].cpu_x == pytest.approx(0.75)
        assert by_key[("zero c16", "chatserver")].throughput_x == pytest.approx(0.5)
        assert by_key[("zero c16", "chatserver")].cpu_x == pytest.approx(2.0)
        assert by_key[("zero c16", "original")].throughput_x == pytest.approx(1.0)

    def test_a_run_without_the_original_has_no_ratios(self) -> None:
        rows = with_ratios([_row("zero c1", "chatserver", 150, 3.0)])
        assert rows[0].throughput_x is None and rows[0].cpu_x is None
        assert "| zero c1 | chatserver | 150.0 |" in format_table(rows, "t")
        assert format_table(rows, "t").splitlines()[-1].endswith("|  |  |")

    def test_an_original_that_measured_nothing_gives_no_ratio_rather_than_a_division_error(self) -> None:
        rows = with_ratios([_row("zero c1", "original", 0, 0.0), _row("zero c1", "chatserver", 150, 3.0)])
        assert rows[1].throughput_x is None and rows[1].cpu_x is None


class TestMediansOfRuns:
    def test_figures_and_ratios_are_medians_of_the_runs_and_errors_add_up(self) -> None:
        runs = [
            with_ratios([_row("zero c1", "original", 100, 4.0), _row("zero c1", "chatserver", v, c, e)])
            for v, c, e in ((90, 5.0, 1), (300, 2.0, 0), (120, 4.0, 2))
        ]
        median = {r.contender: r for r in median_rows(runs)}["chatserver"]
        assert median.turns_per_s == 120
        assert median.cpu_ms_per_turn == 4.0
        assert median.throughput_x == pytest.approx(1.2)
        assert median.cpu_x == pytest.approx(1.0)
        assert median.errors == 3

    def test_the_median_table_keeps_the_order_rows_were_first_seen_in(self) -> None:
        run = [_row("zero c1", "original", 1, 1), _row("long c16", "original", 1, 1)]
        assert [r.scenario for r in median_rows([run, run])] == ["zero c1", "long c16"]

    def test_the_table_shows_ratios_as_multiples(self) -> None:
        rows = with_ratios([_row("zero c1", "original", 100, 4.0), _row("zero c1", "chatserver", 150, 3.0)])
        assert format_table(rows, "run 1 of 1").splitlines()[-1].endswith("| 1.50x | 0.75x |")


def _response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


class TestAnswerCheck:
    check = staticmethod(answer_check(lambda r: r.json()["response"], "echo: hello 1.2"))

    def test_the_expected_answer_passes(self) -> None:
        assert self.check(_response(200, {"response": "echo: hello 1.2"})) is None

    def test_another_answer_counts_as_a_wrong_answer(self) -> None:
        assert self.check(_response(200, {"response": "echo: hello 1.1"})) == "wrong answer"

    def test_an_answer_without_the_field_counts_as_unreadable(self) -> None:
        assert self.check(_response(200, {"error": "boom"})) == "unreadable answer"

    def test_an_error_status_counts_as_its_status_and_code(self) -> None:
        assert self.check(_response(409, {"code": "chat_busy"})) == "409 chat_busy"


class TestHarnessPlumbing:
    def test_a_sqlalchemy_url_becomes_one_libpq_reads(self) -> None:
        url = "postgresql+asyncpg://u:p@127.0.0.1:5432/db"
        assert psycopg_url(url) == "postgresql://u:p@127.0.0.1:5432/db"

    def test_the_contender_order_rotates_from_run_to_run(self) -> None:
        assert [rotated(["a", "b", "c"], n) for n in range(4)] == [
            ["a", "b", "c"],
            ["b", "c", "a"],
            ["c", "a", "b"],
            ["a", "b", "c"],
        ]

    def test_a_servers_process_tree_includes_its_children(self) -> None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert {os.getpid(), child.pid} <= set(process_tree(os.getpid()))
        finally:
            child.kill()
            child.wait()
