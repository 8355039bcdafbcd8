"""Label Studio: `savi humaneval export --format label-studio` writes tasks and a labeling config with
the sheet's fields, and `savi humaneval score` reads Label Studio's JSON export to the same figures
as our CSV sheet.

The first tests build exports in the shape Label Studio 1.23 writes (seen in the real round trip
below). The last one runs a real Label Studio: `make label-studio-test` installs it in its own venv
(`.venv-label-studio`: its Django pins clash with ours), starts it on 127.0.0.1, creates a project
with our labeling config, imports our tasks, plays a video through its local-files route, creates
annotations through its API, exports them as JSON and scores the export.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.helpers.factories import make_pairs, write_run_dir
from tests.helpers.rater_fixtures import EXPECTED, EvalFiles, figures, make_eval, ratings_for
from videosavi.cli import app
from videosavi.errors import HumanEvalError
from videosavi.workflows.humaneval import score_sheets
from videosavi.workflows.humaneval.rated_sheet import RatedSheet

FIELDS = ("question_answerable", "answer_A_verdict", "answer_B_verdict", "better_answer", "comment")


def result(values: dict[str, str]) -> list[dict[str, Any]]:
    """An annotation's results for sheet values, as Label Studio's editor makes them from our config."""
    to = {"answer_A_verdict": "answer_A", "answer_B_verdict": "answer_B"}
    out: list[dict[str, Any]] = []
    for field, value in values.items():
        if field == "comment":
            out.append({"from_name": field, "to_name": "question", "type": "textarea", "value": {"text": [value]}})
        else:
            out.append({"from_name": field, "to_name": to.get(field, "question"), "type": "choices",
                        "value": {"choices": [value]}})
    return out


def tasks_of(files: EvalFiles) -> list[dict[str, Any]]:
    return json.loads(files.sheet.read_text(encoding="utf-8"))


def crafted_export(tasks: list[dict[str, Any]], by_user: dict[int, list[dict[str, str]]]) -> list[dict[str, Any]]:
    """Label Studio's JSON export of these tasks, with `by_user[user][i]` as user's annotation of task i."""
    out = []
    for i, t in enumerate(tasks):
        annotations = [{"id": 10 * i + user, "completed_by": user, "result": result(values[i]), "was_cancelled": False,
                        "ground_truth": False, "task": i + 1, "project": 1} for user, values in by_user.items()]
        out.append({"id": i + 1, "annotations": annotations, "drafts": [], "predictions": [], "data": t["data"],
                    "meta": {}, "project": 1})
    return out


def csv_sheet(tmp: Path, answers: list[dict[str, str]], key: Path) -> Path:
    """The same judgements on the CSV sheet of the same export (same data and seed: the same items and
    key), through the rater page's sheet, for comparison."""
    files = make_eval(tmp / "as-csv")
    assert files.key.read_bytes() == key.read_bytes()
    rated = RatedSheet.open(files.sheet, tmp / "eval.alice.csv", "alice")
    for i, given in enumerate(answers):
        rated.set(i, given)
    return rated.out


def test_export_writes_tasks_and_a_config_with_the_sheets_fields(tmp_path: Path) -> None:
    files = make_eval(tmp_path, fmt="label-studio")
    tasks = tasks_of(files)
    assert len(tasks) == 4
    text = files.sheet.read_text(encoding="utf-8")
    for secret in ("chosen", "rejected", "pair_id", "question_type", "spatial", "temporal"):
        assert secret not in text
    urls = sorted(t["data"]["video_url"] for t in tasks)
    assert urls == [f"/data/local-files/?d=star/v{i}.mp4" for i in range(1, 5)]
    config = ET.fromstring(files.sheet.with_name("eval.label-config.xml").read_text(encoding="utf-8"))
    names = [e.get("name") for e in config.iter() if e.tag in ("Choices", "TextArea")]
    assert names == list(FIELDS)
    choices = {e.get("name"): [c.get("value") for c in e] for e in config.iter("Choices")}
    assert choices == {"question_answerable": ["yes", "no"],
                       "answer_A_verdict": ["accurate", "clear errors", "neither"],
                       "answer_B_verdict": ["accurate", "clear errors", "neither"], "better_answer": ["A", "B"]}
    served = make_eval(tmp_path / "web", fmt="label-studio", video_url_prefix="https://videos.example/eval/")
    assert sorted(t["data"]["video_url"] for t in tasks_of(served))[0] == "https://videos.example/eval/star/v1.mp4"


