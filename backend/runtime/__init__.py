"""What runs a job on this machine: Maven-resolved jars, the Spark session, detached processes, job files."""
