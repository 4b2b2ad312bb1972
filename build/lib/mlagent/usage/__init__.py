"""Cost estimation, the LLM call log, per-thread token budgets, and usage totals.

`prices` and `estimates` are pure (tools may import them); `meter` is the budget gate a
running turn uses; `service` answers the `/api/v1/usage` surface.
"""
