"""`edgecnn eval-tracks`: the CLI over the tracking metrics, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.data.synth_video import write_synth_video
from edgecnn.metrics.tracking import clear_mot, read_mot

runner = CliRunner()


def test_scores_a_tracker_file_against_synth_video_ground_truth(tmp_path: Path) -> None:
    truth = write_synth_video(tmp_path / "clip.avi", frames=20, objects=3, imgsz=96, seed=2)
    # a "tracker" that follows the ground truth but gives object 2 a new id from frame 11
    hyp = tmp_path / "hyp.txt"
    rows = []
    for t in truth:
        ident = 9 if t.track_id == 2 and t.frame > 10 else t.track_id
        x1, y1, x2, y2 = t.box
        rows.append(f"{t.frame},{ident},{x1},{y1},{x2 - x1},{y2 - y1},0.9,-1,-1,-1")
    hyp.write_text("\n".join(rows) + "\n")
    gt = tmp_path / "clip.gt.txt"
    result = runner.invoke(app, ["eval-tracks", str(hyp), "--gt", str(gt), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores == clear_mot(read_mot(gt), read_mot(hyp, ground_truth=False)).to_dict()
    assert (scores["id_switches"], scores["misses"], scores["false_positives"]) == (1, 0, 0)
    assert scores["hypothesis_tracks"] == 4 and scores["mota"] == 1 - 1 / len(truth)
    text = runner.invoke(app, ["eval-tracks", str(hyp), "--gt", str(gt)])
    assert text.exit_code == 0 and "ID switches 1, misses 0, false positives 0" in text.output
    assert f"MOTA {100 * scores['mota']:.1f}" in text.output


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,0,0,10,10,1\n")
    video = tmp_path / "clip.avi"
    video.write_bytes(b"RIFF\x00\xff\xfe binary")
    dup = tmp_path / "dup.txt"
    dup.write_text("1,5,0,0,10,10,1\n1,5,2,2,10,10,1\n")
    cases = [
        (["eval-tracks", str(dup), "--gt", str(video)], f"{video}: not a text file"),
        (["eval-tracks", str(dup), "--gt", str(gt)], f"{dup}: frame 1: two hypothesis boxes have the same"),
        (["eval-tracks", str(gt), "--gt", str(tmp_path / "none.txt")], "does not exist"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert expected in " ".join(result.output.split())
