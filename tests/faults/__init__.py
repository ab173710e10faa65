"""Fault scenarios: ``make faults`` (``python -m tests.faults``) runs each against the real
local broker and real Spark, and prints one line per scenario:

    NAME: sent X, acked Y, stored Z, lost L, duplicated D, ok        (or FAIL: the reason)

"lost" counts records acknowledged to the producer but absent where they should be stored;
"duplicated" counts records stored more than once. Not collected by pytest (no test_ files):
the scenarios run for minutes and print figures, so they have their own runner, which CI calls.
"""
