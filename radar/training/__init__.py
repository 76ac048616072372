"""Training: the one trainer every detector shares (:mod:`~radar.training.trainer`), and
training, reusing and calibrating a run's detectors (:mod:`~radar.training.fit`)."""
