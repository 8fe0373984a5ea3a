"""Stand-ins shared by the tests and the benchmarks."""
