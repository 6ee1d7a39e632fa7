// The map of a collection on a canvas: every paper a point coloured by its region, region
// labels, pan (drag) and zoom (wheel, double click), hover for a title, click to open, and
// papers highlighted (search results, the inbox, a tag). Points are drawn into one pixel
// buffer, darker where more papers lie, so a million draw in a frame. Used by the page (data
// from the server's /api/map) and by `semsearch map --output map.html` (data inlined).
"use strict";

const SemsearchMap = (() => {
  const HOVER_PX = 8;
  const GRID = 256;

  function decode(base64, Type) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new Type(bytes.buffer);
  }

  function rgb(hex) {
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }

  // data: {bounds, colours, regions, xy (Float32Array, x y pairs), region (Uint8Array)}
  // source: {describe(i) -> Promise<{id, title, link}>, open(i)}
  function create(container, data, source) {
    const canvas = document.createElement("canvas");
    const tip = document.createElement("div");
    canvas.className = "map-canvas";
    canvas.setAttribute("aria-label", "Map of the collection");
    canvas.tabIndex = 0;
    tip.className = "map-tip";
    tip.hidden = true;
    Object.assign(canvas.style, { width: "100%", height: "100%", display: "block",
                                  cursor: "grab", touchAction: "none" });
    Object.assign(tip.style, { position: "absolute", pointerEvents: "none", maxWidth: "24rem",
                               background: "#fff", border: "1px solid #999", padding: "2px 6px",
                               borderRadius: "4px", font: "13px system-ui, sans-serif" });
    if (getComputedStyle(container).position === "static") container.style.position = "relative";
    container.append(canvas, tip);
    const count = data.region.length;
    const dotRadius = Math.max(0, Math.min(3, Math.round(5 - Math.log10(Math.max(count, 1)))));
    const colours = data.colours.map(rgb);
    // each colour as one little-endian RGBA word (alpha added per pixel), and the alpha of a
    // pixel by how many papers it holds: darker where there are more
    const packed = Uint32Array.from(colours, ([r, g, b]) => r | (g << 8) | (b << 16));
    const alphaOf = Uint8Array.from({ length: 256 },
                                    (_, n) => Math.min(255, 110 + 45 * Math.log2(1 + n)));
    let lastImage = null, shift = { x: 0, y: 0 };
    const [x0, y0, x1, y1] = data.bounds;
    const view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: 1 };
    let highlighted = new Int32Array(0), marked = new Int32Array(0);  // yellow, blue
    let width = 0, height = 0, ratio = 1, frame = null, drawnIn = 0;

    // a grid over the bounds: the points of each cell, for hover
    const cells = new Map();
    for (let i = 0; i < count; i++) {
      const key = cellOf(data.xy[2 * i], data.xy[2 * i + 1]);
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(i);
    }
    function cellOf(x, y) {
      const cx = Math.min(GRID - 1, Math.max(0, Math.floor((x - x0) / (x1 - x0) * GRID)));
      const cy = Math.min(GRID - 1, Math.max(0, Math.floor((y - y0) / (y1 - y0) * GRID)));
      return cy * GRID + cx;
    }

    function fit() {
      const rect = canvas.getBoundingClientRect();
      ratio = window.devicePixelRatio || 1;
      width = Math.max(1, Math.round(rect.width * ratio));
      height = Math.max(1, Math.round(rect.height * ratio));
      canvas.width = width; canvas.height = height;
      if (view.scale === 1) view.scale = Math.min(width / (x1 - x0), height / (y1 - y0));
    }
    const toX = (x) => (x - view.cx) * view.scale + width / 2;
    const toY = (y) => height / 2 - (y - view.cy) * view.scale;

    function draw() {
      frame = null;
      const started = performance.now();
      const context = canvas.getContext("2d");
      const image = context.createImageData(width, height);
      const words = new Uint32Array(image.data.buffer);  // one RGBA pixel a word
      const counts = new Uint16Array(width * height);
      // a dot of a few pixels where papers are few or the view is zoomed far in
      const zoomed = view.scale / Math.min(width / (x1 - x0), height / (y1 - y0));
      const big = Math.min(4, dotRadius + (zoomed > 8 ? 1 : 0) + (zoomed > 64 ? 1 : 0));
      const scale = view.scale, left = width / 2 - view.cx * scale + 0.5;
      const top = height / 2 + view.cy * scale + 0.5;
      const xy = data.xy, region = data.region, shades = packed.length;
      for (let i = 0; i < count; i++) {
        const px = Math.floor(xy[2 * i] * scale + left);
        const py = Math.floor(top - xy[2 * i + 1] * scale);
        if (px < big || py < big || px >= width - big || py >= height - big) continue;
        const colour = packed[region[i] % shades];
        if (big === 0) {
          const at = py * width + px;
          counts[at]++;
          words[at] = colour;
          continue;
        }
        for (let dy = -big; dy <= big; dy++) {
          for (let dx = -big; dx <= big; dx++) {
            const at = (py + dy) * width + px + dx;
            counts[at]++;
            words[at] = colour;
          }
        }
      }
      for (let at = 0; at < counts.length; at++) {
        const seen = counts[at];
        if (seen) words[at] = (words[at] & 0xffffff) | (alphaOf[seen < 256 ? seen : 255] << 24);
      }
      lastImage = image;
      shift = { x: 0, y: 0 };
      context.putImageData(image, 0, 0);
      context.lineWidth = 1.5 * ratio;
      for (const [points, fill] of [[marked, "#3b82f6"], [highlighted, "#ffd400"]]) {
        for (const i of points) {
          context.beginPath();
          context.arc(toX(data.xy[2 * i]), toY(data.xy[2 * i + 1]), 5 * ratio, 0, 2 * Math.PI);
          context.fillStyle = fill; context.fill();
          context.strokeStyle = "#000"; context.stroke();
        }
      }
      context.font = `600 ${13 * ratio}px system-ui, sans-serif`;
      context.textAlign = "center";
      context.lineWidth = 4 * ratio;
      context.strokeStyle = "rgba(255,255,255,0.9)";
      context.fillStyle = "#111";
      for (const region of data.regions) {
        if (!region.papers) continue;
        const x = toX(region.x), y = toY(region.y);
        context.strokeText(region.label, x, y);
        context.fillText(region.label, x, y);
      }
      drawnIn = performance.now() - started;
      canvas.dataset.drawnMs = drawnIn.toFixed(1);
      canvas.dataset.frames = String(Number(canvas.dataset.frames || 0) + 1);
    }
    function redraw() { if (frame === null) frame = requestAnimationFrame(draw); }

    // while dragging: the last picture moved (a full drawing follows on release)
    function drawMoved() {
      frame = null;
      if (!lastImage) { draw(); return; }
      const started = performance.now();
      const context = canvas.getContext("2d");
      context.clearRect(0, 0, width, height);
      context.putImageData(lastImage, Math.round(shift.x), Math.round(shift.y));
      canvas.dataset.movedMs = (performance.now() - started).toFixed(1);
    }
    function moved() { if (frame === null) frame = requestAnimationFrame(drawMoved); }

    function nearest(clientX, clientY) {
      const rect = canvas.getBoundingClientRect();
      const px = (clientX - rect.left) * ratio, py = (clientY - rect.top) * ratio;
      const x = view.cx + (px - width / 2) / view.scale;
      const y = view.cy - (py - height / 2) / view.scale;
      const reach = HOVER_PX * ratio / view.scale;
      const [a, b] = [cellOf(x - reach, y - reach), cellOf(x + reach, y + reach)];
      let best = -1, bestDistance = (HOVER_PX * ratio) ** 2;
      for (let cy = Math.floor(a / GRID); cy <= Math.floor(b / GRID); cy++) {
        for (let cx = a % GRID; cx <= b % GRID; cx++) {
          for (const i of cells.get(cy * GRID + cx) || []) {
            const d = (toX(data.xy[2 * i]) - px) ** 2 + (toY(data.xy[2 * i + 1]) - py) ** 2;
            if (d < bestDistance) { best = i; bestDistance = d; }
          }
        }
      }
      return best;
    }

    let dragging = null, hovered = -1;
    canvas.addEventListener("pointerdown", (event) => {
      dragging = { x: event.clientX, y: event.clientY, moved: false };
      canvas.setPointerCapture(event.pointerId);
      canvas.style.cursor = "grabbing";
    });
    canvas.addEventListener("pointermove", async (event) => {
      if (dragging) {
        const dx = event.clientX - dragging.x, dy = event.clientY - dragging.y;
        if (Math.abs(dx) + Math.abs(dy) > 2) dragging.moved = true;
        view.cx -= dx * ratio / view.scale; view.cy += dy * ratio / view.scale;
        shift.x += dx * ratio; shift.y += dy * ratio;
        dragging.x = event.clientX; dragging.y = event.clientY;
        tip.hidden = true;
        moved();
        return;
      }
      const found = nearest(event.clientX, event.clientY);
      hovered = found;
      if (found < 0) { tip.hidden = true; canvas.style.cursor = "grab"; return; }
      canvas.style.cursor = "pointer";
      const paper = await source.describe(found);
      if (hovered !== found) return;
      const rect = container.getBoundingClientRect();
      tip.textContent = paper.title || paper.id;
      tip.style.left = `${event.clientX - rect.left + 12}px`;
      tip.style.top = `${event.clientY - rect.top + 12}px`;
      tip.hidden = false;
    });
    canvas.addEventListener("pointerup", (event) => {
      const click = dragging && !dragging.moved;
      if (dragging && dragging.moved) {  // released: the full drawing
        if (frame !== null) cancelAnimationFrame(frame);
        frame = null;
        redraw();
      }
      dragging = null;
      canvas.style.cursor = "grab";
      if (click) {
        const found = nearest(event.clientX, event.clientY);
        if (found >= 0) source.open(found);
      }
    });
    canvas.addEventListener("pointerleave", () => { tip.hidden = true; hovered = -1; });
    function zoom(factor, clientX, clientY) {
      const rect = canvas.getBoundingClientRect();
      const px = (clientX - rect.left) * ratio, py = (clientY - rect.top) * ratio;
      const x = view.cx + (px - width / 2) / view.scale;
      const y = view.cy - (py - height / 2) / view.scale;
      view.scale *= factor;
      view.cx = x - (px - width / 2) / view.scale;
      view.cy = y + (py - height / 2) / view.scale;
      redraw();
    }
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      zoom(Math.exp(-event.deltaY / 400), event.clientX, event.clientY);
    }, { passive: false });
    canvas.addEventListener("dblclick", (event) => zoom(2, event.clientX, event.clientY));
    canvas.addEventListener("keydown", (event) => {
      const rect = canvas.getBoundingClientRect();
      const middle = [rect.left + rect.width / 2, rect.top + rect.height / 2];
      if (event.key === "+" || event.key === "=") zoom(1.5, ...middle);
      else if (event.key === "-") zoom(1 / 1.5, ...middle);
    });
    new ResizeObserver(() => { fit(); redraw(); }).observe(container);
    fit();
    draw();

    return {
      highlight(indexes, others = []) {
        highlighted = Int32Array.from(indexes); marked = Int32Array.from(others); redraw();
      },
      // move the view by (dx, dy) pixels as a drag does: the moved picture (its time in
      // ms), then the full drawing (its time)
      pan(dx, dy) {
        view.cx -= dx * ratio / view.scale; view.cy += dy * ratio / view.scale;
        shift.x += dx * ratio; shift.y += dy * ratio;
        drawMoved();
        const movedMs = Number(canvas.dataset.movedMs || 0);
        draw();
        return { movedMs, drawnMs: drawnIn };
      },
      get drawnMs() { return drawnIn; },
      get highlightedCount() { return highlighted.length; },
      // where point i is on the screen (client coordinates), to point at it
      pointAt(i) {
        const rect = canvas.getBoundingClientRect();
        return { x: rect.left + toX(data.xy[2 * i]) / ratio,
                 y: rect.top + toY(data.xy[2 * i + 1]) / ratio };
      },
    };
  }

  // the map inlined in a page of its own (`semsearch map --output map.html`)
  function standalone(container, data) {
    const map = create(container, { ...data, xy: decode(data.xy, Float32Array),
                                    region: decode(data.region, Uint8Array) }, {
      describe: async (i) => ({ id: data.ids[i], title: data.titles[i] }),
      open: (i) => { if (data.links[i]) window.open(data.links[i], "_blank", "noopener"); },
    });
    const note = document.createElement("p");
    note.textContent = `${data.name}: ${data.count.toLocaleString()} papers` +
      (data.shown < data.count ? `, ${data.shown.toLocaleString()} of them drawn` : "") +
      ". Drag to move, wheel or double click to zoom, click a paper to open it.";
    Object.assign(note.style, { position: "absolute", left: "8px", bottom: "0",
                                background: "rgba(255,255,255,.85)", margin: "0",
                                padding: "2px 6px" });
    container.append(note);
    return map;
  }

  // the map served (the page's Map view): the layout as binary, titles asked on hover
  async function served(container, onOpen) {
    const meta = await (await fetch("/api/map")).json();
    if (meta.error) throw new Error(meta.error);
    const bytes = await (await fetch("/api/map/points")).arrayBuffer();
    const xy = new Float32Array(bytes, 0, 2 * meta.count);
    const region = new Uint8Array(bytes, 8 * meta.count, meta.count);
    const known = new Map();
    const describe = async (i) => {
      if (!known.has(i)) known.set(i, fetch(`/api/map/points/${i}`).then((r) => r.json()));
      return known.get(i);
    };
    const map = create(container, { ...meta, xy, region },
                       { describe, open: async (i) => onOpen((await describe(i)).id) });
    map.meta = meta;
    const located = async (ids) => {
      if (!ids.length) return [];
      const response = await fetch("/api/map/locate", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ ids: ids.slice(0, 50) }) });
      return (await response.json()).points || [];
    };
    // papers shown (yellow) and papers of the tag in use (blue)
    map.locate = async (ids, others = []) => {
      const [shown, marked] = await Promise.all([located(ids), located(others)]);
      map.highlight(shown, marked);
    };
    return map;
  }

  return { create, standalone, served };
})();
