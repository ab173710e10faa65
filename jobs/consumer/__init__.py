"""The Spark consumer job: tweets from Kafka -> windowed aggregates in the store, and a raw archive.

Run it with ``python -m jobs.consumer [options]`` (``--help`` lists them). Its modules, by concern: options,
kafka_source, parsing, aggregation, sinks, progress, queries, session, and run (run() and main()); why it works
the way it does: docs/design.md, "The Spark job".
"""
