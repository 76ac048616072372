"""LogBERT's torch module: a randomly initialised BERT masked-LM plus the hypersphere centre.

The module knows nothing about masking or scoring (that is the detector's job).
It returns MLM logits only for the positions asked for, so neither training nor
scoring pays for a vocabulary projection at every position.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertForMaskedLM

from radar import PAD

from .config import LogBERTConfig


class LogBERTModel(nn.Module):
    """BERT encoder + MLM head over event indices, with the CLS (DIST) hypersphere centre.

    Buffers (saved in every checkpoint):

    * ``running_mean`` / ``running_count``: mean of the CLS states seen in training
      forward passes since the last :meth:`refresh_center`, updated in place with
      no extra pass over the data. A running mean rather than a raw sum keeps
      float32 exact enough over millions of sessions.
    * ``center`` / ``center_initialized``: the centre used by the VHM loss and the
      distance score. :meth:`refresh_center` (called at each epoch end) copies the
      running mean into it, so the loss pulls towards the previous epoch's mean,
      as in the reference implementation. Before the first refresh the current
      running mean stands in.
    """

    def __init__(self, config: LogBERTConfig, vocab_size: int):
        super().__init__()
        bert_config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_position_embeddings,
            hidden_dropout_prob=config.hidden_dropout_prob,
            attention_probs_dropout_prob=config.attention_probs_dropout_prob,
            type_vocab_size=1,
            pad_token_id=PAD,
            attn_implementation="sdpa",
        )
        self.mlm = BertForMaskedLM(bert_config)
        hidden = config.hidden_size
        self.register_buffer("center", torch.zeros(hidden))
        self.register_buffer("center_initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("running_mean", torch.zeros(hidden))
        self.register_buffer("running_count", torch.zeros((), dtype=torch.int64))
        # Typical NLL of each target index in normal sessions (see LogBERT.fit_scoring);
        # zero until fitted, which makes excess_nll equal the raw NLL.
        self.register_buffer("event_nll_baseline", torch.zeros(vocab_size))

    @property
    def vocab_size(self) -> int:
        return int(self.mlm.config.vocab_size)

    @property
    def max_positions(self) -> int:
        return int(self.mlm.config.max_position_embeddings)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                predict_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode sessions that already carry CLS (and SEP).

        :param input_ids: (B, T) indices with CLS at position 0, padded with 0.
        :param attention_mask: (B, T) bool or 0/1, True on real positions.
        :param predict_mask: (B, T) bool; logits are returned only where True, as
            (N, V) rows in row-major order. None returns (B, T, V) logits.
        :returns: ``(logits, cls_hidden)`` with ``cls_hidden`` of shape (B, H).
        """
        hidden = self.mlm.bert(input_ids, attention_mask=attention_mask.long()).last_hidden_state
        cls_hidden = hidden[:, 0]
        if self.training:
            self._accumulate(cls_hidden.detach())
        rows = hidden if predict_mask is None else hidden[predict_mask]
        return self.mlm.cls(rows), cls_hidden

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               predict_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Alias of calling the module (kept for readers who look for ``encode``)."""
        return self(input_ids, attention_mask, predict_mask)

    @torch.no_grad()
    def _accumulate(self, cls_hidden: torch.Tensor) -> None:
        n = cls_hidden.shape[0]
        if n == 0:
            return
        total = self.running_count + n
        batch_mean = cls_hidden.float().mean(dim=0)
        self.running_mean.add_((batch_mean - self.running_mean) * (n / total).float())
        self.running_count.copy_(total)

    def center_for_loss(self) -> torch.Tensor:
        """The centre the VHM loss and the distance score measure against."""
        return torch.where(self.center_initialized, self.center, self.running_mean)

    @torch.no_grad()
    def refresh_center(self) -> bool:
        """Make the running mean the centre and start a new one; False if nothing was seen."""
        if int(self.running_count) == 0:
            return False
        self.center.copy_(self.running_mean)
        self.center_initialized.fill_(True)
        self.running_mean.zero_()
        self.running_count.zero_()
        return True

    def gradient_checkpointing_enable(self, **kwargs) -> None:
        """Trade compute for memory in the encoder (passes through to transformers)."""
        enable = getattr(self.mlm, "activation_checkpointing_enable", None)
        if enable is None:    # transformers < 5 only has the old name
            enable = self.mlm.gradient_checkpointing_enable
        enable(**kwargs)
