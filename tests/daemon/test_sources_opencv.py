"""The OpenCV source on real files, folders and globs; the source registry; picamera2's
behaviour where the camera cannot exist (not installed here; a thin fake checks the calls)."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgecnn.errors import ConfigError
from edgecnn.sources import build_source, plugins
from edgecnn.sources import opencv as opencv_source
from edgecnn.sources.base import EndOfStream, NoFrameYet, SourceError
from edgecnn.sources.opencv import OpenCVConfig, OpenCVSource, input_kind, public_name
from edgecnn.sources.picamera2 import Picamera2Config, Picamera2Source


def _source(**kwargs: Any) -> OpenCVSource:
    return OpenCVSource(OpenCVConfig(type="opencv", **kwargs))


def _all_frames(src: OpenCVSource, limit: int = 100) -> list[np.ndarray]:
    frames = []
    with src:
        for _ in range(limit):
            try:
                frames.append(src.read().image)
            except EndOfStream:
                break
    return frames


def test_video_file_ends_or_loops(video_file: Path) -> None:
    frames = _all_frames(_source(input=str(video_file)))
    assert len(frames) == 12 and frames[0].shape == (120, 160, 3)
    expected = cv2.VideoCapture(str(video_file)).read()[1]
    assert np.array_equal(frames[0], expected)
    looped = _all_frames(_source(input=str(video_file), loop=True), limit=30)
    assert len(looped) == 30
    assert np.array_equal(looped[12], frames[0])


def test_frames_carry_a_monotonic_capture_time(video_file: Path) -> None:
    # made with the Frame (sources/base.py), not by each source: tracking times lost objects by it
    with _source(input=str(video_file)) as src:
        for _ in range(3):
            before = time.monotonic()
            frame = src.read()
            assert before <= frame.monotonic <= time.monotonic()


def test_a_jpeg_cut_short_is_skipped_not_decoded_with_grey_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """OpenCV decodes a JPEG that stops early, the missing rows grey (an upload that stopped
    mid-file): the folder source skips it, naming why; a JPEG with bytes after its end (as
    phones write them) and one with an EXIF thumbnail before a cut are told apart."""
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (5, 5), 0)
    whole = cv2.imencode(".jpg", image)[1].tobytes()
    (tmp_path / "a_whole.jpg").write_bytes(whole)
    (tmp_path / "b_cut.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    assert cv2.imread(str(tmp_path / "b_cut.jpg")) is not None  # what the check is for
    (tmp_path / "c_trailer.jpg").write_bytes(whole + b"phone trailer")
    # an APP1 segment holding a whole small JPEG (an EXIF thumbnail: its own scan and end marker)
    thumb = cv2.imencode(".jpg", image[:16, :16])[1].tobytes()
    app1 = b"\xff\xe1" + (len(thumb) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + thumb
    with_thumb = whole[:2] + app1 + whole[2:]
    (tmp_path / "d_thumb_cut.jpg").write_bytes(with_thumb[: len(with_thumb) - 200])
    frames = _all_frames(_source(input=str(tmp_path)))
    assert len(frames) == 2 and np.array_equal(frames[0], cv2.imread(str(tmp_path / "a_whole.jpg")))
    skipped = sorted(r.getMessage() for r in caplog.records if "skipping" in r.getMessage())
    reason = "cut short (the file ends before its image data: an upload or copy that stopped)"
    assert skipped == [f"skipping {tmp_path / name}: {reason}" for name in ("b_cut.jpg", "d_thumb_cut.jpg")]


def test_image_folder_and_glob_in_sorted_order_skipping_unreadable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    (tmp_path / "f1b.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    frames = _all_frames(_source(input=str(tmp_path)))
    assert [int(f[0, 0, 0]) for f in frames] == [0, 50, 100]
    # The skipped file is named, once, even when the folder plays in a loop.
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert skipped == [f"skipping {tmp_path / 'f1b.png'}: not an image OpenCV can decode"]
    caplog.clear()
    src = _source(input=str(tmp_path), loop=True)
    with src:
        paths = [src.read().path for _ in range(7)]
    assert [Path(p).name for p in paths] == ["f0.png", "f1.png", "f2.png"] * 2 + ["f0.png"]
    assert sum("skipping" in r.getMessage() for r in caplog.records) == 1
    frames = _all_frames(_source(input=str(tmp_path / "f[01].png")))
    assert [int(f[0, 0, 0]) for f in frames] == [0, 50]
    caplog.clear()
    (tmp_path / "f1.png").unlink()  # deleted while the source plays: named, not called undecodable
    with src:
        paths = [src.read().path for _ in range(3)]
    assert [Path(p).name for p in paths] == ["f2.png", "f0.png", "f2.png"]  # f1 was next
    assert [r.getMessage() for r in caplog.records] == [f"skipping {tmp_path / 'f1.png'}: no longer there"]


def test_paced_playback(video_file: Path) -> None:
    src = _source(input=str(video_file), fps=50.0)
    with src:
        stamps = [src.read().ts for _ in range(6)]
    assert stamps[-1] - stamps[0] >= 5 / 50 * 0.9


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("missing.mp4", "no such file"),
        ("frames/*.jpg", "no images"),
        ("/dev/not-a-camera", "not a V4L2 device"),
    ],
)
def test_inputs_that_cannot_work_are_config_errors(
    value: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        _source(input=value)


def test_check_reads_a_first_frame_of_files_and_folders(
    video_file: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A file that exists but is no video, or a folder of unreadable images, is a config error
    at once (not an outage retried for ever), without FFmpeg's own lines on stderr."""
    text = tmp_path / "clip.mp4"
    text.write_text("not a video\n")
    with pytest.raises(ConfigError, match=r"^source input '.*clip\.mp4': OpenCV cannot open it as a video$"):
        _source(input=str(text)).check()
    empty = tmp_path / "empty.avi"  # a container OpenCV opens, without a frame
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    writer.release()
    with pytest.raises(ConfigError, match=r"empty\.avi': no frame can be read from it$"):
        _source(input=str(empty)).check()
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    with pytest.raises(ConfigError, match=r"frames': none of its 1 image files can be read$"):
        _source(input=str(folder)).check()
    assert capfd.readouterr().err == ""
    cv2.imwrite(str(folder / "b.png"), np.zeros((8, 8, 3), np.uint8))
    _source(input=str(folder)).check()
    _source(input=str(video_file)).check()
    _source(input="/dev/video63").check()  # a camera may be plugged in later: no check
    _source(input="rtsp://10.255.255.1/stream").check()  # nor a stream: not even opened


