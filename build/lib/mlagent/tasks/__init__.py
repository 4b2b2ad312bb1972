"""Agent tasks (seed 001): a task is a turn of the same agent, on the same event log."""
