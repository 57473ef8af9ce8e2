"""Looking at an episode: an mp4 with every camera side by side above plots of state and action,
with a cursor that moves with the frames.

The plots are drawn once with matplotlib into a background image; each video frame then only
copies that image and paints the cursor column with numpy, so rendering costs about as much as
encoding (matplotlib per frame would be ~100x slower).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np

from lerobot.datasets.utils import DatasetError, atomic_path
from lerobot.datasets.video import decode_video_frames

_CURSOR_RGB = np.array([220, 30, 30], np.uint8)


def episode_arrays(dataset: Any, episode_idx: int) -> dict[str, Any]:
    """Numeric columns, timestamps, camera frames (uint8 T x H x W x 3) and task of one episode."""
    meta = dataset.meta
    if episode_idx not in dataset.episodes:
        raise DatasetError(
            f"Episode {episode_idx} is not in this dataset (episodes {dataset.episodes[0]}..{dataset.episodes[-1]})."
            if dataset.episodes
            else "The dataset has no episodes."
        )
    table = _episode_rows(dataset, episode_idx)
    timestamps = table["timestamp"].to_numpy().astype(np.float64)
    out: dict[str, Any] = {"timestamp": timestamps, "cameras": {}}
    for key in ("observation.state", "action"):
        if key in table.column_names:
            out[key] = np.asarray(table[key].to_pylist(), np.float32).reshape(len(timestamps), -1)
    for key in meta.camera_keys:
        if meta.features[key]["dtype"] == "video":
            start = float(meta.episodes.array(f"videos/{key}/from_timestamp")[episode_idx])
            frames = decode_video_frames(
                dataset.root / meta.get_video_file_path(episode_idx, key),
                (start + timestamps).tolist(),
                dataset.tolerance_s,
            )
        else:  # PNG frames in the parquet: decode only this camera's rows
            first = dataset.get_episode(episode_idx).start
            frames = dataset._camera_item(key, np.arange(first, first + len(timestamps))).numpy()
            frames = (frames * (1 if dataset.return_uint8 else 255)).round()
        frames = np.asarray(frames).astype(np.uint8).transpose(0, 2, 3, 1)
        out["cameras"][key] = np.repeat(frames, 3, axis=3) if frames.shape[3] == 1 else frames
    task_index = int(table["task_index"][0].as_py())
    out["task"] = meta.task_strings()[task_index]
    return out


def _episode_rows(dataset: Any, episode_idx: int) -> Any:
    """One episode's rows of the loaded table: a zero-copy slice (rows are stored episode by episode)."""
    frames = dataset.get_episode(episode_idx)
    return dataset.hf_dataset.slice(frames.start, len(frames))


def _resize_nearest(frames: np.ndarray, height: int) -> np.ndarray:
    """T x H x W x 3 -> T x height x (W * height / H) x 3, nearest neighbour (no dependency, exact for 2x)."""
    h, w = frames.shape[1:3]
    width = max(2, round(w * height / h))
    rows = (np.arange(height) * h / height).astype(int)
    cols = (np.arange(width) * w / width).astype(int)
    return frames[:, rows][:, :, cols]


