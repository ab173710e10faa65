"""The Azure target (issue 6): HDInsight Kafka and Databricks Spark in two peered virtual networks.

For now only the plan exists (``python -m backend.azure plan --config FILE``): what the wizard
would create, with ARM types, ids, api-versions and estimated hourly costs. It makes no network
call; sign-in, provisioning, peering, teardown are still to be built.
"""
