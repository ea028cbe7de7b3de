"""The peers' benchmark harness, without the peers: a stand-in runner, a tiny generated feed."""

import io
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from bench import hot_path, peer_common, peers


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 600-frame generated recording and the project's replay of it: the truth, 10 times."""
    path = tmp_path_factory.mktemp("peers") / "feed.jsonl"
    hot_path.generate(path, 600, seed=2)
    records = list(hot_path.read_records(path))
    truths = peers.truth_at_checkpoints(records)
    return SimpleNamespace(
        path=path,
        records=records,
        truths=truths,
        truth=truths[-1],
        frames=sum(1 for record in records if "kind" not in record),
    )


def tops_of(truth: dict) -> dict:
    """What a peer that got every book right reports: each venue's price text, its own way."""
    return {key: {"bid": book["bid"], "ask": book["ask"]} for key, book in truth.items()}


def fake_venv(tmp_path, monkeypatch) -> None:
    """A peer venv whose python is this test's interpreter (the stand-in needs nothing more)."""
    bin_dir = tmp_path / "venvs" / "fake" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    monkeypatch.setattr(peers, "VENVS", tmp_path / "venvs")
    monkeypatch.setattr(peers, "ensure_venv", lambda venv, requirements: None)


FAKE = peers.PeerSpec("fake", "stand-in: Coinbase snapshots only", "tests.bench.fake_peer", "none")
BROKEN = peers.PeerSpec(
    "fake", "stand-in that fails", "tests.bench.fake_peer", "none", ("--break",)
)


def test_truth_is_keyed_by_each_venues_own_symbol_at_each_checkpoint(tiny):
    _, replay = hot_path.run_pipeline(tiny.records)
    at_end = peers.truth_by_venue_symbol(replay.summary(1.0)["books_at_end"])

    assert len(tiny.truths) == 10
    assert tiny.truths[-1] == at_end
    assert tiny.truths[0] != at_end  # the books moved between the first tenth and the end
    assert len(tiny.truth) == 15
    assert {"kraken:XDG/USD", "binance:BTCUSDT", "coinbase:ETH-USD"} <= set(tiny.truth)
    assert all(book["valid"] for book in tiny.truth.values())


def test_load_holds_every_record_with_the_rest_answers_symbol(tiny):
    records = peer_common.load(str(tiny.path))

    assert len(records) == len(tiny.records)
    assert peer_common.frames_in(records) == tiny.frames
    rest = [record for record in records if record[1] == "rest"]
    assert {symbol for _, _, _, symbol in rest} == {
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "XRPUSDT",
        "DOGEUSDT",
    }
    assert all(venue == "binance" for venue, _, _, _ in rest)


def test_a_peer_with_every_top_right_is_right_whatever_its_trailing_zeros(tiny):
    tops = [tops_of(truth) for truth in tiny.truths]
    last = tops[-1]["binance:BTCUSDT"]
    last["bid"] = peer_common.price_text(last["bid"])

    assert tiny.truth["binance:BTCUSDT"]["bid"].endswith("0")  # Binance's wire text is padded
    assert last["bid"] != tiny.truth["binance:BTCUSDT"]["bid"]
    assert peers.judge(tops, tiny.truths) == "right (15 books at 10 checkpoints)"


def test_a_book_wrong_midway_is_wrong_even_when_right_at_the_end(tiny):
    tops = [tops_of(truth) for truth in tiny.truths]
    midway = tops[4]
    midway["kraken:ETH/USD"]["ask"] = "2998.2"
    del midway["coinbase:BTC-USD"]
    midway["kraken:ETH-USD"] = {"bid": "1", "ask": "2"}

    verdict = peers.judge(tops, tiny.truths)

    truth_ask = tiny.truths[4]["kraken:ETH/USD"]["ask"]
    assert verdict == (
        "wrong at 1 of 10 checkpoints, first at 50 %: coinbase:BTC-USD missing; "
        f"kraken:ETH/USD ask 2998.2 (truth {truth_ask}) and 1 more"
    )
    assert peers.differences(tops[-1], tiny.truth) == []
    assert peers.differences(midway, tiny.truths[4])[-1] == "kraken:ETH-USD not in the truth"


def test_a_peer_that_reports_fewer_checkpoints_is_wrong(tiny):
    tops = [tops_of(truth) for truth in tiny.truths]

    assert peers.judge(tops[:9], tiny.truths) == "wrong: 9 checkpoints reported, not 10"


def test_an_invalid_book_of_the_truth_holds_no_peer_to_its_stale_top(tiny):
    truth = {key: dict(book) for key, book in tiny.truth.items()}
    truth["kraken:BTC/USD"].update(valid=False, invalid_reason="checksum mismatch")
    tops = tops_of(truth)
    tops["kraken:BTC/USD"] = {"bid": "1", "ask": "2"}

    assert peers.differences(tops, truth) == []
    held_to_the_valid_truth = peers.differences(tops, tiny.truth)
    book = tiny.truth["kraken:BTC/USD"]
    assert held_to_the_valid_truth == [
        f"kraken:BTC/USD bid 1 (truth {book['bid']})",
        f"kraken:BTC/USD ask 2 (truth {book['ask']})",
    ]


def test_failures_name_only_the_checks_that_fired():
    counters = {"checksum_ok": 70, "checksum_failed": 3, "gaps": 0, "malformed": 1200}

    assert peers.failures(counters) == "checksum_failed 3, malformed 1,200"
    assert peers.failures({"checksum_ok": 5}) == ""


