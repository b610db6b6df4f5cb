"""A hand-written SVG of a pinning sweep: two panels of grouped horizontal bars side by
side, throughput (requests/s) on the left and p99 latency (µs) on the right, one bar group
per configuration (labelled on the left with its shard and load CPUs), one bar per cell,
one color per pipeline depth, a legend, the value at the end of every bar. Readable
without the CSV. Standard library only."""

import math
from xml.sax.saxutils import escape, quoteattr

PALETTE = ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB"]
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def nice_axis(vmax, ticks=5):
    """(axis maximum, tick step) for values up to vmax: steps of 1, 2, 2.5 or 5 x 10^k,
    with room past the largest value for its label."""
    if not vmax or vmax <= 0 or not math.isfinite(vmax):
        return 1.0, 0.25
    raw = vmax * 1.15 / ticks
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return math.ceil(vmax * 1.15 / step) * step, step


def si(v):
    """1234567 -> '1.23M', 45600 -> '45.6k', 12 -> '12'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            s = f"{v / div:.3g}"
            return s + suffix
    return f"{v:.3g}" if v != int(v) else str(int(v))


def micros(v):
    """Microseconds with thousands separators; one decimal below 10."""
    if v == 0:
        return "0"
    return f"{v:.1f}" if v < 10 else f"{v:,.0f}"


def _f(v):
    return f"{v:.1f}"


def _text(x, y, s, size=12, anchor="start", weight="normal", fill="#222", extra=""):
    return (f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}"{extra}>{escape(s)}</text>')


def _value(row, key):
    v = row.get(key)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def group_note(row):
    """The second label line of a group: where the shards and the load ran."""
    smap = row.get("shard_map") or ""
    cpus = [p.split("/")[0].split(":", 1)[-1].replace("cpu=", "") for p in smap.split()]
    load = f"load CPUs {row.get('load_cpus') or '?'}"
    if cpus and all(c == "unpinned" for c in cpus):
        return f"shards unpinned on CPUs {row.get('shard_cpus') or '?'} · {load}"
    shards = ",".join(cpus) if cpus else (row.get("shard_cpus") or "?")
    return f"shard CPUs {shards} · {load}"


def render(rows, title, subtitle="", note=""):
    """The SVG document (str) for result rows (dicts with cell, config, pipeline,
    throughput_rps, p99_us, status, shard_map, load_cpus, shard_cpus). Rows with status
    "skipped" are left out; a row without figures is drawn as a zero bar marked
    "failed"."""
    rows = [r for r in rows if r.get("status") != "skipped"]
    groups, seen = [], {}
    for r in rows:
        if r["config"] not in seen:
            seen[r["config"]] = len(groups)
            groups.append((r["config"], []))
        groups[seen[r["config"]]][1].append(r)
    pipes = sorted({int(r["pipeline"]) for r in rows})
    color = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(pipes)}

    bar_h, bar_gap, group_pad = 14, 3, 16
    slots = max(1, len(pipes))
    group_h = max(slots * (bar_h + bar_gap) - bar_gap, 30) + group_pad
    label_w = max([len(g[0]) * 6.8 for g in groups] + [len(group_note(g[1][0])) * 6.0
                                                          for g in groups] + [170]) + 16
    panel_w, panel_gap, margin = 360, 80, 14
    x_label = margin
    px = [margin + label_w, margin + label_w + panel_w + panel_gap]
    width = px[1] + panel_w + 40
    legend_y = 78 if subtitle else 60
    top = legend_y + 46
    plot_h = max(len(groups), 1) * group_h
    bottom = top + plot_h
    height = bottom + 66 + (18 if note else 0)

    panels = [("throughput_rps", "Throughput", "throughput (requests/s, more is better)", si),
              ("p99_us", "p99 latency", "p99 latency (µs, less is better)", micros)]
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
           f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="{FONT}">',
           f'<title>{escape(title)}</title>',
           f'<rect x="0" y="0" width="{_f(width)}" height="{_f(height)}" fill="white"/>',
           _text(margin, 28, title, 18, weight="bold", extra=' class="title"')]
    if subtitle:
        out.append(_text(margin, 50, subtitle, 12, fill="#555", extra=' class="subtitle"'))

    # Legend: one swatch per pipeline depth.
    lx = margin
    out.append(_text(lx, legend_y + 11, "pipeline depth:", 12, fill="#444"))
    lx += 100
    for p in pipes:
        out.append(f'<g class="legend-entry"><rect x="{_f(lx)}" y="{legend_y}" width="14" '
                   f'height="14" fill="{color[p]}"/>')
        out.append(_text(lx + 19, legend_y + 11, f"pipeline {p}", 12) + "</g>")
        lx += 110

    for (key, name, axis_title, fmt), x0 in zip(panels, px):
        vals = [_value(r, key) for r in rows]
        vmax, step = nice_axis(max([v for v in vals if v is not None] or [0]))
        scale = panel_w / vmax
        out.append(_text(x0, top - 12, name, 14, weight="bold"))
        # Grid and ticks.
        n_ticks = int(round(vmax / step))
        for i in range(n_ticks + 1):
            v = i * step
            x = x0 + v * scale
            out.append(f'<line x1="{_f(x)}" y1="{top}" x2="{_f(x)}" y2="{bottom}" '
                       f'stroke="{"#999" if i == 0 else "#e3e3e3"}" stroke-width="1"/>')
            out.append(_text(x, bottom + 16, fmt(v), 11, anchor="middle", fill="#444"))
        out.append(f'<line x1="{x0}" y1="{bottom}" x2="{x0 + panel_w}" y2="{bottom}" '
                   f'stroke="#999" stroke-width="1"/>')
        out.append(_text(x0 + panel_w / 2, bottom + 38, axis_title, 12, anchor="middle",
                         extra=' class="axis-title"'))
        # Bars.
        for gi, (config, cells) in enumerate(groups):
            gy = top + gi * group_h + group_pad / 2
            for r in cells:
                slot = pipes.index(int(r["pipeline"]))
                y = gy + slot * (bar_h + bar_gap)
                v = _value(r, key)
                w = 0.0 if v is None else max(v * scale, 0.0)
                tip = (f"{r.get('cell', '')} {config}, pipeline {r['pipeline']}: "
                       + ("no result" if v is None else f"{fmt(v)}"
                          + (" requests/s" if key == "throughput_rps" else " µs")))
                out.append(f'<rect class="bar" data-metric="{key}" data-cell='
                           f'{quoteattr(str(r.get("cell", "")))} data-pipeline="{r["pipeline"]}" '
                           f'x="{_f(x0)}" y="{_f(y)}" width="{_f(w)}" height="{bar_h}" '
                           f'fill="{color[int(r["pipeline"])]}">'
                           f'<title>{escape(tip)}</title></rect>')
                if v is None:
                    out.append(_text(x0 + 4, y + bar_h - 3, "failed", 11, fill="#b00020",
                                     extra=' class="failed"'))
                else:
                    mark = "" if r.get("status", "ok") == "ok" else " (failed)"
                    out.append(_text(x0 + w + 4, y + bar_h - 3, fmt(v) + mark, 10,
                                     fill="#b00020" if mark else "#333"))

    # Group labels, left of the throughput panel, and separators across both panels.
    for gi, (config, cells) in enumerate(groups):
        gy = top + gi * group_h
        mid = gy + group_h / 2
        out.append(_text(px[0] - 10, mid - 2, config, 12, anchor="end",
                         extra=' class="config-label"'))
        out.append(_text(px[0] - 10, mid + 13, group_note(cells[0]), 10, anchor="end",
                         fill="#666"))
        if gi:
            out.append(f'<line x1="{x_label}" y1="{_f(gy)}" x2="{_f(width - 20)}" '
                       f'y2="{_f(gy)}" stroke="#f0f0f0" stroke-width="1"/>')
    if not groups:
        out.append(_text(px[0], top + 20, "no cell produced a result", 12, fill="#b00020"))
    if note:
        out.append(_text(margin, height - 12, note, 11, fill="#555"))
    out.append("</svg>")
    return "\n".join(out) + "\n"
