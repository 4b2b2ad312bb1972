"""`python -m bench`: run every benchmark in turn."""

from . import predict, runtime_bench

if __name__ == "__main__":
    runtime_bench.main()
    predict.main()
