"""The map drawn: a picture (PNG, for a paper or a slide) and a self-contained page (HTML
with the map's script inlined, nothing fetched from elsewhere), from a ``CollectionMap``."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from importlib import resources

import numpy as np

from semsearch.documents import Document
from semsearch.overview.collection_map import CollectionMap

#: region colours, in order (the page's map uses the same list, sent with the map)
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#6baed6",
           "#fd8d3c", "#74c476", "#9e9ac8", "#969696", "#9c9ede", "#cedb9c", "#e7ba52",
           "#e7969c", "#de9ed6")
#: points a self-contained page carries at most (a sample beyond: it says so)
PAGE_POINTS = 200_000


def bounds(places: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) holding nearly every point, with a margin."""
    if not len(places):
        return -1.0, -1.0, 1.0, 1.0
    low, high = np.percentile(places, 0.2, axis=0), np.percentile(places, 99.8, axis=0)
    margin = (high - low) * 0.05 + 1e-6
    return (float(low[0] - margin[0]), float(low[1] - margin[1]),
            float(high[0] + margin[0]), float(high[1] + margin[1]))


def picture(found: CollectionMap, width: int = 1600, height: int = 1200) -> bytes:
    """The map as a PNG: each pixel coloured by its papers' regions, darker where there are
    more, the regions' labels on top."""
    from PIL import Image, ImageDraw, ImageFont

    places, regions = found.places, found.point_regions
    x0, y0, x1, y1 = bounds(places)
    column = np.clip(((places[:, 0] - x0) / (x1 - x0) * (width - 1)).astype(int), 0, width - 1)
    row = np.clip(((y1 - places[:, 1]) / (y1 - y0) * (height - 1)).astype(int), 0, height - 1)
    # small collections: each paper a dot of a few pixels; large ones, a pixel each
    radius = int(np.clip(round(6 - 1.2 * np.log10(max(len(places), 1))), 0, 4))
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
               if dx * dx + dy * dy <= radius * radius]
    pixel = np.concatenate([np.clip(row + dy, 0, height - 1) * width
                            + np.clip(column + dx, 0, width - 1) for dy, dx in offsets])
    regions = np.tile(regions, len(offsets))
    colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in COLOURS], float)
    counts = np.bincount(pixel, minlength=width * height).astype(float)
    rgb = np.zeros((width * height, 3))
    for channel in range(3):
        rgb[:, channel] = np.bincount(pixel, weights=colours[regions % len(COLOURS), channel],
                                      minlength=width * height)
    seen = counts > 0
    rgb[seen] /= counts[seen, None]
    strength = np.zeros(width * height)
    strength[seen] = 0.35 + 0.65 * np.log1p(counts[seen]) / np.log1p(counts.max())
    image = 255 - (255 - rgb) * strength[:, None]
    picture = Image.fromarray(image.reshape(height, width, 3).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(12, width // 80))
    for region in found.regions:
        if not region.papers:
            continue
        half = draw.textlength(region.label, font=font) / 2 + 4
        at = (float(np.clip((region.x - x0) / (x1 - x0) * width, half, width - half)),
              float(np.clip((y1 - region.y) / (y1 - y0) * height, font.size, height - font.size)))
        draw.text(at, region.label, fill=(20, 20, 20), font=font, anchor="mm",
                  stroke_width=3, stroke_fill=(255, 255, 255))
    written = io.BytesIO()
    picture.save(written, format="PNG")
    return written.getvalue()


def page(found: CollectionMap, name: str,
         papers_of: Callable[[list[str]], dict[str, Document]]) -> str:
    """The map as one self-contained HTML page: pan, zoom, hover for a title, click to open
    (``papers_of`` gives the papers of ids, for their titles and links)."""
    places, regions = found.places, found.point_regions
    shown = np.arange(len(places))
    if len(shown) > PAGE_POINTS:
        shown = np.sort(np.random.default_rng(0).choice(len(places), PAGE_POINTS,
                                                        replace=False))
    ids = [found.ids[i] for i in shown]
    papers = papers_of(ids)
    data = {"name": name, "count": len(places), "shown": int(len(shown)),
            "bounds": bounds(places), "colours": list(COLOURS),
            "regions": [region.to_json() for region in found.regions],
            "xy": base64.b64encode(places[shown].astype("<f4").tobytes()).decode(),
            "region": base64.b64encode(regions[shown].astype(np.uint8).tobytes()).decode(),
            "ids": ids, "titles": [papers[i].title if i in papers else "" for i in ids],
            "links": [(papers[i].link or "") if i in papers else "" for i in ids]}
    script = resources.files("semsearch.server").joinpath("page/map.js").read_text("utf-8")
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    title = html.escape(f"Map of {name}")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{title}</title><style>html,body{{margin:0;height:100%;"
            f"font:14px system-ui,sans-serif}}#map{{position:absolute;inset:0}}"
            f"</style></head><body><div id=\"map\"></div>"
            f"<script>{script}</script><script>"
            f"SemsearchMap.standalone(document.getElementById('map'), {payload});"
            f"</script></body></html>\n")
