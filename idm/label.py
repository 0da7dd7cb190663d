"""``d2e label``: gameplay videos in, pseudo-labeled recordings out; resumable, shardable, Ray-ready.

Per video: probe -> cut into segments (default 2 min, after skipping the first/last N seconds) -> drop
static segments (menus, pauses: a cheap frame-difference filter) -> label each segment with the IDM ->
write each segment's events atomically under ``OUT/.parts/NAME/`` -> once every segment is done,
assemble ``OUT/NAME.mcap`` (events + one screen record per model frame pointing into the source video,
marked as pseudo-labels with the model id, config hash and per-event confidence) and ``NAME.json``
(and with ``--owamcap`` also ``NAME.owa.mcap`` for OWA's tools). The JSON summary is written last: it
is what marks a video finished.

A rerun skips finished videos and finished segments; a crash or Ctrl-C never leaves a file that looks
finished (everything is written to a temp name and renamed). ``--shard i/N`` takes every N-th video of
the sorted list, so any scheduler can split the work; ``--ray`` runs the same per-video function as a
Ray Data pipeline. A bad video is logged with its reason and counted; it never stops the run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from capture.errors import D2EError
from capture.format import RecordingWriter
from capture.schema import TOPIC_TO_TYPE, LabelConfidence, RecordingMeta, ScreenFrame, to_row
from capture.storage import atomic_output
from core.data.frames import VideoProbe, grid_frames, probe
from core.grid import TICKS_PER_SECOND
from core.inputs import confident

log = logging.getLogger("d2e.label")

# frames (N, S, S, 3) uint8, grid times ns -> [(event, confidence)] with event times on the same clock
Labeler = Callable[[np.ndarray, Sequence[int]], list[tuple[Any, float]]]


@dataclass
class LabelOptions:
    """Settings of a labeling run (saved in every summary so outputs say how they were made)."""

    segment_s: float = 120.0
    skip_start_s: float = 0.0
    skip_end_s: float = 0.0
    min_motion: float = 5.0  # % of frame pairs that must change visibly, else the segment is static
    image_size: int = 64  # frames are prepared as the model's data config says
    aspect: str = "stretch"
    copy_video: bool = False
    owamcap: bool = False
    min_confidence: float = 0.0  # events the model is less sure of are left out (a press and its release together)
    game: str | None = None  # the training game whose calibrated thresholds decide (None: the pooled ones)


@dataclass
class VideoResult:
    video: str
    status: str  # "labeled", "skipped-done", "failed"
    output: str | None = None
    reason: str | None = None
    duration_s: float = 0.0
    labeled_s: float = 0.0
    static_segments: list[int] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0


def output_name(video: str) -> str:
    """A flat, collision-safe output name: the file stem plus a short hash of the full path."""
    import hashlib

    stem = Path(video.split("://")[-1]).stem
    return f"{stem}-{hashlib.sha1(video.encode()).hexdigest()[:8]}"


def segments_of(p: VideoProbe, opts: LabelOptions) -> list[tuple[float, float]]:
    start = opts.skip_start_s
    end = max(start, p.duration_s - opts.skip_end_s)
    out = []
    t = start
    while t < end - 1e-6:
        out.append((t, min(end, t + opts.segment_s)))
        t += opts.segment_s
    return out


def _motion(frames: np.ndarray) -> float:
    """Percent of consecutive frame pairs that change visibly: more than 0.1% of pixels by more than 10/255.

    Counting changed pixels rather than averaging the difference keeps small sprites on a still
    background (Atari, top-down games) as gameplay, while menus, pause screens and title cards score ~0.
    """
    if len(frames) < 2:
        return 0.0
    gray = frames.astype(np.int16).sum(-1)
    changed = (np.abs(np.diff(gray, axis=0)) > 30).reshape(len(frames) - 1, -1).mean(1)
    return float((changed > 0.001).mean() * 100)


Decoded = tuple[list[int], list[int], np.ndarray | None]  # grid times, source pts, frames


def decode_segment(video: str, seg: tuple[float, float], opts: LabelOptions) -> Decoded:
    """Frames of one segment on the model grid (runs on a helper thread, ahead of inference)."""
    times, pts, frames = [], [], []
    for t, p, f in grid_frames(video, opts.image_size, opts.aspect, start_s=seg[0], end_s=seg[1]):
        times.append(t)
        pts.append(p)
        frames.append(f)
    return times, pts, np.stack(frames) if frames else None


def label_decoded(decoded: Decoded, labeler: Labeler, opts: LabelOptions) -> dict[str, Any]:
    """Filter static content, label the rest. Returns a msgpack-able dict."""
    times, pts, stack = decoded
    if stack is None or _motion(stack) < opts.min_motion:
        return {"times": times, "pts": pts, "events": [], "static": True}
    labeled = confident(labeler(stack, times), opts.min_confidence)
    events = [[e.TOPIC, list(to_row(e)), float(c)] for e, c in labeled]
    return {"times": times, "pts": pts, "events": events, "static": False}


def model_key(model_info: dict[str, Any]) -> str:
    """Which model made labels: its config and its weights (the same config retrained is another model)."""
    return f"{model_info.get('config_hash')}/{model_info.get('weights_hash')}"


def labels_model(summary: Path) -> str | None:
    """``model_key`` of the model that made a finished output (None when it is not finished)."""
    try:
        return model_key(json.loads(summary.read_text())["model"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def foreign_outputs(out_dir: Path, model_info: dict[str, Any]) -> list[str]:
    """Finished outputs in ``out_dir`` made by another model: relabeling would replace them."""
    return sorted(p.name for p in out_dir.glob("*.json")
                  if p.name != "run_summary.json" and labels_model(p) not in (None, model_key(model_info)))


def label_video(video: str, out_dir: Path, labeler: Labeler, opts: LabelOptions, model_info: dict[str, Any],
                ) -> VideoResult:
    """Label one video, resuming from finished segments; never raises for a bad video."""
    t0 = time.perf_counter()
    name = output_name(video)
    final = out_dir / f"{name}.mcap"
    if final.exists() and labels_model(out_dir / f"{name}.json") == model_key(model_info):
        return VideoResult(video, "skipped-done", str(final))
    try:
        info = probe(video)
        segs = segments_of(info, opts)
        parts = out_dir / ".parts" / name
        parts.mkdir(parents=True, exist_ok=True)
        stamp = parts / "model.txt"  # segments resume only with the model (and options) that made them
        made_by = f"{model_key(model_info)} {json.dumps(asdict(opts), sort_keys=True)}"
        if not stamp.exists() or stamp.read_text() != made_by:
            for stale in parts.glob("*.msgpack"):
                stale.unlink()
            stamp.write_text(made_by)
        todo = [i for i in range(len(segs)) if not (parts / f"{i:05d}.msgpack").exists()]
        # decode the next segment on a thread while the model labels this one (PyAV releases the GIL)
        with ThreadPoolExecutor(1, thread_name_prefix="d2e-decode") as pool:
            ahead = pool.submit(decode_segment, video, segs[todo[0]], opts) if todo else None
            for k, i in enumerate(todo):
                decoded = ahead.result()
                ahead = pool.submit(decode_segment, video, segs[todo[k + 1]], opts) if k + 1 < len(todo) else None
                data = label_decoded(decoded, labeler, opts)
                with atomic_output(parts / f"{i:05d}.msgpack", overwrite=True) as tmp:
                    tmp.write_bytes(msgpack.packb(data))
        results = [msgpack.unpackb((parts / f"{i:05d}.msgpack").read_bytes()) for i in range(len(segs))]
        result = _assemble(video, info, results, segs, final, opts, model_info)
        if opts.owamcap:  # for OWA's tools: events + media refs as JSON (confidences stay in the d2e file)
            from capture.convert import to_owamcap

            to_owamcap(str(final), str(out_dir / f"{name}.owa.mcap"), overwrite=True)
        result.seconds = time.perf_counter() - t0
        summary = {**asdict(result), "options": asdict(opts), "model": model_info, "probe": asdict(info)}
        with atomic_output(out_dir / f"{name}.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(summary, indent=1))
        for part in [*parts.glob("*.msgpack"), stamp]:
            part.unlink()
        parts.rmdir()
        return result
    except D2EError as exc:
        log.warning("skipping %s: %s", video, exc.line())
        return VideoResult(video, "failed", reason=exc.line(), seconds=time.perf_counter() - t0)
    except Exception as exc:  # corrupt streams surface as many FFmpeg error types: log, count, go on
        log.warning("skipping %s: %s: %s", video, type(exc).__name__, exc)
        return VideoResult(video, "failed", reason=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)


def _assemble(video: str, info: VideoProbe, results: list[dict[str, Any]], segs: list[tuple[float, float]],
              final: Path, opts: LabelOptions, model_info: dict[str, Any]) -> VideoResult:
    result = VideoResult(video, "labeled", str(final), duration_s=info.duration_s)
    uri = video if "://" in video else str(Path(video).resolve())
    if opts.copy_video:
        import shutil

        from capture.storage import open_read

        copy = final.with_suffix(Path(video.split("://")[-1]).suffix or ".mp4")
        with atomic_output(copy, overwrite=True) as tmp, open_read(video) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        uri = copy.name
    meta = RecordingMeta(source="pseudo-label", fps=TICKS_PER_SECOND, monotonic_start_ns=0, wall_start_ns=0,
                         capture_region={"x": 0, "y": 0, "width": info.width, "height": info.height},
                         video={"file": uri, "codec": info.codec, "model_frame_size": opts.image_size},
                         extra={"pseudo_label": True, **model_info, "source_video": video})
    with atomic_output(final, overwrite=True) as tmp, RecordingWriter(tmp, meta, overwrite=True) as writer:
        index = 0
        for i, data in enumerate(results):
            if data["static"]:
                result.static_segments.append(i)
                continue
            result.labeled_s += segs[i][1] - segs[i][0]
            events = sorted(((TOPIC_TO_TYPE[topic](*row), conf) for topic, row, conf in data["events"]),
                            key=lambda ec: ec[0].t_ns)
            frames = [ScreenFrame(t, p, info.width, info.height, index + k) for k, (t, p) in
                      enumerate(zip(data["times"], data["pts"]))]
            index += len(frames)
            # frames and events interleaved by time, so every topic stays ordered
            stream = sorted([(f.t_ns, 0, f) for f in frames] + [(e.t_ns, 1, e) for e, _c in events],
                            key=lambda x: (x[0], x[1]))
            for _t, _k, msg in stream:
                writer.write(msg)
            for e, conf in events:
                writer.write(LabelConfidence(e.t_ns, e.TOPIC, round(conf, 4)))
            result.events += len(events)
        writer.update_end_info(static_segments=result.static_segments)
    return result


def select_shard(videos: list[str], shard: str | None) -> list[str]:
    """``"i/N"``: every N-th video of the sorted list starting at i; the same split on every machine."""
    if not shard:
        return videos
    try:
        i, n = (int(x) for x in shard.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError as exc:
        raise D2EError(f"bad --shard {shard!r}", fix="use i/N with 0 <= i < N, e.g. --shard 0/4") from exc
    return sorted(videos)[i::n]


@dataclass
class RunSummary:
    videos: int = 0
    labeled: int = 0
    skipped_done: int = 0
    failed: int = 0
    video_hours: float = 0.0
    labeled_hours: float = 0.0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        return self.labeled_hours * 3600 / self.seconds if self.seconds else 0.0

    def add(self, r: VideoResult) -> None:
        self.videos += 1
        if r.status == "labeled":
            self.labeled += 1
            self.video_hours += r.duration_s / 3600
            self.labeled_hours += r.labeled_s / 3600
        elif r.status == "skipped-done":
            self.skipped_done += 1
        else:
            self.failed += 1
            self.failures[r.video] = r.reason or "unknown"


def run_local(videos: list[str], out_dir: Path, labeler: Labeler, opts: LabelOptions, model_info: dict[str, Any],
              progress: bool = True) -> RunSummary:
    """Label videos one after another in this process, with a progress bar (hours, real-time factor, ETA)."""
    from tqdm import tqdm

    summary = RunSummary()
    t0 = time.perf_counter()
    bar = tqdm(videos, unit="video", disable=not progress, dynamic_ncols=True)
    for video in bar:
        summary.add(label_video(video, out_dir, labeler, opts, model_info))
        summary.seconds = time.perf_counter() - t0
        bar.set_postfix(hours=f"{summary.labeled_hours:.3f}", rtf=f"{summary.realtime_factor:.2f}x",
                        failed=summary.failed)
    return summary


def run_ray(videos: list[str], out_dir: Path, make_labeler: Callable[[], Labeler], opts: LabelOptions,
            model_info: dict[str, Any], *, address: str | None = None, num_workers: int = 2,
            cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0) -> RunSummary:
    """The same per-video job as a Ray Data pipeline: videos -> (decode, infer, write) actors -> results.

    Each actor loads the model once (``make_labeler``) and labels whole videos, so outputs, resuming and
    failure handling are exactly those of ``run_local``. ``address=None`` starts a local cluster; pass
    ``"auto"`` (or ``ray://host:10001``) to use a running multi-node cluster whose nodes see ``out_dir``
    (a shared filesystem) and the videos (shared paths or fsspec URLs).
    """
    from capture.errors import require

    ray = require("ray", "ray")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({"num_cpus": max(1, int(num_workers * cpus_per_worker))} if address is None else {}))

    class LabelActor:
        def __init__(self) -> None:
            self.labeler = make_labeler()

        def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
            results = [label_video(str(v), out_dir, self.labeler, opts, model_info) for v in batch["video"]]
            return {"result": [json.dumps(asdict(r)) for r in results]}

    t0 = time.perf_counter()
    ds = ray.data.from_items([{"video": v} for v in videos])
    ds = ds.map_batches(LabelActor, batch_size=1, concurrency=num_workers, num_cpus=cpus_per_worker,
                        num_gpus=gpus_per_worker)
    summary = RunSummary()
    for row in ds.iter_rows():
        summary.add(VideoResult(**json.loads(row["result"])))
    summary.seconds = time.perf_counter() - t0
    return summary
