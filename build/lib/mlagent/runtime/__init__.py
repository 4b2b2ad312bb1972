"""The runtime: sessions, turns, the workers that run them, cancellation, idle
eviction and restart recovery. Surfaces call `ResponsesService`; nothing else."""