def test_cli_export_label_studio(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", make_pairs(n_videos=6))
    out, key = tmp_path / "ls" / "tasks.json", tmp_path / "key.csv"
    res = CliRunner().invoke(app, ["humaneval", "export", "--run-dir", str(run.path), "--n", "4", "-f", "label-studio",
                                   "--out", str(out), "--key", str(key)])
    assert res.exit_code == 0, res.output
    assert "wrote 4 Label Studio tasks" in res.output and "tasks.label-config.xml" in res.output
    assert len(json.loads(out.read_text())) == 4 and key.is_file()
    bad = CliRunner().invoke(app, ["humaneval", "export", "--run-dir", str(run.path), "--n", "4", "--out",
                                   str(tmp_path / "x.csv"), "--key", str(tmp_path / "k2.csv"),
                                   "--video-url-prefix", "http://x/"])
    assert bad.exit_code == 2 and "applies to --format label-studio only" in bad.output


def test_a_label_studio_export_scores_as_the_csv_does(tmp_path: Path) -> None:
    files = make_eval(tmp_path, fmt="label-studio")
    tasks = tasks_of(files)
    answers = ratings_for(files.key_rows)  # key rows and tasks share the sheet's order
    other = [{"question_answerable": "yes", "answer_A_verdict": "accurate", "answer_B_verdict": "accurate",
              "better_answer": "A"} for _ in tasks]
    export = crafted_export(tasks, {1: answers, 2: other})
    export[0]["annotations"].append({"id": 99, "completed_by": 3, "result": [], "was_cancelled": True})  # a skip
    path = tmp_path / "project-1-at-2026.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    report = score_sheets([path], files.key)
    assert [r.rater for r in report.raters] == [f"{path.name}:user 1", f"{path.name}:user 2"]
    assert figures(report) == EXPECTED
    via_csv = score_sheets([csv_sheet(tmp_path, answers, files.key)], files.key)
    assert report.raters[0].model_copy(update={"rater": "alice"}) == via_csv.raters[0]
    assert report.agreement and report.agreement[0].method == "cohen"


def test_label_studio_exports_that_are_not_ours_are_one_line(tmp_path: Path) -> None:
    files = make_eval(tmp_path, fmt="label-studio")
    tasks = tasks_of(files)
    answers = ratings_for(files.key_rows)
    cases: list[tuple[Any, str]] = [
        ([{"id": 1, "data": {"text": "great"}, "annotations": [
            {"completed_by": 1, "result": [{"from_name": "sentiment", "type": "choices",
                                           "value": {"choices": ["pos"]}}]}]}], "export of another project"),
        ([{**t, "annotations": [{"completed_by": 1, "result": [{"from_name": "sentiment", "type": "choices",
                                                                "value": {"choices": ["pos"]}}]}]} for t in tasks],
         "no annotation uses the fields"),
        ([{"id": 1, "item_id": "item-001", "question_answerable": "yes", "annotator": "a@b.c"}], "JSON-MIN"),
        ([{"id": 1, "data": t["data"], "annotations": []} for t in tasks], "has no annotations yet"),
        ({"not": "a list"}, "not a Label Studio JSON export"),
    ]
    for i, (content, message) in enumerate(cases):
        path = tmp_path / f"case{i}.json"
        path.write_text(json.dumps(content), encoding="utf-8")
        with pytest.raises(HumanEvalError, match=message):
            score_sheets([path], files.key)
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(HumanEvalError, match="is not a JSON file"):
        score_sheets([broken], files.key)
    # our tasks, but of another export (other pairs behind the same item ids): the key does not match
    elsewhere = make_eval(tmp_path / "other", fmt="label-studio", wording="last")
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps(crafted_export(tasks_of(elsewhere), {1: answers})), encoding="utf-8")
    with pytest.raises(HumanEvalError, match="and the key do not match"):
        score_sheets([path], files.key)
    res = CliRunner().invoke(app, ["humaneval", "score", str(path), "--key", str(files.key)])
    assert res.exit_code == 2 and "do not match" in res.output and "Traceback" not in res.output


