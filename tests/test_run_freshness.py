"""``aggregator run`` does not ask a source whose last answer is still fresh; ``--force``
does. Through the CLI's entry point, against the local feed server's request log."""

from __future__ import annotations

from pathlib import Path

from aggregator.cli import main
from tests.feedserver import Server


def test_run_skips_a_fresh_source_and_force_asks_it(tmp_path: Path, feedserver: Server) -> None:
    # rss20.xml says <ttl>60</ttl>: fresh for an hour after each read.
    config = tmp_path / "config.toml"
    config.write_text(
        f"[store]\npath = '{tmp_path / 'store.sqlite3'}'\n"
        f"[feeds]\ndirectory = '{tmp_path / 'feeds'}'\n\n"
        f"[[sources]]\nname = 'nato'\nurl = '{feedserver.base}/feeds/rss20.xml'\n",
        "utf-8",
    )
    path = "/feeds/rss20.xml"
    before = feedserver.hits(path)
    assert main(["--config", str(config), "-q", "run"]) == 0
    assert feedserver.hits(path) == before + 1
    assert main(["--config", str(config), "-q", "run"]) == 0
    assert feedserver.hits(path) == before + 1  # fresh: not asked
    assert main(["--config", str(config), "-q", "run", "--force"]) == 0
    assert feedserver.hits(path) == before + 2
    assert feedserver.log[-1][2] is not None  # a conditional request, answered 304
    assert (tmp_path / "feeds" / "all.rss").exists()