def _plot_background(
    data: dict[str, Any], names: dict[str, list[str] | None], width: int, height: int, title: str
):
    """The static plot image and, per axes, the pixel box and the time->x mapping for the cursor."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    keys = [k for k in ("observation.state", "action") if k in data]
    dpi = 100
    fig, axes = plt.subplots(
        len(keys), 1, figsize=(width / dpi, height / dpi), dpi=dpi, sharex=True, squeeze=False
    )
    t = data["timestamp"] - data["timestamp"][0]
    for ax, key in zip(axes[:, 0], keys):
        values = data[key]
        labels = names.get(key) or [f"{key}[{i}]" for i in range(values.shape[1])]
        for i in range(values.shape[1]):
            ax.plot(t, values[:, i], lw=1, label=labels[i] if i < len(labels) else str(i))
        ax.set_ylabel(key, fontsize=8)
        ax.tick_params(labelsize=7)
        if values.shape[1] <= 10:
            ax.legend(fontsize=6, loc="upper right", ncol=min(values.shape[1], 5))
        ax.set_xlim(t[0], max(t[-1], t[0] + 1e-6))
    axes[-1, 0].set_xlabel("time (s)", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    boxes = []
    for ax in axes[:, 0]:
        (x0, y0), (x1, y1) = ax.transData.transform([(t[0], ax.get_ylim()[0]), (t[-1], ax.get_ylim()[1])])
        top, bottom = image.shape[0] - int(y1), image.shape[0] - int(y0)  # matplotlib's y grows upwards
        boxes.append((x0, x1, top, bottom))
    plt.close(fig)
    return image, boxes


def visualize_episode(
    dataset: Any, episode_idx: int = 0, output_path: str | Path = "episode_0.mp4", camera_height: int = 240
) -> Path:
    """Render one episode of a LeRobotDataset to an H.264 mp4 at the dataset's fps; returns the path."""
    data = episode_arrays(dataset, episode_idx)
    n = len(data["timestamp"])
    cams = [_resize_nearest(f, camera_height) for f in data["cameras"].values()]
    strip = np.concatenate(cams, axis=2) if cams else np.zeros((n, 0, 640, 3), np.uint8)
    width = max(640, strip.shape[2])
    width += width % 2
    names = {k: dataset.meta.features[k].get("names") for k in ("observation.state", "action") if k in data}
    if isinstance(names.get("observation.state"), dict):
        names = {k: None for k in names}
    plot_h = 160 * max(1, sum(k in data for k in ("observation.state", "action")))
    background, boxes = _plot_background(
        data, names, width, plot_h, f"{dataset.repo_id} episode {episode_idx}: {data['task']}"
    )
    canvas_h = strip.shape[1] + background.shape[0]
    canvas_h += canvas_h % 2
    canvas = np.full((canvas_h, width, 3), 255, np.uint8)
    t = data["timestamp"] - data["timestamp"][0]
    output_path = Path(output_path)
    with atomic_path(output_path) as tmp, av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=int(dataset.fps))
        stream.width, stream.height, stream.pix_fmt = width, canvas_h, "yuv420p"
        for j in range(n):
            canvas[: strip.shape[1], : strip.shape[2]] = strip[j]
            plots = canvas[strip.shape[1] : strip.shape[1] + background.shape[0]]
            plots[:] = background
            for x0, x1, top, bottom in boxes:
                x = int(round(x0 + (x1 - x0) * (t[j] - t[0]) / max(t[-1] - t[0], 1e-9)))
                plots[top:bottom, max(x - 1, 0) : x + 1] = _CURSOR_RGB
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return output_path


# --------------------------------------------------------------------------------------------- HTML viewer


def _plot_names(meta: Any, key: str, dim: int) -> list[str]:
    names = meta.features.get(key, {}).get("names")
    return (
        [str(x) for x in names]
        if isinstance(names, list) and len(names) == dim
        else [str(i) for i in range(dim)]
    )


def write_html_viewer(dataset: Any, output_dir: str | Path, episode_idx: int | None = None) -> Path:
    """A static folder (``index.html`` + copied videos + one small JS file per episode) that works from
    ``file://``: no server, no network, nothing but a browser.

    Per-episode data are ``.js`` files that call ``LEROBOT_EPISODE(...)`` because browsers refuse
    ``fetch`` of local JSON from a file:// page but do run ``<script src>`` from the same folder.
    """
    import json
    import shutil

    meta = dataset.meta
    out = Path(output_dir)
    (out / "episodes").mkdir(parents=True, exist_ok=True)
    episodes = []
    tasks = meta.task_strings()
    for ep in dataset.episodes:
        rows = _episode_rows(dataset, ep)
        n = rows.num_rows
        record: dict[str, Any] = {
            "index": ep,
            "length": n,
            "task": tasks[int(rows["task_index"][0].as_py())],
            "videos": {},
        }
        for key in meta.video_keys:
            rel = meta.get_video_file_path(ep, key)
            if not (out / rel).exists():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dataset.root / rel, out / rel)
            record["videos"][key] = {
                "src": rel.as_posix(),
                "from": float(meta.episodes.array(f"videos/{key}/from_timestamp")[ep]),
                "to": float(meta.episodes.array(f"videos/{key}/to_timestamp")[ep]),
            }
        episodes.append(record)
        series = {"timestamp": np.round(rows["timestamp"].to_numpy().astype(np.float64), 6).tolist()}
        for key in ("observation.state", "action"):
            if key in rows.column_names:
                values = np.asarray(rows[key].to_pylist(), np.float64).reshape(n, -1)
                series[key] = {
                    "names": _plot_names(meta, key, values.shape[1]),
                    "values": values.round(6).tolist(),
                }
        (out / "episodes" / f"episode_{ep:06d}.js").write_text(
            f"LEROBOT_EPISODE({ep}, {json.dumps(series)});\n", encoding="utf-8"
        )
    index = {
        "repo_id": dataset.repo_id,
        "fps": meta.fps,
        "robot_type": meta.robot_type,
        "cameras": meta.video_keys,
        "episodes": episodes,
        "initial": episode_idx
        if episode_idx is not None
        else (dataset.episodes[0] if dataset.episodes else None),
    }
    html = _VIEWER_HTML.replace("/*INDEX*/null", json.dumps(index).replace("</", "<\\/"))
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out / "index.html"