def test_a_missing_camera_is_a_source_error_not_a_config_error() -> None:
    src = _source(input="/dev/video63")  # a valid name: the camera may be plugged in later
    with pytest.raises(SourceError, match="cannot open /dev/video63"):
        src.start()


def test_kinds_and_names_without_credentials(tmp_path: Path) -> None:
    assert input_kind(0) == input_kind("2") == input_kind("/dev/video0") == "device"
    assert input_kind("rtsp://cam/stream") == input_kind("http://x/y.mjpg") == "stream"
    assert input_kind(str(tmp_path)) == input_kind("a/*.jpg") == "images"
    assert input_kind("clip.mp4") == "file"
    assert public_name("rtsp://admin:secret@10.0.0.5:554/h264?x=1") == "rtsp://10.0.0.5:554/h264?x=1"
    assert "secret" not in _source(input="rtsp://admin:secret@10.0.0.5/s").name


def test_registry_builds_both_kinds(video_file: Path) -> None:
    assert {"opencv", "picamera2"} <= set(plugins())
    assert isinstance(build_source(OpenCVConfig(type="opencv", input=str(video_file))), OpenCVSource)
    assert isinstance(build_source(Picamera2Config(type="picamera2")), Picamera2Source)


def test_picamera2_missing_is_a_clear_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on any machine without it
    with pytest.raises(SourceError, match=r"picamera2 is not available.*apt install python3-picamera2"):
        Picamera2Source(Picamera2Config(type="picamera2")).start()


