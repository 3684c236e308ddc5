"""Reports of a run: per case and summary (JSON), JUnit XML, HTML, merged shards, coverage."""
