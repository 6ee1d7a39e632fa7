"""The reader's routes: tags (read and written), recommendations for them, the inbox, papers
marked read. Writes are accepted as every request is (loopback host names, or the token; see
``guard``), and only as JSON, which a page on another site cannot send here without asking
first (and it is never let)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI, Query
from fastapi import Path as PathPart
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from semsearch.server.served import ServedIndex

MAX_TAG_CHARS = 200
MAX_PAPERS = 200
MAX_RECOMMENDED = 100

TagName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG_CHARS)]
PaperName = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class TagBody(BaseModel):
    name: str
    papers: int = Field(description="papers marked for the tag")
    against: int = Field(description="papers marked against it")
    changed: str
    missing: list[str] = Field(description="its papers no longer in the index (kept)")


class TagList(BaseModel):
    tags: list[TagBody]


class MarkBody(BaseModel):
    tag: str
    id: str
    verdict: str
    title: str
    at: str
    in_index: bool


class MarkList(BaseModel):
    papers: list[MarkBody]


class Tagging(BaseModel):
    """Papers (ids, titles, short names, citation keys) to mark in a tag, for it or against."""

    model_config = ConfigDict(strict=True, extra="forbid")
    papers: Annotated[list[PaperName], Field(min_length=1, max_length=MAX_PAPERS)]
    against: bool = False


class Untagging(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    papers: Annotated[list[PaperName], Field(min_length=1, max_length=MAX_PAPERS)]


class TagChangeBody(BaseModel):
    tag: str
    papers: list[str]
    changed: int


class Seeing(BaseModel):
    """Papers to mark read (seen): recommendations and the inbox leave them out."""

    model_config = ConfigDict(strict=True, extra="forbid")
    papers: Annotated[list[PaperName], Field(min_length=1, max_length=MAX_PAPERS)]


class SeenBody(BaseModel):
    seen: int


def add_reader_routes(app: FastAPI, served: ServedIndex, errors: dict, unknown: dict,
                      results_model, results, inbox_model) -> None:
    """The reader's routes, beside the search routes (whose results they share)."""

    @app.get("/api/tags", response_model=TagList, responses=errors,
             summary="The reader's tags, with their counts")
    def tags() -> dict[str, Any]:
        with served.engine() as engine:
            return {"tags": [tag.to_json() for tag in engine.tags()]}

    @app.get("/api/tags/{name}", response_model=MarkList, responses=errors,
             summary="The papers of one tag, for it and against it")
    def tag_papers(name: Annotated[str, PathPart(max_length=MAX_TAG_CHARS)]) -> dict[str, Any]:
        with served.engine() as engine:
            marks = engine.reader.marks([name])
            present = engine.papers([mark.paper for mark in marks])
        return {"papers": [{"tag": m.tag, "id": m.paper, "verdict": m.verdict, "title": m.title,
                            "at": m.at, "in_index": m.paper in present} for m in marks]}

    @app.post("/api/tags/{name}", response_model=TagChangeBody, responses={**errors, **unknown},
              summary="Mark papers in a tag (made if new), for it or against it")
    def tag(name: Annotated[str, PathPart(max_length=MAX_TAG_CHARS)],
            request: Annotated[Tagging, Body()]) -> dict[str, Any]:
        with served.engine() as engine:
            change = engine.tag(request.papers, name, against=request.against)
        return {"tag": change.tag, "papers": list(change.papers), "changed": change.changed}

    @app.post("/api/tags/{name}/untag", response_model=TagChangeBody,
              responses={**errors, **unknown}, summary="Take papers out of a tag")
    def untag(name: Annotated[str, PathPart(max_length=MAX_TAG_CHARS)],
              request: Annotated[Untagging, Body()]) -> dict[str, Any]:
        with served.engine() as engine:
            change = engine.reader.untag(request.papers, name)
        return {"tag": change.tag, "papers": list(change.papers), "changed": change.changed}

    @app.get("/api/recommend", response_model=results_model, responses=errors,
             summary="Papers ranked for the reader's tags, each with its reason")
    def recommend(tag: Annotated[list[TagName], Query(max_length=50)] = [],
                  k: Annotated[int, Query(ge=1, le=MAX_RECOMMENDED)] = 10,
                  since: Annotated[str | None, Query(max_length=40)] = None):
        with served.engine() as engine:
            return results(engine.recommend(tag or None, k=k, since=since))

    @app.get("/api/inbox", response_model=inbox_model, responses=errors,
             summary="The papers new since the inbox was last read, ranked for the tags")
    def inbox(k: Annotated[int, Query(ge=1, le=MAX_RECOMMENDED)] = 20,
              since: Annotated[str | None, Query(max_length=40)] = None,
              peek: bool = True) -> dict[str, Any]:
        """Looks without marking anything seen unless ``peek=false``: the page marks a paper
        read when the reader says so (POST /api/seen)."""
        with served.engine() as engine:
            return engine.inbox(since=since, k=k, peek=peek).to_json()

    @app.post("/api/seen", response_model=SeenBody, responses={**errors, **unknown},
              summary="Mark papers read: recommendations and the inbox leave them out")
    def seen(request: Annotated[Seeing, Body()]) -> dict[str, Any]:
        with served.engine() as engine:
            return {"seen": engine.reader.see(request.papers)}
