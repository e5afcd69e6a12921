"""Managing the sources in config.toml: ``aggregator sources …``.

One module per job: :mod:`.configfile` edits the ``[[sources]]`` of config.toml
keeping the rest of the file byte for byte; :mod:`.add` turns what a user gives
(a site, a feed URL, a saved page) into a checked source; :mod:`.opml` imports
and exports OPML; :mod:`.status` lists each source's state from the store.
Feed discovery itself is :mod:`aggregator.live.discover`.
"""
