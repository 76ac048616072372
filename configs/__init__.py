"""Shipped YAML configs, installed as the package ``radar_configs`` so `radar run` finds the
demo config on any install (see :func:`radar.config.shipped_config`)."""