def test_picamera2_calls_against_a_thin_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """The camera cannot exist here: a fake Picamera2 records the calls and serves a YUV420
    lores buffer (with stride padding, as libcamera's) of a known colour."""
    calls: list[Any] = []
    width, height, stride = 96, 64, 112
    bgr = np.full((height, width, 3), (40, 120, 200), np.uint8)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # (h * 3 / 2, w)
    padded = np.zeros((height * 3 // 2, stride), np.uint8)
    # I420 planes with a stride: Y rows of `stride` bytes, then U and V rows of stride / 2
    padded[:height, :width] = yuv[:height]
    chroma = yuv[height:].reshape(-1, width // 2)
    flat = padded[height:].reshape(-1, stride // 2)
    flat[:, : width // 2] = chroma

    class Request:
        def make_array(self, name: str) -> np.ndarray:
            calls.append(("make_array", name))
            return padded.copy() if name == "lores" else np.zeros((128, 192, 3), np.uint8)

    class Camera:
        def __init__(self, number: int) -> None:
            calls.append(("Picamera2", number))

        def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(("create_video_configuration", kwargs))
            return kwargs

        def configure(self, config: Any) -> None:
            calls.append("configure")

        def start(self) -> None:
            calls.append("start")

        def captured_request(self, wait: Any = None) -> Any:
            class Context:
                def __enter__(self) -> Request:
                    calls.append(("captured_request", wait))
                    return Request()

                def __exit__(self, *exc: Any) -> None:
                    calls.append("release")

            return Context()

        def stop(self) -> None:
            calls.append("stop")

        def close(self) -> None:
            calls.append("close")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Camera))
    config = Picamera2Config(
        type="picamera2", size=(192, 128), lores_size=(width, height), fps=10, keep_main=True
    )
    with Picamera2Source(config) as src:
        frame = src.read()
    assert calls[0] == ("Picamera2", 0)
    assert calls[1] == (
        "create_video_configuration",
        {
            "main": {"size": (192, 128), "format": "RGB888"},
            "lores": {"size": (96, 64), "format": "YUV420"},
            "controls": {"FrameRate": 10.0},
            "buffer_count": 4,
        },
    )
    assert calls[2:] == [
        "configure",
        "start",
        ("captured_request", 5.0),
        ("make_array", "lores"),
        ("make_array", "main"),
        "release",
        "stop",
        "close",
    ]
    assert (
        frame.image.shape == (height, width, 3)
        and frame.full is not None
        and frame.full.shape == (128, 192, 3)
    )
    assert np.abs(frame.image.astype(int) - bgr.astype(int)).max() <= 3  # YUV round trip
    # OpenCV's COLOR_YUV420p2BGR means YV12 (V first): on this I420 buffer it gets the colour wrong
    wrong = cv2.cvtColor(padded, cv2.COLOR_YUV420p2BGR)[:height, :width]
    assert np.abs(wrong.astype(int) - bgr.astype(int)).max() > 50


def test_picamera2_config_bounds() -> None:
    with pytest.raises(ValueError, match="lores_size must not be larger"):
        Picamera2Config(type="picamera2", size=(640, 480), lores_size=(1280, 720))
    with pytest.raises(ValueError, match="both even"):
        Picamera2Config(type="picamera2", lores_size=(641, 360))


# -- watch: an upload folder -------------------------------------------------------------------


@pytest.fixture
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter wait times than the daemon's (1 s), same logic; the tests set a 0.2 s settle."""
    monkeypatch.setattr(opencv_source, "WATCH_WAIT_S", 0.4)
    monkeypatch.setattr(opencv_source, "WATCH_POLL_S", 0.02)


def _png(value: int) -> bytes:
    return cv2.imencode(".png", np.full((8, 8, 3), value, np.uint8))[1].tobytes()


def _read_watched(src: OpenCVSource, tries: int = 20) -> tuple[int, str]:
    """The next image's value and file name, asking again while the source has nothing yet."""
    for _ in range(tries):
        try:
            frame = src.read()
        except NoFrameYet:
            continue
        return int(frame.image[0, 0, 0]), Path(frame.path or "").name
    raise AssertionError("no image came")


def test_watched_folder_takes_new_images_once_they_are_complete(tmp_path: Path, quick_watch: None) -> None:
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png(10))  # there before the start: read first
    src = _source(input=str(folder), watch=True, watch_settle_s=0.2)
    src.check()  # an empty or unreadable upload folder is fine: images may come later
    with src:
        assert _read_watched(src) == (10, "a.png")
        started = time.monotonic()
        with pytest.raises(NoFrameYet):
            src.read()
        assert time.monotonic() - started >= 0.4  # it waited WATCH_WAIT_S, not for ever
        # An upload in two parts: the half-written file is not taken (no skip warning for it).
        data = _png(30)
        (folder / "c.png").write_bytes(data[: len(data) // 2])
        (folder / "b.png").write_bytes(_png(20))
        time.sleep(0.1)
        with (folder / "c.png").open("ab") as f:
            f.write(data[len(data) // 2 :])
        assert [_read_watched(src), _read_watched(src)] == [(20, "b.png"), (30, "c.png")]
        # Taken once; a new upload under a name already gone is a new image.
        (folder / "a.png").unlink()
        with pytest.raises(NoFrameYet):
            src.read()
        (folder / "a.png").write_bytes(_png(40))
        assert _read_watched(src) == (40, "a.png")


def test_an_image_is_not_taken_before_watch_settle_s(tmp_path: Path, quick_watch: None) -> None:
    src = _source(input=str(tmp_path), watch=True, watch_settle_s=600)
    with src:
        (tmp_path / "new.png").write_bytes(_png(50))
        for _ in range(3):  # 1.2 s of reads: complete, but not unchanged for 600 s yet
            with pytest.raises(NoFrameYet):
                src.read()


def test_watch_settings_that_cannot_work(tmp_path: Path, video_file: Path) -> None:
    with pytest.raises(ValueError, match="loop and watch exclude each other"):
        OpenCVConfig(type="opencv", input=str(tmp_path), watch=True, loop=True)
    with pytest.raises(ConfigError, match="watch is for image folders and globs"):
        _source(input=str(video_file), watch=True)
    with pytest.raises(ConfigError, match="no such folder"):
        _source(input=str(tmp_path / "missing"), watch=True)


def test_threaded_watch_waits_without_failures_or_stalls(tmp_path: Path, quick_watch: None) -> None:
    from edgecnn.sources.threaded import ThreadedSource

    config = OpenCVConfig(
        type="opencv", input=str(tmp_path), watch=True, watch_settle_s=0.2, stall_timeout=0.3
    )
    src = ThreadedSource(lambda: OpenCVSource(config), stall_timeout=config.stall_timeout, realtime=False)
    src.start()
    try:
        assert src.read(timeout=1.5) is None  # longer than the stall timeout: nothing yet
        (tmp_path / "x.png").write_bytes(_png(70))
        frame = None
        deadline = time.monotonic() + 10
        while frame is None and time.monotonic() < deadline:
            frame = src.read(timeout=0.1)
        assert frame is not None and int(frame.image[0, 0, 0]) == 70
        assert src.stalls == 0 and src.failures == 0
    finally:
        src.stop()
