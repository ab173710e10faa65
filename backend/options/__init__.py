"""Each job's options, described once (contract.py): the CLI, the console's Start and the Azure wizard use them."""
