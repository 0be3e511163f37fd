"""The queue between web and workers: its contract, brokers, depth and the batching enqueuer."""