def test_the_table_gives_medians_per_frame_and_the_ratio_of_the_same_run():
    rows = [
        peers.Row("baseline", "none", seconds=[1.0, 2.0, 4.0], result="-"),
        peers.Row("peer", "CRC", seconds=[4.0, 5.0, 8.0], ratios=[0.25, 0.4, 0.5], result="right"),
        peers.Row("gone", "CRC", note="not installable here: no wheel"),
    ]

    lines = peers.format_table(rows, 1_000_000).splitlines()

    assert lines[0].startswith("| peer | frames/s | us/frame | x ccxt baseline |")
    assert lines[2] == "| baseline | 500,000 | 2.00 | 1.00 | none | - |"
    assert lines[3] == "| peer | 200,000 | 5.00 | 0.40 | CRC | right |"
    assert lines[4] == "| gone | - | - | - | CRC | not installable here: no wheel |"


def test_a_venv_whose_requirements_are_unchanged_is_reused(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements-peers-x.txt"
    requirements.write_text("order-book==1.1.0\n")
    monkeypatch.setattr(peers, "VENVS", tmp_path / "venvs")
    monkeypatch.setattr(peers, "ROOT", tmp_path)
    calls = []

    def run(step, **kwargs):
        calls.append(step)
        return subprocess.CompletedProcess(step, 0, "", "")

    monkeypatch.setattr(peers.subprocess, "run", run)
    (tmp_path / "venvs" / "x").mkdir(parents=True)

    assert peers.ensure_venv("x", requirements) is None
    assert [step[1:3] for step in calls] == [["-m", "venv"], ["-m", "pip"]]
    assert peers.ensure_venv("x", requirements) is None
    assert len(calls) == 2  # the stamp matched: nothing run again

    requirements.write_text("order-book==1.2.0\n")
    assert peers.ensure_venv("x", requirements) is None
    assert len(calls) == 4


def test_a_peer_that_does_not_install_says_why(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements-peers-x.txt"
    requirements.write_text("nautilus_trader==1.231.0\n")
    monkeypatch.setattr(peers, "VENVS", tmp_path / "venvs")
    monkeypatch.setattr(peers, "ROOT", tmp_path)
    stderr = "WARNING: noise\nERROR: No matching distribution found for nautilus_trader==1.231.0\n"

    def run(step, **kwargs):
        return subprocess.CompletedProcess(step, 1 if "pip" in step else 0, "", stderr)

    monkeypatch.setattr(peers.subprocess, "run", run)

    assert peers.ensure_venv("x", requirements) == (
        "not installable here: ERROR: No matching distribution found for nautilus_trader==1.231.0"
    )
    assert not (tmp_path / "venvs" / "x" / ".installed").exists()


def test_a_runner_answers_each_run_with_its_time_counters_and_tops(tiny, tmp_path, monkeypatch):
    fake_venv(tmp_path, monkeypatch)
    runner = peers.start(FAKE, tiny.path, tiny.frames)
    try:
        first, second = runner.run(), runner.run()
    finally:
        runner.close()

    assert runner.process.returncode == 0
    assert first["frames"] == second["frames"] == tiny.frames
    assert first["seconds"] > 0
    # Fresh books each run: the same counts twice, not doubled.
    assert first["counters"] == second["counters"]
    assert first["counters"]["coinbase_frames"] > 0
    assert len(first["tops"]) == 10
    verdict = peers.judge(first["tops"], tiny.truths)
    assert verdict.startswith("wrong at 10 of 10 checkpoints, first at 10 %: coinbase:BTC-USD ")
    assert "binance:BTCUSDT missing" in peers.differences(first["tops"][-1], tiny.truth)
    assert peers.failures(first["counters"]) == "gaps 2"


def test_a_runner_that_breaks_leaves_a_reason_not_a_crash(tiny, tmp_path, monkeypatch):
    fake_venv(tmp_path, monkeypatch)

    assert peers.start(BROKEN, tiny.path, tiny.frames) == (
        "did not start: runner exited (1) without answering"
    )


def test_serve_reports_a_peer_that_raises_and_keeps_answering(tiny, monkeypatch):
    class Flaky:
        runs = 0

        def run(self, records):
            Flaky.runs += 1
            if Flaky.runs == 1:  # the first slice of the first run
                raise KeyError("stream")

        def tops(self):
            return {}

        def counters(self):
            return {"runs": Flaky.runs}

    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO("run\nhello\nrun\nquit\nrun\n"))
    monkeypatch.setattr(sys, "stdout", out)

    peer_common.serve(Flaky, [str(tiny.path)])

    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answers[0] == {"ready": True, "frames": tiny.frames}
    assert answers[1] == {"error": "KeyError: 'stream'"}
    assert answers[2] == {"error": "unknown command 'hello'"}
    assert answers[3]["counters"] == {"runs": 11}  # the second run, in ten slices
    assert answers[3]["tops"] == [{}] * 10
    assert len(answers) == 4  # nothing after quit


def test_the_harness_prints_one_table_with_every_row(tiny, tmp_path, monkeypatch, capsys):
    fake_venv(tmp_path, monkeypatch)
    monkeypatch.setattr(hot_path, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(peers, "PEERS", (FAKE, BROKEN))

    rows = peers.main(frames=600, runs=2, seed=2)

    baseline, project, fake, broken = rows
    assert len(baseline.seconds) == 4  # one before the project's run, one before the peer's
    assert len(project.ratios) == len(fake.ratios) == 2
    assert project.result == "the truth (15 of 15 books valid at the end)"
    assert fake.result.startswith("wrong at 10 of 10 checkpoints") and fake.result.endswith(
        "; gaps 2"
    )
    assert broken.note == "did not start: runner exited (1) without answering"
    printed = capsys.readouterr().out
    assert printed.count("\n| ") == 6  # one header, its separator and the four rows
    assert "| stand-in that fails | - | - | - | none | did not start" in printed
