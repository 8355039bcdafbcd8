"""Executors run a build's video shards: in this process (local) or as Ray tasks on a cluster."""
