"""The data layer: streaming reader, validation, prepared cache, split, synthetic data."""
