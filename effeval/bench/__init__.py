"""Side-by-side benchmarks: ``python -m effeval.bench <name>`` -> results/bench/<name>.json."""
