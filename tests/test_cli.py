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
    for sub in ("run", "bench", "slides", "book", "talk"):
        assert sub in out.stdout


def test_kernels_talk_over_ipc_and_warn_nothing(capfd):
    """`fraglife run` starts kernels on private Unix sockets (no 'TCP without encryption' warning) and shuts
    them down without interrupting them."""
    import asyncio
    import os
    import stat

    from fraglife import runner

    signals = []

    async def start_and_stop():
        km = runner.kernel_manager_class()(kernel_name=runner.ensure_kernel())
        await km.start_kernel()
        send = km._async_signal_kernel

        async def record(signum):
            signals.append(signum)
            await send(signum)

        km._async_signal_kernel = record
        try:
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            kc.stop_channels()
            return km.transport, os.path.dirname(km.ip), stat.S_IMODE(os.stat(os.path.dirname(km.ip)).st_mode)
        finally:
            await km.shutdown_kernel(now=False)

    transport, folder, mode = asyncio.run(start_and_stop())
    assert transport == "ipc" and mode == 0o700
    assert signals == []  # no SIGINT at shutdown: no "KeyboardInterrupt caught in kernel" in the terminal
    assert not os.path.exists(folder)  # the sockets' folder goes with the kernel
    assert "without encryption" not in capfd.readouterr().err
