"""CUDA paths: mixed precision training and scoring. Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch
from toy import ToyDetector

from radar.config import load_config
from radar.device import resolve_precision
from radar.training.trainer import Trainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_amp_training_on_cuda_reduces_loss(tmp_path, precision):
    from test_train import make_corpus

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    corpus = make_corpus(tmp_path)
    config = load_config(None, [f"output_dir={tmp_path}", "training.num_workers=0",
                                f"training.precision={precision}", "training.total_steps=30",
                                "training.num_epochs=10", "training.batch_size=8",
                                "training.learning_rate=0.05", "training.log_interval=5"])
    detector = ToyDetector(noisy=False)
    trainer = Trainer(detector, detector.build_model(corpus.vocab, corpus.window), config, corpus, corpus,
                      device=torch.device("cuda"), output_dir=tmp_path, log=lambda m: None)
    assert (trainer.scaler is not None) == (precision == "fp16")
    result = trainer.fit()
    assert result.step == 30 and result.best_val_loss is not None
    assert torch.isfinite(torch.tensor(result.last_val_loss))


def test_auto_precision_prefers_bf16_on_cuda():
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    assert resolve_precision("auto", torch.device("cuda")) == expected
