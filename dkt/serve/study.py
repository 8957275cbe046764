"""The user-study server: raters judge pairs of results in a browser, one trial at a time.

Everything a rater can reach is decided at startup. The design is read, every image it
needs is found (or the server refuses to start, naming the first one missing), and each
image gets a random id: a request names an id from that table, never a path, so nothing a
browser sends can reach another file. Trials are handed out under random tokens too, so
neither the page nor its network traffic says which method is which, or which trial is a
catch.

Every rater sees the design's trials in the design's order with catch trials mixed in (the
same schedule for everyone, from ``seed``); which method is on the left is drawn per rater
and trial, and recorded. Answers go straight to a :class:`~dkt.evaluation.judgments.JudgmentLog`,
and the next trial for a rater is the first one of the schedule that the log has no answer
for: a rater who closes the tab, or whose server was killed, resumes where they stopped.

With a ``token`` (``dkt study serve --token``, as for ``dkt serve``) every ``/v1`` endpoint
but health needs it, and so does the page: raters open ``/?token=TOKEN`` once, which keeps
the token in a cookie (the pictures are plain ``<img>`` requests, which send no header) and
takes it out of the address bar; a script may send ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import contextlib
import csv
import hmac
import io
import mimetypes
import random
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from dkt.csvcells import read_cell
from dkt.errors import AlreadyAnsweredError, StudyError
from dkt.evaluation.catch import (
    CATCH_COMPOSITE,
    CATCH_REPEAT,
    COMPOSITE,
    repeat_id,
)
from dkt.evaluation.judgments import Judgment, JudgmentLog
from dkt.inference.pairing import IMAGE_SUFFIXES

__all__ = ["RATER_PATTERN", "Study", "StudyError", "StudyTrial", "create_study_app"]

STATIC = Path(__file__).resolve().parent / "static"
#: Rater ids go into a CSV that people open in spreadsheets: letters, digits and a few marks,
#: starting with a letter or digit (a leading ``=`` or ``+`` would be run as a formula).
RATER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$"
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
}
#: The cookie that carries the study's token once a rater opened the page with it.
TOKEN_COOKIE = "dkt_study_token"
#: Catch trials are shown at least this many trials after the trial they repeat, where the
#: schedule is long enough, so the rater cannot simply remember the last answer.
_REPEAT_GAP = 3


@dataclass(frozen=True)
class StudyTrial:
    """One trial of the schedule; ``repeats`` is the id of the trial a repeat shows again."""

    id: str
    item: str
    method_a: str
    method_b: str
    catch: str = ""
    repeats: str | None = None


def read_design(path: Path) -> list[StudyTrial]:
    """The design's comparisons (``dkt study pairs`` output; ``trial`` optional)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise StudyError(f"{path}: no such design file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("item", "method_a", "method_b") if c not in columns]
    if missing:
        raise StudyError(
            f"{path}: missing column(s) {', '.join(missing)} (a design has "
            f"trial,item,method_a,method_b; found {','.join(columns) or 'no header'})"
        )
    reader.fieldnames = columns
    trials: list[StudyTrial] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        values = {k: read_cell(v or "").strip() for k, v in row.items() if k is not None}
        if not any(values.values()):
            continue
        trial = values.get("trial") or str(line - 1)
        item, a, b = values["item"], values["method_a"], values["method_b"]
        if not item or not a or not b:
            raise StudyError(f"{path} row {line}: item, method_a and method_b must all be given")
        if a == b:
            raise StudyError(f"{path} row {line}: method_a and method_b are both {a!r}")
        if trial in seen:
            raise StudyError(f"{path} row {line}: trial {trial} appears twice")
        if Path(item).is_absolute() or ".." in Path(item).parts:
            raise StudyError(f"{path} row {line}: item {item!r} must be a relative name")
        seen.add(trial)
        trials.append(StudyTrial(trial, item, a, b))
    if not trials:
        raise StudyError(f"{path}: the design lists no trials")
    return trials


