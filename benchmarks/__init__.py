"""Benchmark commands: python -m benchmarks.<name>. (A regular package, so it wins over
the unrelated top-level `benchmarks` package that cchecksum installs in site-packages.)"""
