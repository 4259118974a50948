"""What researchers tune and measure with: synthetic data, evaluation, sweeps and benchmarks."""
