"""`python -m bench`: run every benchmark in turn."""

from . import runtime_bench

if __name__ == "__main__":
    runtime_bench.main()
