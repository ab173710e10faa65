"""What the console does between its pages and the pipeline: jobs, live monitor, views, targets, exposure."""
