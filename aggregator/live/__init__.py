"""Live feeds: fetching over HTTP, parsing RSS/Atom safely, and cleaning what they say."""
