"""`python -m bench [--quick]`: run every side-by-side benchmark in turn (bench/README.md)."""

import sys

from . import agent_run, event_append, get_response, predict, rest_grpc, streams

if __name__ == "__main__":
    quick = ["--quick"] if "--quick" in sys.argv[1:] else []
    for bench in (agent_run, get_response, event_append, streams, rest_grpc):
        bench.main(quick)
    predict.main(quick)
