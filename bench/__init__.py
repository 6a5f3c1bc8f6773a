"""`make bench`: throughput and latency of the control plane and of its peers on one PostgreSQL.

Nothing here runs under `make test`; tests never assert speed. See bench/README.md.
"""