def _find_image(folder: Path, item: str, listings: dict[Path, list[Path]]) -> Path | None:
    """``folder/<item>.<image suffix>``; two candidates are an error, not a silent pick.

    ``listings`` caches each folder's files, so a study of thousands of items lists every
    folder once instead of once per item.
    """
    target = folder / item
    parent = target.parent
    if parent not in listings:
        listings[parent] = (
            [p for p in parent.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
            if parent.is_dir()
            else []
        )
    found = sorted(p for p in listings[parent] if p.stem == target.name)
    if len(found) > 1:
        raise StudyError(
            f"{parent}: {len(found)} images for item {item!r} "
            f"({', '.join(p.name for p in found)}); keep one"
        )
    return found[0] if found else None


def find_images(
    images: Path, design: Sequence[StudyTrial], composites: bool
) -> dict[tuple[str, str], Path]:
    """``(method, item) -> file`` for every image the study shows; the first gap is an error.

    ``composites`` asks for ``images/composite/<item>.*`` for every item too (the catch
    trials show them).
    """
    images = Path(images)
    if not images.is_dir():
        raise StudyError(f"--images {images}: no such folder")
    needed: dict[str, list[str]] = {}
    for t in design:
        for method in (t.method_a, t.method_b):
            needed.setdefault(method, [])
            if t.item not in needed[method]:
                needed[method].append(t.item)
    if composites:
        items = list(dict.fromkeys(t.item for t in design))
        needed.setdefault(COMPOSITE, [])
        needed[COMPOSITE] += [i for i in items if i not in needed[COMPOSITE]]
    layout = "expected --images DIR/<method>/<item>.<png|jpg|...>"
    found: dict[tuple[str, str], Path] = {}
    listings: dict[Path, list[Path]] = {}
    for method, items in needed.items():
        folder = images / method
        if not folder.is_dir():
            why = "the unharmonized composites for catch trials" if method == COMPOSITE else ""
            raise StudyError(
                f"{folder}: no such folder ({why or f'method {method!r} of the design'}; {layout})"
            )
        missing = []
        for item in items:
            path = _find_image(folder, item, listings)
            if path is None:
                missing.append(item)
            else:
                found[(method, item)] = path
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise StudyError(
                f"{folder / missing[0]}.*: no image for item {missing[0]!r}{more} "
                f"(method {method!r}; {layout})"
            )
    return found


def build_schedule(design: Sequence[StudyTrial], catch_rate: float, seed: int) -> list[StudyTrial]:
    """The design's trials in order with ``round(catch_rate * len(design))`` catches mixed in.

    Half (rounded up) are composite catches on distinct items, against a method drawn from
    the design; the rest repeat a design trial at least a few trials after it was shown.
    """
    if not 0.0 <= catch_rate <= 1.0:
        raise StudyError(f"--catch-rate {catch_rate}: use a share between 0 and 1")
    rng = random.Random(seed)
    n_catch = 0 if catch_rate == 0 else max(1, round(catch_rate * len(design)))
    n_composite, n_repeat = (n_catch + 1) // 2, n_catch // 2
    schedule = list(design)
    items = list(dict.fromkeys(t.item for t in design))
    methods = sorted({m for t in design for m in (t.method_a, t.method_b)} - {COMPOSITE})
    picked = rng.sample(items, min(n_composite, len(items)))
    picked += [rng.choice(items) for _ in range(n_composite - len(picked))]
    for k, item in enumerate(picked, start=1):
        catch = StudyTrial(f"c{k}", item, COMPOSITE, rng.choice(methods), CATCH_COMPOSITE)
        schedule.insert(rng.randint(0, len(schedule)), catch)
    early = list(design[: max(1, len(design) - _REPEAT_GAP)])
    for original in rng.sample(early, min(n_repeat, len(early))):
        after = schedule.index(original) + 1
        at = rng.randint(min(after + _REPEAT_GAP, len(schedule)), len(schedule))
        schedule.insert(
            at,
            StudyTrial(
                repeat_id(original.id),
                original.item,
                original.method_a,
                original.method_b,
                CATCH_REPEAT,
                repeats=original.id,
            ),
        )
    ids = [t.id for t in schedule]
    clash = sorted({i for i in ids if ids.count(i) > 1})
    if clash:
        raise StudyError(
            f"design trial id {clash[0]!r} is also a catch trial's id; number the design's "
            "trials (dkt study pairs does) or use --catch-rate 0"
        )
    return schedule


class Study:
    """The schedule, the image table and the log of one running study."""

    def __init__(
        self,
        design: Path,
        images: Path,
        out: Path,
        *,
        catch_rate: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.design_path = Path(design)
        self.seed = seed
        self.design = read_design(self.design_path)
        self.schedule = build_schedule(self.design, catch_rate, seed)
        composites = any(t.catch == CATCH_COMPOSITE for t in self.schedule)
        files = find_images(Path(images), self.design, composites)
        by_path: dict[Path, str] = {}
        self.image_ids: dict[tuple[str, str], str] = {}
        for key, path in files.items():
            self.image_ids[key] = by_path.setdefault(path, secrets.token_urlsafe(12))
        self.image_files: dict[str, Path] = {i: p for p, i in by_path.items()}
        self.by_id = {t.id: t for t in self.schedule}
        self.tokens = {t.id: secrets.token_urlsafe(9) for t in self.schedule}
        self.by_token = {tok: self.by_id[tid] for tid, tok in self.tokens.items()}
        self.log = JudgmentLog(out)
        try:
            self._check_log()
        except BaseException:
            self.log.close()
            raise

    @property
    def note(self) -> str | None:
        return self.log.note

    def _check_log(self) -> None:
        """A log written for another design (or seed) would be resumed wrongly: refuse it."""
        for line, row in enumerate(self.log.rows(), start=2):
            trial = self.by_id.get(row["trial"])
            if trial is None:
                continue
            if row["item"] != trial.item or {row["method_a"], row["method_b"]} != {
                trial.method_a,
                trial.method_b,
            }:
                raise StudyError(
                    f"{self.log.path} line {line}: trial {trial.id} was item {row['item']!r} "
                    f"({row['method_a']} vs {row['method_b']}) there but is {trial.item!r} "
                    f"({trial.method_a} vs {trial.method_b}) now; resume with the same design "
                    "and --seed, or start a new --out"
                )

    def left_is_a(self, rater: str, trial: StudyTrial) -> bool:
        """Whether ``method_a`` is shown on the left: a fair coin per rater and trial, fixed
        so a reload shows the same sides; a repeat swaps its original's sides, so a rater
        who always presses the same key fails it."""
        if trial.repeats is not None:
            return not self.left_is_a(rater, self.by_id[trial.repeats])
        return random.Random(f"{self.seed}/{rater}/{trial.id}").random() < 0.5

    def sides(self, rater: str, trial: StudyTrial) -> tuple[str, str]:
        a = trial.method_a
        b = trial.method_b
        return (a, b) if self.left_is_a(rater, trial) else (b, a)

    def progress(self, rater: str) -> tuple[StudyTrial | None, int]:
        """The next unanswered trial (``None`` when done) and how many are answered."""
        answered = self.log.answered(rater)
        done = sum(t.id in answered for t in self.schedule)
        upcoming = next((t for t in self.schedule if t.id not in answered), None)
        return upcoming, done

    def image_url(self, method: str, item: str) -> str:
        return f"/v1/study/image/{self.image_ids[(method, item)]}"

    def next_for(self, rater: str) -> dict[str, object]:
        trial, done = self.progress(rater)
        total = len(self.schedule)
        if trial is None:
            return {"done": True, "answered": done, "total": total}
        left, right = self.sides(rater, trial)
        return {
            "done": False,
            "trial": self.tokens[trial.id],
            "position": done + 1,
            "answered": done,
            "total": total,
            "left": self.image_url(left, trial.item),
            "right": self.image_url(right, trial.item),
        }

    def record(self, rater: str, token: str, choice: str, ms: int) -> Judgment:
        trial = self.by_token.get(token)
        if trial is None:
            raise KeyError(token)
        left, right = self.sides(rater, trial)
        winner = {"left": left, "right": right}.get(choice, "tie")
        judgment = Judgment(
            item=trial.item,
            method_a=trial.method_a,
            method_b=trial.method_b,
            winner=winner,
            rater=rater,
            trial=trial.id,
            left=left,
            ms=ms,
            catch=trial.catch,
        )
        self.log.append(judgment)
        return judgment

    def summary(self) -> dict[str, object]:
        rows = self.log.rows()
        return {
            "trials": len(self.schedule),
            "design_trials": len(self.design),
            "catch_trials": len(self.schedule) - len(self.design),
            "judgments": len(rows),
            "raters": len({r["rater"] for r in rows}),
        }


class JudgmentIn(BaseModel):
    """An answer as the page sends it: the side chosen, never a method name."""

    model_config = ConfigDict(extra="forbid")

    rater: Annotated[str, Field(pattern=RATER_PATTERN)]
    trial: Annotated[str, Field(min_length=1, max_length=64)]
    choice: Literal["left", "right", "tie"]
    ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)]


