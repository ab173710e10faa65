"""The pipeline's long-running jobs, each a CLI: ``python -m jobs.producer``, ``python -m jobs.consumer``."""
