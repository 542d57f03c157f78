"""Throwaway servers on loopback, for the benchmark and the test suite (never used in production)."""
