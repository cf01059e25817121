"""`python -m desktop --self-test` (reused by the packaging smoke test)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_self_test_classifies_the_sample_and_exits_0(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PIXELCLASSIFIER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "desktop", "--self-test"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "self-test: sample-ship.jpg: ship" in proc.stdout


def test_a_self_test_failing_while_it_trains_exits_instead_of_asking(qtbot, make_window,
                                                                     monkeypatch):
    """Nobody answers a dialog in a packaging check: a failure (or the time limit) during the
    self-test's training run ends it, stopping the run, without 'Training is running' asked."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    import desktop.self_test
    from training.paths import bundled_checkpoint

    def asked(*args):
        raise AssertionError("the self-test asked a question nobody can answer")

    monkeypatch.setattr(QMessageBox, "question", asked)

    class FailsWhileTraining(desktop.self_test.SelfTest):
        def train(self):
            self.window.trainer.running_changed.connect(
                lambda running: running and self.fail("injected while training"))
            super().train()

    monkeypatch.setattr(desktop.self_test, "SelfTest", FailsWhileTraining)
    window = make_window(bundled_checkpoint())
    assert desktop.self_test.run_self_test(QApplication.instance(), window, window.session) == 1
    assert not window.isVisible() and not window.trainer.lane.thread.is_alive()  # run stopped


def test_the_app_opens_when_its_log_folder_cannot_be_written(tmp_path):
    """One launch with sudo leaves the log folder owned by root; a read-only home has none: the
    app still opens and classifies, logging to stderr, and says so."""
    (tmp_path / "logs").write_text("a file where the log folder should be")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PIXELCLASSIFIER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "desktop", "--self-test"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "self-test: sample-ship.jpg: ship" in proc.stdout
    assert f"cannot write the log in {tmp_path / 'logs'}" in proc.stderr


WINDOWED = """
import sys
import desktop.__main__ as app

class Kernel32:  # Windows' AttachConsole, as for a build started from a terminal
    def AttachConsole(self, pid):
        return pid == -1  # ATTACH_PARENT_PROCESS

app._kernel32 = Kernel32
app.CONSOLE_DEVICE = sys.argv[1]  # stands in for the terminal's CONOUT$
sys.stdout = sys.stderr = None  # what a windowed (console=False) Windows build starts with
sys.exit(app.main(sys.argv[2:]))
"""


def test_a_windowed_build_prints_its_self_test_in_the_terminal_it_was_started_from(tmp_path):
    """A Windows bundle is a windowed app: without a console its --self-test said nothing, in a
    terminal too (exit status only). It attaches to the terminal's console and writes there."""
    console = tmp_path / "console.txt"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PIXELCLASSIFIER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", WINDOWED, str(console), "--self-test"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = console.read_text(encoding="utf-8")
    assert "self-test: sample-ship.jpg: ship" in said and "with the new checkpoint" in said
    assert not proc.stdout  # (nothing went anywhere else)
    help_console = tmp_path / "help.txt"
    proc = subprocess.run([sys.executable, "-c", WINDOWED, str(help_console), "--help"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: python -m desktop" in help_console.read_text()
