"""The HTTP API and the page, over the library's public calls: search, like, one paper, info
and facets, shaped like the command line's ``--json`` rows.

Every error is JSON with a message (``{"error": ...}``), never a traceback: 400 for a query
that cannot be answered as asked, 404 for an unknown paper or address, 401 without the token,
413 for a body too large, 422 for a parameter out of its bounds (with FastAPI's ``detail``).
Nothing a request says names a file: the page's files are a fixed list inside the package.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request
from fastapi import Path as PathPart
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.exceptions import HTTPException

from semsearch import __version__
from semsearch.engine import (DEFAULT_LIKE_METHOD, DEFAULT_MODE, DUPLICATE_THRESHOLD,
                              FACET_KINDS, HYBRID_SCALE, LIKE_METHODS, MODES, Engine, IndexInfo)
from semsearch.errors import SemsearchError, StoreError, UnknownPaper
from semsearch.filters import FLAGS, FacetValue, Filter
from semsearch.server.guard import Guard
from semsearch.server.map_routes import add_map_routes
from semsearch.server.reader_routes import add_reader_routes
from semsearch.server.served import ServedIndex

#: bounds on what a request may ask: a pasted abstract fits in a query; a page of results
MAX_QUERY_CHARS = 10_000
MAX_RESULTS = 100
#: results explained at most (each embeds some sentences of its abstract)
MAX_EXPLAINED = 20
MAX_PAPERS = 50           # liked or not liked, each
MAX_NAME_CHARS = 500      # a paper's id or title, a filter value
MAX_FILTER_VALUES = 20    # of each filter kind
MAX_FACETS = 1_000
MAX_BODY_BYTES = 64 * 1024
#: the page's files, by the address they are served at
PAGE = {"/": ("index.html", "text/html; charset=utf-8"),
        "/page.js": ("page.js", "text/javascript; charset=utf-8"),
        "/page.css": ("page.css", "text/css; charset=utf-8"),
        "/map.js": ("map.js", "text/javascript; charset=utf-8")}
#: Swagger UI's files, shipped by the swagger-ui-bundle package: /docs works offline
DOCS_FILES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
              "swagger-ui.css": "text/css; charset=utf-8"}

Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]
FilterValues = Annotated[list[Name], Field(max_length=MAX_FILTER_VALUES)]
Mode = Literal[MODES]  # type: ignore[valid-type]
Method = Literal[LIKE_METHODS]  # type: ignore[valid-type]


class ErrorBody(BaseModel):
    error: str


class ExplanationBody(BaseModel):
    sentence: str
    sentence_score: float
    matched_terms: list[str]


class Paper(BaseModel):
    """A paper as ``semsearch show --json`` prints it: whatever the source knew about it
    (year, authors, categories, tags, doi, url) besides these fields."""

    model_config = ConfigDict(extra="allow")
    id: str
    title: str
    link: str | None
    abstract: str


class ClosestBody(BaseModel):
    id: str
    title: str


class ReasonBody(BaseModel):
    """Why a paper is recommended: its tag, and the tag's paper it is closest to."""

    tag: str
    closest: ClosestBody
    similarity: float
    folded: list[str] = Field(description="copies of this paper (another version or source) "
                                          "folded into it")


class Row(Paper):
    """A result as ``semsearch search --json`` prints it."""

    rank: int
    score: float = Field(description="what the results are ordered by: in hybrid search "
                         + HYBRID_SCALE + "; in dense search the cosine; in lexical search "
                         "the BM25 score")
    cosine: float | None = Field(None, description="cosine similarity of the query and the "
                                 "paper by the model (absent in lexical search)")
    explain: ExplanationBody | None = None
    reason: ReasonBody | None = None


class Results(BaseModel):
    results: list[Row]


class InboxBody(Results):
    """The inbox: new papers ranked for the tags (each with its reason)."""

    since: str
    new: int = Field(description="papers new since then")
    shown: int
    ranked_for_tags: bool
    folded: dict[str, str] = Field(description="paper -> the paper it is another copy of")


class DuplicateBody(BaseModel):
    ids: list[str] = Field(description="the paper that came first, then its copies")
    titles: list[str]
    similarity: float = Field(description="the lowest cosine of a pair that joined them")


