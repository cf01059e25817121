"""`python -m training predict` on the bundled checkpoint: one JSON line per file, always."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=240)


def test_predict_json_gives_a_result_or_a_reason_for_every_file(image_dir):
    sample = ROOT / "resources" / "sample-ship.jpg"
    missing = image_dir / "vanished.png"
    proc = run_cli("predict", str(sample), str(image_dir), str(missing), "--json", "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"sample-ship.jpg", "red.png", "green.jpg", "blue.png", "broken.png",
                            "vanished.png"}
    ship = by_name["sample-ship.jpg"]
    assert ship["ok"] and ship["top"][0]["label"] == "ship" and len(ship["top"]) == 3
    assert ship["input"] == {"width": 32, "height": 32, "mode": "RGB", "format": "JPEG",
                             "conforms": True, "conversions": []}
    assert by_name["green.jpg"]["input"]["conforms"] is False
    assert by_name["green.jpg"]["input"]["conversions"]
    assert by_name["broken.png"] == {"path": str(image_dir / "broken.png"), "ok": False,
                                     "error": by_name["broken.png"]["error"]}
    assert "not found" in by_name["vanished.png"]["error"]


def test_usage_error_exits_2():
    assert run_cli("predict").returncode == 2
    assert run_cli("no-such-command").returncode == 2
