"""Score calibration, ensemble combination and severity."""
