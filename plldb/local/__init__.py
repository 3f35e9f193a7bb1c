"""The offline cloud: AWS played on one machine, for the tests, the benchmarks and the demo."""