class DuplicateList(BaseModel):
    groups: list[DuplicateBody]


class Filters(BaseModel):
    """Only papers that pass: a year or range, any of some categories, authors, tags (as
    ``semsearch search --year --category --author --tag`` take them)."""

    year: Annotated[str | None, Field(max_length=20,
                                      description="2023, 2021..2024, 2020.., ..2019")] = None
    category: FilterValues = []
    author: FilterValues = []
    tag: FilterValues = []
    explain: bool = False

    def where(self) -> Filter | None:
        return Filter.parse(self.year, tuple(self.category), tuple(self.author),
                            tuple(self.tag)) or None

    @model_validator(mode="after")
    def explained_in_bounds(self):
        if self.explain and getattr(self, "k", 0) > MAX_EXPLAINED:
            raise ValueError(f"explain=true takes k up to {MAX_EXPLAINED}")
        return self


class Asked(BaseModel):
    q: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                            description="words, a question, or a pasted abstract")]
    k: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 10
    mode: Mode = DEFAULT_MODE


class SearchRequest(Filters, Asked):  # in this order, the query comes first in the docs
    """A query, and the filters the papers must pass."""


class SearchBody(SearchRequest):
    """A query sent as JSON: its values of their own JSON types (in an address, every value is
    text and is read as the type it stands for)."""

    model_config = ConfigDict(strict=True, extra="forbid")


