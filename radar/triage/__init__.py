"""The triage page's data: the run's results as Parquet, groups of look-alike sessions,
and the verdicts people give (docs/triage.md)."""
