"""The map's routes: the map's regions and bounds, every point's place and region as one
binary answer (a million points are 9 MB, read by the page straight into typed arrays), one
point's paper (asked on hover), and where given papers lie (to highlight them)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI
from fastapi import Path as PathPart
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from semsearch.errors import UnknownPaper
from semsearch.overview.drawing import COLOURS, bounds
from semsearch.server.served import ServedIndex

#: papers located at once, and an id's length: together they fit in a request body, even
#: with every character escaped
MAX_LOCATED, MAX_ID_CHARS = 50, 200


class RegionBody(BaseModel):
    number: int
    label: str
    words: list[str]
    central: dict[str, str] = Field(description="its most central paper: id and title")
    papers: int
    x: float
    y: float


class MapBody(BaseModel):
    count: int = Field(description="points, in the order of /api/map/points")
    bounds: list[float] = Field(description="x0, y0, x1, y1 holding nearly every point")
    colours: list[str] = Field(description="each region's colour, by number")
    regions: list[RegionBody]
    fitted: str
    fitted_papers: int
    placed_since: int


class PointBody(BaseModel):
    id: str
    title: str
    link: str | None


class Locating(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    ids: Annotated[list[Annotated[str, StringConstraints(min_length=1,
                                                         max_length=MAX_ID_CHARS)]],
                   Field(max_length=MAX_LOCATED)]


class Located(BaseModel):
    points: list[int] = Field(description="the papers' points (those on the map)")


def add_map_routes(app: FastAPI, served: ServedIndex, errors: dict, unknown: dict) -> None:
    @app.get("/api/map", response_model=MapBody, responses=errors,
             summary="The map of the collection: regions, bounds, colours")
    def described() -> dict[str, Any]:
        found = served.map()
        return {"count": len(found.ids), "bounds": list(bounds(found.places)),
                "colours": list(COLOURS), "regions": [r.to_json() for r in found.regions],
                "fitted": found.fitted, "fitted_papers": found.fitted_papers,
                "placed_since": found.placed_since}

    @app.get("/api/map/points", responses={**errors, 200: {
                 "content": {"application/octet-stream": {}},
                 "description": "x, y of every point (float32 pairs, little-endian), then "
                                "each point's region (one byte each)"}},
             response_class=Response, summary="Every point of the map, as binary")
    def points() -> Response:
        found = served.map()
        body = found.places.astype("<f4").tobytes() + \
            np.asarray(found.point_regions, dtype=np.uint8).tobytes()
        return Response(body, media_type="application/octet-stream")

    @app.get("/api/map/points/{number}", response_model=PointBody,
             responses={**errors, **unknown}, summary="The paper of one point")
    def point(number: Annotated[int, PathPart(ge=0)]) -> dict[str, Any]:
        found = served.map()
        if number >= len(found.ids):
            raise UnknownPaper(f"the map has {len(found.ids)} points; no point {number}")
        with served.engine() as engine:
            paper = engine.get(found.ids[number])
        return {"id": paper.id, "title": paper.title, "link": paper.link}

    @app.post("/api/map/locate", response_model=Located, responses=errors,
              summary="Where papers lie on the map (to highlight them)")
    def locate(request: Annotated[Locating, Body()]) -> dict[str, Any]:
        return {"points": served.map().positions_of(request.ids)}
