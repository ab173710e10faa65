"""``python -m jobs.consumer``, the Databricks launcher's run of it, and ``spark-submit jobs/consumer/__main__.py``.

On a cluster, ship ``backend`` for the Python workers (``--py-files``: the store, the message
contract and the sentiment scorer they import) and install vaderSentiment, pandas and pyarrow.
"""

import os
import sys

if __package__ in (None, ""):  # run as a file (spark-submit): import the package from the project folder
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path for path in sys.path if os.path.abspath(path or os.curdir) != here]  # not its modules bare
    sys.path.insert(0, os.path.dirname(os.path.dirname(here)))

from jobs.consumer.run import main  # after the path is set

if __name__ == "__main__":
    sys.exit(main())
