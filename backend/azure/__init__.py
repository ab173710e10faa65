"""The Azure target: HDInsight Kafka and Databricks Spark in two peered virtual networks, planned
(``python -m backend.azure plan --config FILE``), built and torn down by the Setup page's wizard.
"""