# --- against a real Label Studio ---------------------------------------------------------------------------


def label_studio_binary() -> Path | None:
    """The `label-studio` that `make label-studio-test` names; only then does the round trip run (a venv found
    on its own may still be installing, as in CI, where it installs while the suite runs)."""
    given = os.environ.get("VIDEOSAVI_LABEL_STUDIO")
    path = Path(given) if given else None
    return path if path is not None and path.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def label_studio(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A fresh Label Studio on 127.0.0.1 serving local files under its document root: (url, document root)."""
    binary = label_studio_binary()
    if binary is None:
        pytest.skip("needs Label Studio: `make label-studio-test` creates .venv-label-studio (its pins clash with "
                    "ours) and runs this test with $VIDEOSAVI_LABEL_STUDIO set")
    port, root = free_port(), tmp_path / "documents"
    root.mkdir()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
           "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(root), "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    log = (tmp_path / "label-studio.log").open("w")
    proc = subprocess.Popen(
        [str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "--host", url, "--port", str(port),
         "--data-dir", str(tmp_path / "ls-data"), "--username", "rater@example.com", "--password", "rate-it-2026"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 420  # the first start migrates a new database: minutes on 2 busy cores
        while True:
            if proc.poll() is not None:
                raise AssertionError("Label Studio exited:\n" + (tmp_path / "label-studio.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("Label Studio did not answer within 420 s")
            time.sleep(1)
        yield url, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def api_client(url: str) -> httpx.Client:
    """Log in as the user the server was started with, mint a personal access token as its UI does, and
    use it (Label Studio 1.23 refuses the legacy `Token` scheme by default)."""
    with httpx.Client(base_url=url, timeout=60) as web:
        web.get("/user/login/")
        login = web.post("/user/login/", data={"email": "rater@example.com", "password": "rate-it-2026",
                                               "csrfmiddlewaretoken": web.cookies["csrftoken"]},
                         headers={"Referer": f"{url}/user/login/"})
        assert login.status_code == 302, login.text[:500]
        token = web.post("/api/token/", headers={"X-CSRFToken": web.cookies["csrftoken"], "Referer": url})
        assert token.status_code == 201, token.text
    access = httpx.post(f"{url}/api/token/refresh", json={"refresh": token.json()["token"]}, timeout=60)
    return httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {access.json()['access']}"})


CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# the hotkeys of our labeling config (label_studio._choices), the same keys as the rater page's
HOTKEYS = {("question_answerable", "yes"): "y", ("question_answerable", "no"): "n",
           ("answer_A_verdict", "accurate"): "1", ("answer_A_verdict", "clear errors"): "2",
           ("answer_A_verdict", "neither"): "3", ("answer_B_verdict", "accurate"): "4",
           ("answer_B_verdict", "clear errors"): "5", ("answer_B_verdict", "neither"): "6",
           ("better_answer", "A"): "a", ("better_answer", "B"): "b"}


def annotate_in_label_studios_editor(url: str, pid: int, task_id: int, given: dict[str, str]) -> bool:
    """Rate one task in Label Studio's own editor, in Chromium, with our config's hotkeys, and submit;
    False where no browser is here (the task is then annotated through the API like the others)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return False
    if not CHROMIUM.is_file():
        return False
    import tempfile

    keys = [HOTKEYS[(f, given[f])] for f in FIELDS[:4] if f in given]
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="videosavi-chromium-") as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                       args=FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.goto(f"{url}/user/login/")
            page.fill("input[name=email]", "rater@example.com")
            page.fill("input[name=password]", "rate-it-2026")
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.goto(f"{url}/projects/{pid}/data?task={task_id}")
            page.wait_for_selector("text=Can the question be answered from the video?", timeout=120_000)
            page.click("text=Watch the clip")  # focus the editor, not the task table
            for key in keys:
                page.keyboard.press(key)
            page.get_by_text("Which answer is better?").scroll_into_view_if_needed()
            folder = os.environ.get("VIDEOSAVI_SCREENSHOTS")
            if folder:
                page.screenshot(path=str(Path(folder) / "label-studio-editor.png"))
            with page.expect_response(lambda r: "/annotations" in r.url and r.request.method == "POST") as sent:
                page.click("button:has-text('Submit')")
            assert sent.value.status == 201
        finally:
            context.close()
    return True


