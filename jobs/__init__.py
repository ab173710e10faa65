"""The pipeline's jobs, each a CLI: the long-running ``python -m jobs.producer`` and ``python -m jobs.consumer``,
and ``python -m jobs.create_topic``, the one-off topic creation the Azure wizard runs on Databricks."""
