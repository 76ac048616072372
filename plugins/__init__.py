"""Built-in RADAR detector plugins (installed as the ``radar_plugins`` package).

Each sub-package registers itself through the ``radar`` entry-point group in
pyproject.toml, exactly as a third-party plugin would.
"""
