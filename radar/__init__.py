"""RADAR: plugin-based ensemble framework for log anomaly detection."""

__version__ = "0.1.0"