_VIEWER_HTML = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>LeRobot dataset viewer</title>
<style>
body{margin:0;font-family:system-ui,sans-serif;display:flex;height:100vh;background:#f6f6f4;color:#222}
#side{width:190px;overflow-y:auto;border-right:1px solid #ccc;background:#fff}
#side h2{font-size:13px;margin:8px}
#side a{display:block;padding:4px 8px;font-size:13px;cursor:pointer;color:#224}
#side a.sel{background:#224;color:#fff}
#main{flex:1;overflow-y:auto;padding:10px}
#task{font-size:15px;margin:4px 0 8px}
#cams{display:flex;gap:8px;flex-wrap:wrap}
#cams figure{margin:0}#cams video{height:220px;background:#000}
#cams figcaption{font-size:11px;color:#555}
#controls{margin:8px 0;display:flex;gap:8px;align-items:center}
#slider{flex:1}
canvas{display:block;background:#fff;border:1px solid #ddd;margin-bottom:6px}
.legend{font-size:11px;margin-bottom:10px}.legend span{margin-right:10px}
</style></head><body>
<div id="side"><h2 id="title"></h2><div id="list"></div></div>
<div id="main"><div id="task"></div><div id="cams"></div>
<div id="controls"><button id="play">Play</button><input id="slider" type="range" min="0" max="1" step="0.001" value="0"><span id="clock">0.00 s</span></div>
<div id="plots"></div></div>
<script>
const INDEX = /*INDEX*/null;
const COLORS = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
const loaded = {};
let current = null, data = null, t = 0, playing = false, last = null;
function LEROBOT_EPISODE(i, d) { loaded[i] = d; if (current && current.index === i) show(); }
function el(tag, attrs, parent) { const e = document.createElement(tag); Object.assign(e, attrs || {}); if (parent) parent.appendChild(e); return e; }
function duration() { return data ? data.timestamp[data.timestamp.length - 1] - data.timestamp[0] : 0; }
function select(ep) {
  current = ep; data = null; t = 0; playing = false;
  document.querySelectorAll("#list a").forEach(a => a.classList.toggle("sel", +a.dataset.ep === ep.index));
  document.getElementById("task").textContent = "Episode " + ep.index + " (" + ep.length + " frames): " + ep.task;
  const cams = document.getElementById("cams"); cams.innerHTML = "";
  for (const key of INDEX.cameras) {
    const v = ep.videos[key], fig = el("figure", {}, cams);
    const video = el("video", {src: v.src, muted: true, preload: "auto", playsInline: true}, fig);
    video.dataset.from = v.from; video.dataset.key = key;
    video.addEventListener("loadedmetadata", () => { video.currentTime = v.from; });
    el("figcaption", {textContent: key}, fig);
  }
  if (loaded[ep.index]) show(); else el("script", {src: "episodes/episode_" + String(ep.index).padStart(6, "0") + ".js"}, document.body);
}
function show() { data = loaded[current.index]; draw(); }
function videos() { return Array.from(document.querySelectorAll("#cams video")); }
function seek(time) {
  t = Math.max(0, Math.min(time, duration()));
  for (const v of videos()) { const target = +v.dataset.from + t; if (Math.abs(v.currentTime - target) > 0.5 / INDEX.fps) v.currentTime = target; }
  draw();
}
function draw() {
  if (!data) return;
  document.getElementById("slider").value = duration() ? t / duration() : 0;
  document.getElementById("clock").textContent = t.toFixed(2) + " s";
  const plots = document.getElementById("plots");
  if (!plots.dataset.ep || +plots.dataset.ep !== current.index) {
    plots.innerHTML = ""; plots.dataset.ep = current.index;
    for (const key of ["observation.state", "action"]) {
      if (!data[key]) continue;
      el("div", {textContent: key, style: "font-size:12px;font-weight:600"}, plots);
      el("canvas", {width: 900, height: 170, id: "plot-" + key}, plots);
      const legend = el("div", {className: "legend"}, plots);
      data[key].names.forEach((n, i) => { el("span", {textContent: "\u25A0 " + n, style: "color:" + COLORS[i % 10]}, legend); });
    }
  }
  const t0 = data.timestamp[0], span = Math.max(duration(), 1e-9);
  for (const key of ["observation.state", "action"]) {
    if (!data[key]) continue;
    const c = document.getElementById("plot-" + key), g = c.getContext("2d"), vals = data[key].values;
    let lo = Infinity, hi = -Infinity;
    for (const row of vals) for (const x of row) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    if (hi === lo) { hi += 1; lo -= 1; }
    const L = 50, R = c.width - 10, T = 8, B = c.height - 20;
    const X = s => L + (R - L) * (s - t0) / span, Y = v => B - (B - T) * (v - lo) / (hi - lo);
    g.clearRect(0, 0, c.width, c.height);
    g.strokeStyle = "#999"; g.strokeRect(L, T, R - L, B - T);
    g.fillStyle = "#333"; g.font = "10px sans-serif";
    g.fillText(hi.toPrecision(4), 2, T + 8); g.fillText(lo.toPrecision(4), 2, B);
    g.fillText("0 s", L, c.height - 5); g.fillText(span.toFixed(2) + " s", R - 40, c.height - 5);
    for (let d = 0; d < vals[0].length; d++) {
      g.strokeStyle = COLORS[d % 10]; g.beginPath();
      vals.forEach((row, i) => { const x = X(data.timestamp[i]), y = Y(row[d]); i ? g.lineTo(x, y) : g.moveTo(x, y); });
      g.stroke();
    }
    g.strokeStyle = "#d22"; g.lineWidth = 2; g.beginPath(); g.moveTo(X(t0 + t), T); g.lineTo(X(t0 + t), B); g.stroke(); g.lineWidth = 1;
  }
}
function tick(now) {
  if (playing) {
    const vs = videos();
    if (vs.length) t = vs[0].currentTime - +vs[0].dataset.from;
    else if (last !== null) t += (now - last) / 1000;
    if (t >= duration()) { playing = false; vs.forEach(v => v.pause()); t = duration(); }
    for (const v of vs.slice(1)) { const target = +v.dataset.from + t; if (Math.abs(v.currentTime - target) > 0.1) v.currentTime = target; }
    draw();
  }
  last = now; requestAnimationFrame(tick);
}
document.getElementById("play").onclick = () => {
  playing = !playing;
  if (playing && t >= duration()) seek(0);
  videos().forEach(v => playing ? v.play() : v.pause());
  document.getElementById("play").textContent = playing ? "Pause" : "Play";
};
document.getElementById("slider").oninput = e => { playing = false; videos().forEach(v => v.pause()); seek(e.target.value * duration()); };
document.getElementById("title").textContent = INDEX.repo_id + " (" + INDEX.fps + " fps)";
const list = document.getElementById("list");
for (const ep of INDEX.episodes) { const a = el("a", {textContent: "Episode " + ep.index + " \u00B7 " + ep.length + " fr"}, list); a.dataset.ep = ep.index; a.onclick = () => select(ep); }
const start = INDEX.episodes.find(e => e.index === +(location.hash.slice(1) || INDEX.initial)) || INDEX.episodes[0];
if (start) select(start);
requestAnimationFrame(tick);
</script></body></html>
"""


# --------------------------------------------------------------------------------------------- rerun


def write_rrd(dataset: Any, episode_idx: int, output_path: str | Path) -> Path:
    """Save one episode as a rerun recording (``rerun output.rrd`` opens it in the viewer)."""
    try:
        import rerun as rr
    except ImportError as e:
        raise DatasetError("--mode=rrd needs the rerun SDK: pip install rerun-sdk") from e
    data = episode_arrays(dataset, episode_idx)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    rec = rr.RecordingStream(f"lerobot/{dataset.repo_id}/episode_{episode_idx}")
    with atomic_path(output_path) as tmp:
        rec.save(str(tmp))
        rec.log("task", rr.TextDocument(data["task"]), static=True)
        names = {
            k: _plot_names(dataset.meta, k, data[k].shape[1])
            for k in ("observation.state", "action")
            if k in data
        }
        for j, ts in enumerate(data["timestamp"]):
            rec.set_time("frame_index", sequence=j)
            rec.set_time("timestamp", duration=float(ts))
            for key, frames in data["cameras"].items():
                rec.log(key, rr.Image(frames[j]))
            for key, labels in names.items():
                for d, label in enumerate(labels):
                    rec.log(f"{key}/{label}", rr.Scalars([float(data[key][j, d])]))
        rec.flush()
        rec.disconnect()
    return output_path
