"""Running a build: the runner, shards, merging, the reserve top-up and the executors."""
