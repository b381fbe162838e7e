"""Tests of the benchmark harness: pure parts without I/O, and one short real run."""