class LikeRequest(Filters):
    """Papers like ``ids`` and unlike ``not`` (ids or titles of papers in the index)."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)
    ids: Annotated[list[Name], Field(min_length=1, max_length=MAX_PAPERS)]
    unlike: Annotated[list[Name], Field(max_length=MAX_PAPERS, alias="not")] = []
    k: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 10
    mode: Mode = DEFAULT_MODE
    method: Method = DEFAULT_LIKE_METHOD


ERRORS = {status: {"model": ErrorBody, "description": description} for status, description in
          ((400, "a query that cannot be answered as asked"), (401, "the token is missing"),
           (403, "addressed to a name other than localhost, without a token"),
           (408, "the body did not arrive in time"), (413, "the body is too large"),
           (415, "a body that is not JSON"))}
UNKNOWN = {404: {"model": ErrorBody, "description": "no such paper"}}


def create_app(index: str | Path | Engine | None = None, *, token: str | None = None,
               warm_up: bool = False, any_host: bool = False,
               workers: int | None = None) -> Guard:
    """The application for an index (a name or path, or an open Engine). With ``token``, every
    request must carry it; without, only requests addressed to a loopback name are answered,
    unless ``any_host`` (a server opened to other machines on purpose). ``warm_up`` opens the
    index and starts the model now rather than at the first request. ``workers``: requests
    answered side by side (see ``served``)."""
    engine = index if isinstance(index, Engine) else Engine.open(index)
    served = ServedIndex(engine, workers)
    if warm_up:
        served.warm_up()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        served.close()

    app = FastAPI(title="semsearch", version=__version__, docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  description="Semantic search over scientific paper abstracts.")
    _answer_errors_as_json(app, engine.path)
    _serve_page_and_docs(app)

    def answer(request: SearchRequest) -> Response:
        with served.engine() as engine:
            hits = engine.search(request.q, request.k, mode=request.mode,
                                 where=request.where(), explain=request.explain)
        return _results(hits)

    @app.get("/api/search", response_model=Results, responses=ERRORS,
             summary="Papers that best answer a query")
    def search(request: Annotated[SearchRequest, Query()]) -> Response:
        return answer(request)

    @app.post("/api/search", response_model=Results, responses=ERRORS,
              summary="Papers that best answer a query too long for an address")
    def search_posted(request: Annotated[SearchBody, Body()]) -> Response:
        return answer(request)

    @app.post("/api/like", response_model=Results, responses={**ERRORS, **UNKNOWN},
              summary="Papers like some papers and unlike others")
    def like(request: Annotated[LikeRequest, Body()]) -> Response:
        with served.engine() as engine:
            hits = engine.more_like_these(request.ids, request.unlike, k=request.k,
                                          method=request.method, mode=request.mode,
                                          where=request.where(), explain=request.explain)
        return _results(hits)

    @app.get("/api/papers/{paper_id:path}", response_model=Paper,
             responses={**ERRORS, **UNKNOWN},
             summary="One paper, with its abstract")
    def paper(paper_id: Annotated[str, PathPart(max_length=MAX_NAME_CHARS)]) -> dict[str, Any]:
        with served.engine() as engine:
            return engine.get(paper_id).to_json()

    @app.get("/api/info", response_model=IndexInfo, responses=ERRORS,
             summary="What the index holds")
    def info() -> IndexInfo:
        with served.engine() as engine:
            return engine.info()

    add_reader_routes(app, served, ERRORS, UNKNOWN, Results, _results, InboxBody)
    add_map_routes(app, served, ERRORS, UNKNOWN)

    @app.get("/api/facets", response_model=dict[str, list[FacetValue]], responses=ERRORS,
             summary="What papers can be filtered by, with how many papers have each value")
    def facets(kind: Annotated[list[Literal[tuple(FLAGS)]],  # type: ignore[valid-type]
                               Query(max_length=len(FLAGS))] = list(FACET_KINDS),
               limit: Annotated[int, Query(ge=1, le=MAX_FACETS)] = 100
               ) -> dict[str, list[FacetValue]]:
        return served.facets(list(dict.fromkeys(kind)), limit)

    @app.get("/api/duplicates", response_model=DuplicateList, responses=ERRORS,
             summary="Groups of papers that are one paper under different ids")
    def duplicates(threshold: Annotated[float, Query(gt=0, le=1)] = DUPLICATE_THRESHOLD
                   ) -> dict[str, Any]:
        return {"groups": [group.to_json() for group in served.duplicates(threshold)]}

    return Guard(app, token, MAX_BODY_BYTES, any_host=any_host)


def _results(hits) -> Response:
    """Rows as the CLI's --json prints them, encoded at once: the description above says
    their shape (``Results``), and the fuzzing test holds every answer to it."""
    import orjson

    return Response(orjson.dumps({"results": [hit.to_json() for hit in hits]}),
                    media_type="application/json")


def _answer_errors_as_json(app: FastAPI, index: Path) -> None:
    # where the index lives on this machine is not the client's business: messages name it
    # by its folder's name
    places = sorted({str(index), str(index.absolute()), str(index.resolve())}, key=len,
                    reverse=True)

    @app.exception_handler(SemsearchError)
    def semsearch_error(request: Request, error: SemsearchError) -> JSONResponse:
        status = 404 if isinstance(error, UnknownPaper) else \
            503 if isinstance(error, StoreError) else 400
        message = str(error)
        for place in places:
            message = message.replace(place, index.name)
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = jsonable_encoder(error.errors(), exclude={"input", "ctx", "url"})
        said = "; ".join(f"{'.'.join(str(p) for p in problem['loc'][1:]) or 'request'}: "
                         f"{problem['msg']}" for problem in problems[:3])
        return JSONResponse({"error": said, "detail": problems}, status_code=422)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = f"nothing at {request.url.path}" if error.status_code == 404 else \
            str(error.detail)
        return JSONResponse({"error": message}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    def unexpected(request: Request, error: Exception) -> JSONResponse:
        # the server logs the traceback; the client gets a message
        return JSONResponse({"error": f"the server failed on this request "
                                      f"({type(error).__name__}); its log says more"},
                            status_code=500)


def _serve_page_and_docs(app: FastAPI) -> None:
    page = resources.files("semsearch.server") / "page"
    for address, (name, media_type) in PAGE.items():
        def serve(name=name, media_type=media_type) -> Response:
            return Response((page / name).read_bytes(), media_type=media_type,
                            headers={"cache-control": "no-cache"})
        app.add_api_route(address, serve, methods=["GET"], include_in_schema=False)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="semsearch API",
                                   swagger_js_url="/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/swagger-ui.css",
                                   swagger_favicon_url="data:,")

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_file(name: str) -> Response:
        if name not in DOCS_FILES:
            raise HTTPException(404)
        from swagger_ui_bundle import swagger_ui_path

        return Response((Path(swagger_ui_path) / name).read_bytes(), media_type=DOCS_FILES[name])