def test_round_trip_through_a_real_label_studio(tmp_path: Path, label_studio: tuple[str, Path]) -> None:
    url, documents = label_studio
    files = make_eval(documents, fmt="label-studio")  # videos at DOCUMENT_ROOT/star/, as the task URLs say
    api = api_client(url)
    version = api.get("/api/version").json()["release"]
    config = files.sheet.with_name("eval.label-config.xml").read_text(encoding="utf-8")
    project = api.post("/api/projects", json={"title": "videosavi human evaluation", "label_config": config})
    assert project.status_code == 201, project.text  # Label Studio accepted our labeling config
    pid = project.json()["id"]
    storage = api.post("/api/storages/localfiles", json={"project": pid, "path": str(files.root), "title": "star",
                                                          "use_blob_urls": False})
    assert storage.status_code == 201, storage.text
    imported = api.post(f"/api/projects/{pid}/import", content=files.sheet.read_bytes(),
                        headers={"Content-Type": "application/json"})
    assert imported.status_code == 201 and imported.json()["task_count"] == 4, imported.text
    tasks = api.get("/api/tasks", params={"project": pid, "page_size": 100}).json()["tasks"]
    by_item = {t["data"]["item_id"]: t for t in tasks}
    answers = dict(zip((k["item_id"] for k in files.key_rows), ratings_for(files.key_rows), strict=True))
    first = files.key_rows[0]["item_id"]  # rated in Label Studio's editor where a browser is here
    in_editor = annotate_in_label_studios_editor(url, pid, by_item[first]["id"], answers[first])
    for item_id, task in by_item.items():
        video = api.get(task["data"]["video_url"])
        local = documents / task["data"]["video"]
        if local.is_file():  # Label Studio plays it from its local-files route
            assert video.status_code == 200 and video.content == local.read_bytes()
        else:
            assert video.status_code == 404
        if in_editor and item_id == first:
            continue
        given = {**answers[item_id], "comment": f"seen in Label Studio {version}"}
        made = api.post(f"/api/tasks/{task['id']}/annotations", json={"result": result(given), "lead_time": 12.5})
        assert made.status_code == 201, made.text
    skip = api.post(f"/api/tasks/{tasks[0]['id']}/annotations", json={"result": [], "was_cancelled": True})
    assert skip.status_code == 201, skip.text
    exported = api.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
    assert exported.status_code == 200
    path = tmp_path / "label-studio-export.json"
    path.write_bytes(exported.content)
    report = score_sheets([path], files.key)
    assert len(report.raters) == 1 and report.raters[0].rater.endswith(":user 1")
    assert figures(report) == EXPECTED
    via_csv = score_sheets([csv_sheet(tmp_path, list(answers.values()), files.key)], files.key)
    assert report.raters[0].model_copy(update={"rater": "alice"}) == via_csv.raters[0]
    print(f"Label Studio {version}: 4 tasks, 5 annotations (1 skipped; 1 made in its editor: {in_editor}), pair "
          f"correctness {report.raters[0].overall.yes}/{report.raters[0].overall.n}")

    # an export of another project of the same server is refused in one line
    other = api.post("/api/projects", json={"title": "sentiment", "label_config": (
        '<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
        '<Choice value="pos"/><Choice value="neg"/></Choices></View>')}).json()["id"]
    api.post(f"/api/projects/{other}/import", json=[{"data": {"text": "nice"}}])
    task = api.get("/api/tasks", params={"project": other}).json()["tasks"][0]
    api.post(f"/api/tasks/{task['id']}/annotations", json={"result": [
        {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]})
    wrong = tmp_path / "other-project.json"
    wrong.write_bytes(api.get(f"/api/projects/{other}/export", params={"exportType": "JSON"}).content)
    res = CliRunner().invoke(app, ["humaneval", "score", str(wrong), "--key", str(files.key)])
    assert res.exit_code == 2 and "export of another project" in res.output