Rater = Annotated[str, Query(pattern=RATER_PATTERN, description="The rater's id.")]


def _token_check(token: str | None) -> Callable[[Request], bool]:
    """Whether a request carries ``token`` (always, without one), in its bearer header or
    in the page's cookie."""

    def carries(request: Request) -> bool:
        if token is None:
            return True
        given = request.cookies.get(TOKEN_COOKIE, "")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = credentials.strip()
        return hmac.compare_digest(given.encode(), token.encode())

    return carries


def create_study_app(
    design: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    catch_rate: float = 0.1,
    seed: int = 0,
    token: str | None = None,
) -> FastAPI:
    """The study as an ASGI app; raises :class:`StudyError` (or a log error) before serving.

    ``app.state.study`` is the :class:`Study`, for the command line's startup message.
    ``token``: when set, the page and every ``/v1`` endpoint but health need it.
    """
    if token is not None and not token.strip():
        raise StudyError("--token must not be empty")
    study = Study(Path(design), Path(images), Path(out), catch_rate=catch_rate, seed=seed)
    carries = _token_check(token)

    def authorized(request: Request) -> None:
        if not carries(request):
            raise HTTPException(
                401, "this study needs its token: open its link with ?token=... once",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip

    guarded = [Depends(authorized)]

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            study.log.close()

    app = FastAPI(
        title="dkt user study",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.study = study

    def page(name: str, media_type: str) -> FileResponse:
        return FileResponse(STATIC / name, media_type=media_type, headers=_PAGE_HEADERS)

    @app.get("/", include_in_schema=False, response_model=None)
    def index(
        request: Request, given: Annotated[str | None, Query(alias="token")] = None
    ) -> FileResponse | RedirectResponse:
        if token is not None and given is not None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise HTTPException(401, "wrong token")
            # Into a cookie, and out of the address bar (and the browser's history).
            moved = RedirectResponse("/", status_code=303)
            moved.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return moved
        authorized(request)
        return page("study.html", "text/html; charset=utf-8")

    @app.get("/study.js", include_in_schema=False)
    def script() -> FileResponse:
        return page("study.js", "text/javascript; charset=utf-8")

    @app.get("/study.css", include_in_schema=False)
    def style() -> FileResponse:
        return page("study.css", "text/css; charset=utf-8")

    @app.get("/v1/health")
    def health(request: Request) -> dict[str, object]:
        """Open, so a script can poll it; how far the study is, only with the token."""
        return {"status": "ok", **(study.summary() if carries(request) else {})}

    @app.get("/v1/study/next", dependencies=guarded)
    def next_trial(rater: Rater) -> dict[str, object]:
        return study.next_for(rater)

    @app.post("/v1/study/judgment", dependencies=guarded)
    def judgment(body: JudgmentIn) -> dict[str, object]:
        try:
            study.record(body.rater, body.trial, body.choice, body.ms)
        except KeyError:
            raise HTTPException(404, f"no trial {body.trial!r} in this study") from None
        except AlreadyAnsweredError:
            raise HTTPException(409, "this trial is already answered") from None
        except OSError as exc:
            raise HTTPException(503, f"the answer could not be saved ({exc.strerror})") from None
        _, done = study.progress(body.rater)
        return {"recorded": True, "answered": done, "total": len(study.schedule)}

    @app.get("/v1/study/image/{image_id}", dependencies=guarded)
    def image(image_id: str) -> FileResponse:
        path = study.image_files.get(image_id)
        if path is None:
            raise HTTPException(404, "no such image")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private"})

    return app
