"""The ``model`` config section of the LogBERT detector, validated when it is built.

Keys mirror the user's ``model:`` block (BERT sizes) plus LogBERT's own: the
hypersphere weight, the training mask rate, the scoring rule and how scoring masks
positions. The user's ``training.mask_prob`` key is read into ``mask_prob`` here
(see :func:`radar.config.build_config`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from radar import ConfigError, SectionChecks

SCORES = ("max_excess_nll", "max_nll", "mean_nll", "miss_ratio", "distance")


@dataclass
class LogBERTConfig(SectionChecks):
    """LogBERT sizes and scoring options; the defaults are BERT-base.

    ``vocab_size`` is a cap, not the embedding size: the model gets exactly one
    row per entry of the training :class:`~radar.data.vocab.EventVocab` (events
    plus 5 specials), so a smaller vocabulary never wastes memory. Building fails
    when the vocabulary is larger than the cap (0 disables the check), so an
    unexpected explosion of templates is caught before training starts.
    """

    vocab_size: int = 10000
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    # Append SEP after the last event so the model sees where a session ends;
    # that is what lets it notice truncated sessions. Costs one position.
    append_sep: bool = True
    # Also train and score the SEP position as a target ("the session ends here"),
    # an extension of the paper: without it a truncated session (every event
    # normal, the end missing) cannot surprise a masked-LM. Needs append_sep.
    predict_end: bool = True
    # Share of target positions masked in each training step (the MLM objective).
    mask_prob: float = 0.15
    # Weight of the hypersphere (VHM) loss: mean squared distance per hidden unit
    # of the CLS (DIST) state to the centre, so the weight does not depend on width.
    vhm_weight: float = 0.1
    # Which per-session number is the anomaly score (the others go to extras).
    # max_excess_nll: the largest NLL above that event's typical NLL in normal
    # sessions, so an event that is always hard to predict does not flag every
    # session holding it (README.md, "Why max_excess_nll"); mean_nll dilutes one bad
    # event in a long session, miss_ratio hinges on top_g, distance is weakest.
    score: str = "max_excess_nll"
    # A position is a "miss" when its true event is not among the top_g predictions.
    top_g: int = 3
    # Scoring masks every event once: each session is run ceil(1 / ratio) times,
    # pass r masking the events at positions p with p % passes == r.
    score_mask_ratio: float = 0.25
    # How many of the most surprising positions each session's explanation lists.
    explain_top_k: int = 3

    def __post_init__(self) -> None:
        self.check_positive("hidden_size", "num_hidden_layers", "num_attention_heads",
                            "intermediate_size", "max_position_embeddings", "top_g")
        if self.vocab_size < 0 or self.explain_top_k < 0:
            raise ConfigError("model.vocab_size and model.explain_top_k must be >= 0")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"model.hidden_size ({self.hidden_size}) must be divisible by "
                              f"model.num_attention_heads ({self.num_attention_heads})")
        self.check_dropout("hidden_dropout_prob", "attention_probs_dropout_prob")
        if not 0.0 < self.score_mask_ratio <= 1.0:
            raise ConfigError("model.score_mask_ratio must be in (0, 1], "
                              f"got {self.score_mask_ratio}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"models.logbert.mask_prob must be in (0, 1), got "
                              f"{self.mask_prob}")
        if self.vhm_weight < 0:
            raise ConfigError(f"model.vhm_weight must be >= 0, got {self.vhm_weight}")
        if self.predict_end and not self.append_sep:
            raise ConfigError("model.predict_end needs model.append_sep: true (the end is "
                              "predicted at the SEP position)")
        if self.score not in SCORES:
            raise ConfigError(f"model.score must be one of {', '.join(SCORES)}; "
                              f"got {self.score!r}")

    @property
    def num_specials(self) -> int:
        """Positions LogBERT adds to every session: CLS, plus SEP when ``append_sep``."""
        return 2 if self.append_sep else 1

    @property
    def max_events(self) -> int:
        """The longest event window that fits ``max_position_embeddings``."""
        return self.max_position_embeddings - self.num_specials

    @property
    def scoring_passes(self) -> int:
        """Forward passes per session when scoring (each masks a disjoint stride)."""
        # The epsilon keeps 1 / 0.25 from rounding up to 5 through float error.
        return max(1, math.ceil(1.0 / self.score_mask_ratio - 1e-9))
