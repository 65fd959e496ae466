"""The toolkit's tools: generation, drift check, spec lint, docs, demo, benchmarks (`python -m tools.X`)."""
