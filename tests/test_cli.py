"""The fraglife command refuses bad input before any kernel starts."""

import subprocess
import sys

from fraglife.cli import main


def test_bad_parameter_exits_2_with_one_clear_line(capsys):
    assert main(["run", "01", "-p", "loss_rate", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("fraglife run: parameter 'loss_rate' = 2.0 is not allowed: expected a number in [0, 0.2]")


def test_unknown_parameter_and_chapter(capsys):
    assert main(["run", "01", "-p", "lossrate", "0.1"]) == 2
    assert "unknown parameter 'lossrate'" in capsys.readouterr().err
    assert main(["run", "42"]) == 2
    assert "unknown chapter '42'" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "fraglife.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for sub in ("run", "bench"):
        assert sub in out.stdout
