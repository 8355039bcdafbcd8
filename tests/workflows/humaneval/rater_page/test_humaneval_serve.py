"""The rater page's server, over HTTP as the page uses it: blind, saved on every answer, resumable,
one server per filled sheet, videos only by item number, frames where the browser cannot play, and
a sheet `savi humaneval score` scores to the figures worked out by hand (tests/helpers/rater_fixtures.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.helpers.rater_fixtures import EXPECTED, figures, make_eval, ratings_for
from videosavi.cli import app
from videosavi.errors import HumanEvalError
from videosavi.workflows.humaneval import score_sheets
from videosavi.workflows.humaneval.rater_page import RaterServer, ServeOptions


def server(files, rater: str = "alice", **kw: object) -> RaterServer:  # type: ignore[no-untyped-def]
    return RaterServer(ServeOptions(sheet=files.sheet, rater=rater, roots=files.roots, port=0, **kw))  # type: ignore[arg-type]


def test_rate_save_resume_and_score(tmp_path: Path) -> None:
    files = make_eval(tmp_path)
    answers = ratings_for(files.key_rows)
    with server(files) as srv, httpx.Client(base_url=srv.url) as c:
        out = srv.out
        assert out == tmp_path / "eval.alice.csv"
        assert c.get("/").status_code == 200 and "human evaluation" in c.get("/").text
        state = c.get("/api/state").json()
        assert (state["rater"], state["total"], state["done"], state["first_unrated"]) == ("alice", 4, 0, 0)
        # blind: nothing of the key reaches the page
        for i in range(4):
            body = c.get(f"/api/items/{i}").text
            for secret in ("chosen", "rejected", "pair_id", "question_type", "spatial", "temporal"):
                assert secret not in body
        # answers are saved one field at a time, as given
        first = answers[0]
        r = c.put("/api/items/0", json={"question_answerable": "yes"})
        assert r.status_code == 200 and r.json()["complete"] is False
        assert "alice" in out.read_text() and ",yes," in out.read_text()
        for field, value in first.items():
            c.put("/api/items/0", json={field: value})
        assert c.get("/api/state").json()["done"] == 1
        # a value the scorer would not accept is refused, and the file keeps what it had
        before = out.read_bytes()
        bad = c.put("/api/items/1", json={"answer_A_verdict": "maybe"})
        assert bad.status_code == 400 and "accurate, clear errors or neither" in bad.json()["error"]
        assert c.put("/api/items/1", json={"key": "A"}).status_code == 400
        assert c.put("/api/items/9", json={"comment": "x"}).status_code == 404
        assert out.read_bytes() == before
        # a half-rated item, then the tab closes (a beacon POST carries the comment)
        c.put("/api/items/1", json={"question_answerable": "yes"})
        assert c.post("/api/items/1", content=json.dumps({"comment": "=cmd|' /C calc'!A0"})).status_code == 200
    # reopened: resumes at the first item not fully rated, with what was given
    with server(files) as srv, httpx.Client(base_url=srv.url) as c:
        state = c.get("/api/state").json()
        assert (state["done"], state["first_unrated"]) == (1, 1)
        item = c.get("/api/items/1").json()
        assert item["answers"]["question_answerable"] == "yes"
        assert item["answers"]["comment"] == "=cmd|' /C calc'!A0"  # shown as typed, stored neutralised
        for i, given in enumerate(answers[1:], start=1):
            c.put(f"/api/items/{i}", json=given)
        assert c.get("/api/state").json() == {**state, "done": 4, "first_unrated": None}
    assert "'=cmd" in out.read_text()  # spreadsheet-safe in the file, exactly once after two saves
    assert "''=cmd" not in out.read_text()
    report = score_sheets([out], files.key)
    assert report.raters[0].rater == "alice"
    assert figures(report) == EXPECTED


def test_videos_by_item_only_with_ranges_and_frames(tmp_path: Path) -> None:
    files = make_eval(tmp_path)
    with server(files) as srv, httpx.Client(base_url=srv.url) as c:
        assert len(srv.missing) == 1 and "v4.mp4 is missing" in srv.missing[0][1]
        items = [c.get(f"/api/items/{i}").json() for i in range(4)]
        by_name = {}
        for i, it in enumerate(items):
            vid = it["question"].split(" in ")[1].split(" ")[0]
            by_name[vid] = i
        h264, mpeg4, missing = by_name["v1"], by_name["v3"], by_name["v4"]
        assert items[h264]["video"] == {"playable": True, "problem": None, "type": "video/mp4"}
        assert (items[h264]["clip_start"], items[h264]["clip_end"]) == (0.5, 1.5)
        assert items[mpeg4]["video"]["playable"] is False and items[mpeg4]["video"]["problem"] is None
        assert "v4.mp4 is missing" in items[missing]["video"]["problem"]
        whole = c.get(f"/api/items/{h264}/video")
        size = (files.root / "v1.mp4").stat().st_size
        assert whole.status_code == 200 and len(whole.content) == size
        part = c.get(f"/api/items/{h264}/video", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        assert c.get(f"/api/items/{h264}/video", headers={"Range": "bytes=0-" + "9" * 5000}).status_code == 416
        assert c.get(f"/api/items/{missing}/video").status_code == 404
        for bad in ("/api/items/4/video", "/api/items/-1/video", "/api/items/..%2F..%2Fetc%2Fpasswd/video",
                    "/api/items/0%00/video", "/star/v1.mp4"):
            assert c.get(bad).status_code == 404, bad
        frames = c.get(f"/api/items/{mpeg4}/frames").json()
        assert frames["count"] == 16 and frames["times"][0] >= 0.2 - 0.05 and frames["times"][-1] <= 1.2 + 0.05
        jpeg = c.get(f"/api/items/{mpeg4}/frames/3.jpg")
        assert jpeg.status_code == 200 and jpeg.content[:3] == b"\xff\xd8\xff"
        assert c.get(f"/api/items/{mpeg4}/frames/16.jpg").status_code == 404
        gone = c.get(f"/api/items/{missing}/frames")
        assert gone.status_code == 422 and "missing" in gone.json()["error"]
        # only the loopback names: a page elsewhere cannot reach the server through DNS rebinding
        assert c.get("/api/state", headers={"Host": "evil.example"}).status_code == 400
        # and answers come from the page itself: another site open in the rater's browser cannot write them
        cross = c.put("/api/items/0", json={"comment": "x"}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        same = c.put("/api/items/0", json={"comment": "x"}, headers={"Origin": srv.url.rstrip("/")})
        assert same.status_code == 200


def test_one_server_per_filled_sheet_and_no_mixing(tmp_path: Path) -> None:
    files = make_eval(tmp_path)
    with server(files):
        # a second server (another process, as a second `savi humaneval serve` is) on the same filled sheet
        second = subprocess.run(
            [sys.executable, "-m", "videosavi", "humaneval", "serve", "--sheet", str(files.sheet), "--rater", "alice",
             "--video-root", f"star={files.root}", "--port", "0"], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert "eval.alice.csv" not in second.stdout
        assert "is in use by savi humaneval serve (alice)" in second.stderr and "Traceback" not in second.stderr
        with server(files, rater="bob") as other:  # another rater, another file: fine
            assert other.out.name == "eval.bob.csv"
    with pytest.raises(HumanEvalError, match="holds the ratings of alice, not of bob"):
        server(files, rater="bob", out=tmp_path / "eval.alice.csv").__enter__()
    other = make_eval(tmp_path / "other", seed=9)
    with pytest.raises(HumanEvalError, match="is not a filling of"):
        RaterServer(ServeOptions(sheet=other.sheet, rater="alice", roots=other.roots, port=0,
                                 out=tmp_path / "eval.alice.csv")).__enter__()


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    files = make_eval(tmp_path)
    runner = CliRunner()
    nope = str(tmp_path / "nope.csv")
    cases = [
        (["--sheet", nope, "--rater", "a", "--video-root", f"star={files.root}"], "does not exist"),
        (["--sheet", str(files.sheet), "--rater", "a"], "say where the videos are"),
        (["--sheet", str(files.sheet), "--rater", " ", "--video-root", f"star={files.root}"], "--rater must name"),
        (["--sheet", str(files.key), "--rater", "a", "--video-root", f"star={files.root}"], "lacks the column"),
    ]
    for args, message in cases:
        res = runner.invoke(app, ["humaneval", "serve", *args])
        assert res.exit_code == 2, res.output
        assert message in res.output and "Traceback" not in res.output


def test_a_corrupt_video_is_said_on_the_page(tmp_path: Path) -> None:
    files = make_eval(tmp_path)
    (files.root / "v4.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)  # not a video
    with server(files) as srv, httpx.Client(base_url=srv.url) as c:
        assert srv.missing == []
        index = next(i for i in range(4) if "v4" in c.get(f"/api/items/{i}").json()["question"])
        item = c.get(f"/api/items/{index}").json()
        assert item["video"]["playable"] is False
        assert "star/v4.mp4 cannot be played" in item["video"]["problem"]
        frames = c.get(f"/api/items/{index}/frames")
        assert frames.status_code == 422 and "star/v4.mp4" in frames.json()["error"]
        assert c.put(f"/api/items/{index}", json={"question_answerable": "no"}).json()["done"] == 1


def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    files = make_eval(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "videosavi", "humaneval", "serve", "--sheet", str(files.sheet), "--rater", "Ann Lee",
         "--video-root", f"star={files.root}", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("rater page for Ann Lee: http://127.0.0.1:") and "(starting; Ctrl-C to stop)" in first
        url = first.split(": ", 1)[1].split(" ")[0]
        assert "eval.ann-lee.csv as they are given" in proc.stdout.readline()
        assert httpx.put(url + "api/items/0", json={"question_answerable": "no"}).json()["done"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped: 1 of 4 rated, saved in" in out
    assert "1 of 4 videos cannot be found (first: star/v4.mp4 is missing" in err
