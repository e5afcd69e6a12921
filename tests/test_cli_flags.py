"""`-v` and `-q` work after the command as well as before it; `run --help` lists every output."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.site import outputs
from tests.feedserver import Server


@pytest.mark.parametrize(
    ("flags", "says_info"),
    [
        pytest.param(["-v", "run"], True, id="before"),
        pytest.param(["run", "-v"], True, id="after"),
        pytest.param(["run", "--verbose"], True, id="after, long"),
        pytest.param(["-q", "run", "-v"], True, id="after wins"),
        pytest.param(["-v", "run", "-q"], False, id="quiet after wins"),
        pytest.param(["-v", "run"], True, id="before stands when none after"),
        pytest.param(["run"], False, id="neither"),
    ],
)
def test_verbosity_before_or_after_the_command(
    project: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says_info: bool
) -> None:
    command = flags.index("run")
    argv = [*flags[:command], "--config", str(project / "config.toml"), *flags[command:]]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert (" new and 0 updated entries;" in err) == says_info, err


def test_quiet_after_the_command_keeps_only_errors(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("/feeds/rss20.xml", "/status/500"), encoding="utf-8")
    assert main(["--config", str(config), "run", "-q"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)


def test_run_help_lists_every_output() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for name, text in outputs.DESCRIPTIONS:
        assert f"  {name}" in done.stdout and text in done.stdout
    for name in outputs.fixed_files(["all"]):
        assert name.replace("all.", "<slug>.") in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("  aggregator ")


def test_topics_evaluate_takes_the_flags_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = Path(__file__).resolve().parent.parent
    labels = str(root / "tests" / "data" / "topics" / "labels.jsonl")
    config = str(root / "config.toml")
    assert main(["--config", config, "topics", "evaluate", labels, "-q"]) == 0
    assert "recall" in capsys.readouterr().out


@pytest.mark.parametrize("port", ["99999", "-1", "80a", "٣"])
def test_a_port_out_of_range_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(project / "config.toml"), "serve", f"--port={port}"])
    assert exited.value.code == 2
    assert "is not a port (0 to 65535)" in capsys.readouterr().err


def test_ctrl_c_while_a_source_is_being_added_says_only_that(
    project: Path, feedserver: Server
) -> None:
    """A command that writes nothing until it ends (sources add waits for the address
    to answer) says it was interrupted, not that a next run completes it; the config
    is as it was."""
    config = project / "config.toml"
    before = config.read_bytes()
    lines = interrupted_while_stalled(
        feedserver, "--config", str(config), "sources", "add", f"{feedserver.base}/stall"
    )
    assert lines == ["error: interrupted"]
    assert config.read_bytes() == before


def interrupted_while_stalled(
    feedserver: Server, *arguments: str, stop: signal.Signals = signal.SIGINT
) -> list[str]:
    """What ``aggregator ARGUMENTS`` said on stderr (its non-blank lines) when Ctrl-C
    (or ``stop``) came while it waited for the feed server's /stall, after checking it
    exited 128 + the signal's number."""
    # (The feed server lives for the whole session: a test before this one may have
    # asked /stall already. Waiting for a hit of this command's own, the signal no
    # longer came while it was starting, before its handler: found failing under load.)
    before = feedserver.hits("/stall")
    child = subprocess.Popen(
        [sys.executable, "-m", "aggregator", *arguments],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while feedserver.hits("/stall") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    child.send_signal(stop)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 128 + stop, stderr
    return [line for line in stderr.splitlines() if line.strip()]


def test_ctrl_c_during_a_run_is_one_line_and_stores_nothing(
    project: Path, feedserver: Server
) -> None:
    """Interrupted while a source's answer stalls: one line, exit 130, and the store
    holds nothing of the run."""
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + f'\n[[sources]]\nname = "stalls"\nurl = "{feedserver.base}/stall"\n',
        encoding="utf-8",
    )
    lines = interrupted_while_stalled(feedserver, "--config", str(config), "run")
    assert lines == ["error: interrupted; the next run completes what this one had not"]
    store = project / "state" / "aggregator.sqlite3"
    if store.exists():
        with sqlite3.connect(store) as db:
            assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 0


def test_sigterm_during_a_run_stops_it_as_ctrl_c_does(project: Path, feedserver: Server) -> None:
    # Found by review: SIGTERM (cron's timeout, systemd stopping the unit) killed the run
    # where it stood, silently, its temporary files left for the next run to remove.
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + f'\n[[sources]]\nname = "stalls"\nurl = "{feedserver.base}/stall"\n',
        encoding="utf-8",
    )
    lines = interrupted_while_stalled(
        feedserver, "--config", str(config), "run", stop=signal.SIGTERM
    )
    assert lines == ["error: terminated; the next run completes what this one had not"]
    store = project / "state" / "aggregator.sqlite3"
    if store.exists():
        with sqlite3.connect(store) as db:
            assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 0
    assert not [p for p in project.rglob("*.tmp")]


def test_ctrl_c_while_the_command_loads_is_one_line() -> None:
    # Found by review: Ctrl-C in the command's first few dozen milliseconds printed
    # Python's traceback of the import it stopped. The import is stopped here by the
    # interrupt itself, raised where the signal would raise it.
    script = (
        "import builtins\n"
        "import aggregator.__main__ as command\n"
        "load = builtins.__import__\n"
        "def stopped(name, *args, **kwargs):\n"
        "    if name == 'aggregator.cli':\n"
        "        raise KeyboardInterrupt\n"
        "    return load(name, *args, **kwargs)\n"
        "builtins.__import__ = stopped\n"
        "command.run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr, done.stdout) == (130, "error: interrupted\n", "")
