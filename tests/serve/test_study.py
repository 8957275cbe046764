"""The study server's HTTP API (``dkt.serve.study``) through FastAPI's test client."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web stack is not installed (pip install 'dkt[serve]')")
pytest.importorskip("httpx", reason="fastapi.testclient needs httpx")

from fastapi.testclient import TestClient

from dkt.csvcells import read_row
from dkt.errors import JudgmentLogError, StudyError
from dkt.serve.study import create_study_app
from tests.serve.study_data import ITEMS, METHODS, make_study, read_log

CHOICES = ("left", "right", "tie")


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path, dict[bytes, tuple[str, str]], Path]:
    design, images, owners = make_study(tmp_path)
    return design, images, owners, tmp_path / "judgments.csv"


def shown(client: TestClient, trial: dict, owners: dict) -> tuple[str, str, str]:
    """``(item, left method, right method)`` of a trial, read from the images it serves."""
    left = owners[client.get(trial["left"]).content]
    right = owners[client.get(trial["right"]).content]
    assert left[1] == right[1]
    return left[1], left[0], right[0]


def answer(client: TestClient, rater: str, trial: dict, choice: str, ms: int = 700):
    return client.post(
        "/v1/study/judgment",
        json={"rater": rater, "trial": trial["trial"], "choice": choice, "ms": ms},
    )


def test_a_whole_study_records_what_was_shown_and_chosen(study) -> None:
    design, images, owners, out = study
    with TestClient(create_study_app(design, images, out)) as client:
        page = client.get("/")
        assert page.status_code == 200 and 'src="/study.js"' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/study.js").status_code == client.get("/study.css").status_code == 200
        assert client.get("/v1/health").json()["trials"] == 20

        seen = []
        for n in range(20):
            trial = client.get("/v1/study/next", params={"rater": "ana"}).json()
            assert trial["done"] is False and (trial["position"], trial["total"]) == (n + 1, 20)
            # Blind: what the page gets names no method and no item (only random tokens,
            # which may contain any letters, so whole words are compared, not substrings).
            words = set(re.split(r"[^A-Za-z0-9_-]+", json.dumps(trial)))
            assert not words & {*METHODS, "composite", *ITEMS}, trial
            item, left, right = shown(client, trial, owners)
            choice = CHOICES[n % 3]
            result = answer(client, "ana", trial, choice, ms=100 + n)
            assert result.status_code == 200, result.text
            assert result.json() == {"recorded": True, "answered": n + 1, "total": 20}
            row = read_log(out)[-1]  # on disk as soon as the request returned
            expected = {"left": left, "right": right, "tie": "tie"}[choice]
            assert (row["item"], row["left"], row["winner"]) == (item, left, expected)
            assert {row["method_a"], row["method_b"]} == {left, right}
            assert (row["rater"], row["ms"]) == ("ana", str(100 + n))
            seen.append((item, left, right))
        assert client.get("/v1/study/next", params={"rater": "ana"}).json() == {
            "done": True, "answered": 20, "total": 20}  # fmt: skip

    rows = read_log(out)
    assert len(rows) == 20 and len({r["trial"] for r in rows}) == 20
    assert Counter(r["catch"] for r in rows) == {"": 18, "composite": 1, "repeat": 1}
    catch = next(r for r in rows if r["catch"] == "composite")
    assert catch["method_a"] == "composite" and catch["method_b"] in ("dkt", "reinhard", "adain")
    repeat = next(r for r in rows if r["catch"] == "repeat")
    first = next(r for r in rows if r["trial"] == repeat["trial"][1:])
    assert rows.index(first) + 3 < rows.index(repeat) + 1  # shown again, not right after
    assert (first["item"], first["method_a"], first["method_b"]) == (
        repeat["item"], repeat["method_a"], repeat["method_b"])  # fmt: skip
    assert first["left"] != repeat["left"]  # sides swapped
    normal = [r for r in rows if not r["catch"]]
    assert 0 < sum(r["left"] == r["method_a"] for r in normal) < len(normal)  # sides drawn
    assert len(set(seen)) == 20


def test_raters_resume_after_a_restart(study) -> None:
    design, images, owners, out = study
    with TestClient(create_study_app(design, images, out)) as client:
        for _ in range(5):
            trial = client.get("/v1/study/next", params={"rater": "ana"}).json()
            assert answer(client, "ana", trial, "left").status_code == 200
        first_for_bob = shown(
            client, client.get("/v1/study/next", params={"rater": "bob"}).json(), owners
        )
    answered = {(r["item"], r["left"]) for r in read_log(out)}

    with TestClient(create_study_app(design, images, out)) as client:
        assert client.get("/v1/health").json()["judgments"] == 5
        trial = client.get("/v1/study/next", params={"rater": "ana"}).json()
        assert (trial["position"], trial["answered"]) == (6, 5)
        item, left, _ = shown(client, trial, owners)
        assert (item, left) not in answered
        bob = client.get("/v1/study/next", params={"rater": "bob"}).json()
        assert bob["position"] == 1 and shown(client, bob, owners) == first_for_bob  # same sides
        assert answer(client, "ana", trial, "right").status_code == 200
    assert len(read_log(out)) == 6


def test_an_answer_counts_once(study) -> None:
    design, images, _, out = study
    with TestClient(create_study_app(design, images, out)) as client:
        trial = client.get("/v1/study/next", params={"rater": "ana"}).json()
        assert answer(client, "ana", trial, "left").status_code == 200
        again = answer(client, "ana", trial, "right")
        assert again.status_code == 409 and "already answered" in again.json()["detail"]
        assert answer(client, "bob", trial, "right").status_code == 200  # another rater may
    assert [r["rater"] for r in read_log(out)] == ["ana", "bob"]


def test_unknown_ids_are_404_json_and_never_paths(study) -> None:
    design, images, _, out = study
    with TestClient(create_study_app(design, images, out)) as client:
        for url in ("/v1/study/image/nope", "/v1/study/image/..%2f..%2fdesign.csv",
                    "/v1/study/image/%2e%2e%2fimages%2fdkt%2fk1.png", "/images/dkt/k1.png",
                    "/static/study.js"):  # fmt: skip
            response = client.get(url)
            assert response.status_code == 404, url
            assert response.headers["content-type"] == "application/json"
            assert "detail" in response.json()
        unknown = client.post(
            "/v1/study/judgment", json={"rater": "ana", "trial": "1", "choice": "left", "ms": 5}
        )
        assert unknown.status_code == 404 and "no trial '1'" in unknown.json()["detail"]
    assert read_log(out) == []


@pytest.mark.parametrize(
    "body",
    [
        {"rater": "ana", "choice": "left", "ms": 5},  # no trial
        {"rater": "ana", "trial": "T", "choice": "up", "ms": 5},
        {"rater": "ana", "trial": "T", "choice": "left", "ms": -1},
        {"rater": "=HYPERLINK(1)", "trial": "T", "choice": "left", "ms": 5},
        {"rater": "", "trial": "T", "choice": "left", "ms": 5},
        {"rater": "ana", "trial": "T", "choice": "left", "ms": 5, "winner": "dkt"},
        "not json",
    ],
)
def test_bad_bodies_are_refused_with_json(study, body) -> None:
    design, images, _, out = study
    with TestClient(create_study_app(design, images, out)) as client:
        token = client.get("/v1/study/next", params={"rater": "ana"}).json()["trial"]
        if isinstance(body, dict):
            body = {k: token if v == "T" else v for k, v in body.items()}
            response = client.post("/v1/study/judgment", json=body)
        else:
            response = client.post(
                "/v1/study/judgment", content=body, headers={"content-type": "application/json"}
            )
        assert 400 <= response.status_code < 500
        assert isinstance(response.json()["detail"], list | str)
        for params in ({}, {"rater": "a b"}, {"rater": "x" * 65}):
            bad = client.get("/v1/study/next", params=params)
            assert bad.status_code == 422 and "detail" in bad.json()
    assert read_log(out) == []


def test_missing_images_stop_the_server_before_it_starts(tmp_path: Path) -> None:
    design, images, _ = make_study(tmp_path)
    out = tmp_path / "j.csv"
    (images / "adain" / "k3.png").unlink()
    with pytest.raises(StudyError, match=r"adain/k3\.\*: no image for item 'k3'"):
        create_study_app(design, images, out)
    shutil.rmtree(images / "reinhard")
    with pytest.raises(StudyError, match=r"reinhard: no such folder \(method 'reinhard'"):
        create_study_app(design, images, out)


def test_composites_are_needed_only_for_catch_trials(tmp_path: Path) -> None:
    design, images, _ = make_study(tmp_path)
    shutil.rmtree(images / "composite")
    with pytest.raises(StudyError, match=r"composite: no such folder .*catch trials"):
        create_study_app(design, images, tmp_path / "j.csv")
    app = create_study_app(design, images, tmp_path / "j.csv", catch_rate=0)
    with TestClient(app) as client:
        assert client.get("/v1/health").json()["trials"] == 18


def test_a_log_from_another_design_or_seed_is_refused(study) -> None:
    design, images, _, out = study
    with TestClient(create_study_app(design, images, out)) as client:
        for _ in range(20):
            trial = client.get("/v1/study/next", params={"rater": "ana"}).json()
            answer(client, "ana", trial, "left")
    with pytest.raises(StudyError, match="same design and --seed"):
        create_study_app(design, images, out, seed=5)
    with pytest.raises(JudgmentLogError, match="not a judgments log"):
        create_study_app(design, images, design)


def test_a_token_guards_the_page_and_every_v1_endpoint_but_health(study) -> None:
    design, images, _, out = study
    with TestClient(create_study_app(design, images, out, token="s3cret")) as client:
        assert client.get("/").status_code == 401
        assert client.get("/v1/study/next", params={"rater": "ana"}).status_code == 401
        assert client.get("/v1/health").json() == {"status": "ok"}  # no progress without it
        assert client.get("/study.js").status_code == 200
        bearer = {"Authorization": "Bearer s3cret"}
        trial = client.get("/v1/study/next", params={"rater": "ana"}, headers=bearer).json()
        assert client.get(trial["left"]).status_code == 401  # the pictures too
        assert client.get("/", params={"token": "wrong"}).status_code == 401
        moved = client.get("/", params={"token": "s3cret"}, follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["location"] == "/"
        assert "httponly" in moved.headers["set-cookie"].lower()
        # The client keeps the cookie, as a browser does: the page works from then on.
        assert client.get("/").status_code == 200
        assert client.get(trial["left"]).status_code == 200
        assert answer(client, "ana", trial, "left").status_code == 200
        assert client.get("/v1/health").json()["judgments"] == 1
    with pytest.raises(StudyError, match="--token"):
        create_study_app(design, images, out, token=" ")


def test_formula_names_reach_the_log_as_text_and_read_back_unchanged(tmp_path: Path) -> None:
    methods, items = ("=HYPERLINK(1)", "@SUM(1)", "dkt"), ("+k1", "=k2", "k3")
    design, images, _ = make_study(tmp_path, methods, items)
    out = tmp_path / "judgments.csv"
    with TestClient(create_study_app(design, images, out)) as client:
        for _ in range(10):
            trial = client.get("/v1/study/next", params={"rater": "ana"}).json()
            assert answer(client, "ana", trial, "left").status_code == 200
    with open(out, newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if re.match(r"[=+\-@\t\r]", c)]
    rows = [read_row(r) for r in read_log(out)]
    assert {r["item"] for r in rows} == set(items)
    assert {r["winner"] for r in rows} <= {*methods, "composite"}
    # Resumed: what the log says was shown matches the design, name for name.
    with TestClient(create_study_app(design, images, out)) as client:
        assert client.get("/v1/health").json()["judgments"] == 10
        assert client.get("/v1/study/next", params={"rater": "ana"}).json()["done"] is True
