"""The grid beyond one process: cost model, shards, phases, submission through submitit, progress."""
