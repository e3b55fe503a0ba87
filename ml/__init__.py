"""Pure quantitative code: no Dagster, no I/O."""
