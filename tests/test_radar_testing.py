"""radar.testing, the kit plugins test themselves with: every built-in detector keeps the
contract through it, each check fails on a detector broken the way it guards against,
expected failures are strict xfails, and RADAR itself never imports the kit or pytest."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from radar import Detector, SessionScores, eval_mode
from radar.testing import CONTRACT_CHECKS, DetectorContract, DetectorQuality, DetectorUnderTest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the built-in detectors, through the kit ------------------------------------------

class TestLogBERTContract(DetectorContract):
    detector_name = "logbert"
    config: ClassVar[dict] = {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 128, "max_position_embeddings": 40,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


class TestDeepLogContract(DetectorContract):
    detector_name = "deeplog"
    config: ClassVar[dict] = {"hidden_size": 32, "embedding_size": 16, "num_layers": 1}


class TestLSTMContract(DetectorContract):
    detector_name = "lstm"
    config: ClassVar[dict] = {"hidden_size": 32, "embedding_size": 16}


class TestTCNContract(DetectorContract):
    detector_name = "tcn"
    config: ClassVar[dict] = {"channels": 32, "num_levels": 3}


class TestCountsContract(DetectorContract):
    """The counts plugin's ``pca``: fitted, not trained, and order-blind."""

    detector_name = "pca"


class TestCountsQuality(DetectorQuality):
    """The opt-in floors on a fitted, order-blind detector (shuffled is skipped)."""

    detector_name = "pca"


def test_every_builtin_detector_is_checked_through_the_kit():
    checked = {cls.detector_name for cls in globals().values()
               if isinstance(cls, type) and issubclass(cls, DetectorContract)
               and cls is not DetectorContract}
    assert checked == {"logbert", "deeplog", "lstm", "tcn", "pca"}


# -- each check fails on a detector broken the way it guards against ----------------

class Rarest(Detector):
    """A healthy tiny detector: NLL of the rarest event under learned frequencies."""

    name = "kit_rarest"
    order_aware = False

    def build_model(self, vocab, window):
        model = torch.nn.Module()
        model.logits = torch.nn.Parameter(torch.zeros(len(vocab)))
        model.register_buffer("offset", torch.zeros(()))
        return model

    def _nll(self, model, batch):
        nll = -torch.log_softmax(model.logits.float(), dim=0)[batch.input_ids]
        return nll.masked_fill(~batch.attention_mask, 0.0)

    def training_loss(self, model, batch):
        return self._nll(model, batch).sum() / batch.lengths.sum()

    def score_sessions(self, model, batch):
        with eval_mode(model):
            nll = self._nll(model, batch)
        position = nll.argmax(dim=1)
        explanations = [[{"position": int(p), "event_id": None, "rank": None,
                          "probability": None, "kind": "event"}] for p in position]
        return SessionScores(score=nll.amax(dim=1) - model.offset,
                             explanations=explanations)


class BatchDependent(Rarest):
    def score_sessions(self, model, batch):
        out = super().score_sessions(model, batch)
        out.score = out.score - out.score.mean()
        return out


class Random(Rarest):
    def score_sessions(self, model, batch):
        out = super().score_sessions(model, batch)
        out.score = out.score + torch.rand(len(batch))
        return out


class StateOnTheDetector(Rarest):
    """Keeps what fit_scoring learns on itself, so a checkpoint loses it."""

    offset_ = 0.0

    def fit_scoring(self, model, batches):
        self.offset_ = 1.0

    def score_sessions(self, model, batch):
        out = super().score_sessions(model, batch)
        out.score = out.score - self.offset_
        return out


class OddExplanation(Rarest):
    def score_sessions(self, model, batch):
        out = super().score_sessions(model, batch)
        out.explanations[0][0]["kind"] = "surprise"
        return out


class ClaimsOrder(Rarest):
    order_aware = True


class ReadsOrder(Rarest):
    """order_aware = False, yet the first event weighs double."""

    def score_sessions(self, model, batch):
        out = super().score_sessions(model, batch)
        out.score = out.score + self._nll(model, batch)[:, 0]
        return out


class ClaimsFitted(Rarest):
    trainable = False


class DivergentLoss(Rarest):
    def training_loss(self, model, batch):
        return super().training_loss(model, batch) * float("nan")


class ScalarPerBatch(Rarest):
    def score_sessions(self, model, batch):
        out = super().score_sessions(model, batch)
        out.score = out.score.mean()
        return out


class UnsteadyValidation(Rarest):
    def validation_loss(self, model, batch):
        return self.training_loss(model, batch) + torch.rand(())


BROKEN = {
    "batch_independent": BatchDependent,
    "deterministic": Random,
    "checkpoint_round_trip": StateOnTheDetector,
    "explanation_format": OddExplanation,
    "trainable_flag": ClaimsFitted,
    "learns": DivergentLoss,
    "score_format": ScalarPerBatch,
    "validation_loss": UnsteadyValidation,
}


@pytest.mark.parametrize("check", sorted(BROKEN))
def test_a_check_fails_on_the_detector_it_guards_against(check):
    healthy = DetectorUnderTest(Rarest.name, Rarest)
    CONTRACT_CHECKS[check](healthy)
    broken = DetectorUnderTest(Rarest.name, BROKEN[check])
    with pytest.raises(AssertionError):
        CONTRACT_CHECKS[check](broken)


@pytest.mark.parametrize("cls", [ClaimsOrder, ReadsOrder])
def test_the_order_flag_check_fails_when_the_flag_is_wrong(cls):
    CONTRACT_CHECKS["order_flag"](DetectorUnderTest(Rarest.name, Rarest))
    with pytest.raises(AssertionError, match="order_aware"):
        CONTRACT_CHECKS["order_flag"](DetectorUnderTest(Rarest.name, cls))


FAKE_DETECTOR = """
import torch

from radar import Detector


class KitFake(Detector):
    name = "NAME"
"""
LAZY_PLUGIN = """
from radar import hookimpl


@hookimpl
def register_detectors(register):
    from MODULE import KitFake
    register(KitFake)
"""


def test_registration_checks_need_a_lazy_entry_point(fake_dist, monkeypatch):
    """Registered lazily by a module an entry point names: both checks pass. The same
    plugin importing its detector module (and torch) on import fails the lazy check; a
    plugin loaded through RADAR_PLUGINS, no entry point, and a class nothing registers
    fail the registration check."""
    site = fake_dist("kit-fake", {"kit_fake": "kit_fake_plugin"},
                     {"kit_fake_plugin": LAZY_PLUGIN.replace("MODULE", "kit_fake_detector"),
                      "kit_fake_detector": FAKE_DETECTOR.replace("NAME", "kit_fake")})
    subject = DetectorUnderTest("kit_fake")
    CONTRACT_CHECKS["registered"](subject)
    CONTRACT_CHECKS["registered_lazily"](subject)

    eager = "from kit_fake_detector import KitFake\n" + LAZY_PLUGIN
    (site / "kit_fake_plugin.py").write_text(eager.replace("MODULE", "kit_fake_detector"))
    with pytest.raises(AssertionError, match="imports kit_fake_detector"):
        CONTRACT_CHECKS["registered_lazily"](DetectorUnderTest("kit_fake"))

    (site / "kit_local_plugin.py").write_text(LAZY_PLUGIN.replace("MODULE", "kit_local"))
    (site / "kit_local.py").write_text(FAKE_DETECTOR.replace("NAME", "kit_local"))
    monkeypatch.setenv("RADAR_PLUGINS", "kit_local_plugin")
    with pytest.raises(AssertionError, match="no entry point"):
        CONTRACT_CHECKS["registered"](DetectorUnderTest("kit_local"))
    with pytest.raises(AssertionError, match="no detector 'kit_missing'"):
        CONTRACT_CHECKS["registered"](DetectorUnderTest("kit_missing", Rarest))


# -- expected failures ----------------------------------------------------------------

PLUGIN_TESTS = """
from radar.testing import DetectorContract
from kit_detectors import BatchDependent, Rarest


class TestBroken(DetectorContract):
    detector_cls = BatchDependent
    expected_failures = {"batch_independent": "scores are centred on the batch mean"}


class TestFixed(DetectorContract):
    detector_cls = Rarest
    expected_failures = {"batch_independent": "was centred on the batch mean"}
"""


def test_expected_failures_are_strict_xfails_with_their_reason(pytester):
    header = "import torch\n\nfrom radar import Detector, SessionScores, eval_mode\n\n\n"
    pytester.makepyfile(kit_detectors=header + inspect.getsource(Rarest) + "\n\n"
                        + inspect.getsource(BatchDependent),
                        test_plugin=PLUGIN_TESTS)
    result = pytester.runpytest("-k", "batch_independent or deterministic", "-rfxX",
                                "-p", "no:cacheprovider")
    # Broken: its declared failure xfails; Fixed: the declaration fails as XPASS(strict).
    result.assert_outcomes(passed=2, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)] was centred on the batch mean"])
    result.stdout.fnmatch_lines(["FAILED *TestFixed::test_batch_independent*"])
    result.stdout.fnmatch_lines([
        "XFAIL *TestBroken::test_batch_independent - scores are centred on the batch mean"])


def test_an_expected_failure_must_name_a_check_and_give_a_reason():
    with pytest.raises(TypeError, match="names no check: \\['batch_independant'\\]"):
        type("TestTypo", (DetectorContract,),
             {"expected_failures": {"batch_independant": "typo"}})
    with pytest.raises(TypeError, match="give a reason"):
        type("TestNoReason", (DetectorContract,), {"expected_failures": {"learns": ""}})
    with pytest.raises(TypeError, match="names no check"):      # quality is not contract
        type("TestQuality", (DetectorContract,),
             {"expected_failures": {"detects_unseen": "order-blind"}})


# -- RADAR itself does not depend on the kit ------------------------------------------

def test_radar_never_imports_the_kit_or_pytest():
    """pytest is a test dependency only: no module of radar (outside radar/testing) or of
    the built-in plugins imports radar.testing or pytest."""
    offenders = []
    for path in [*(ROOT / "radar").rglob("*.py"), *(ROOT / "plugins").glob("*/*.py")]:
        if "testing" in path.relative_to(ROOT).parts[:2]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "pytest" or n.startswith(("pytest.", "radar.testing")) for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_checks_load_without_pytest():
    """Only the pytest base classes need pytest, and they load on first use."""
    from radar.testing.sessions import imported_by

    assert imported_by("radar.testing", ["pytest", "radar.testing.contract"]) == {
        "pytest": False, "radar.testing.contract": False}


# -- docs/plugins.md shows the real usage ---------------------------------------------

def kit_docs_section() -> str:
    text = (ROOT / "docs" / "plugins.md").read_text()
    match = re.search(r"^## Testing your plugin with radar\.testing\n(.*?)(?=^## )", text,
                      re.MULTILINE | re.DOTALL)
    assert match, "docs/plugins.md has no '## Testing your plugin with radar.testing'"
    return match.group(1)


def kit_classes(source: str, name: str) -> dict[str, dict]:
    """The kit subclasses ``source`` defines, by name, with the attributes they set."""
    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)  # noqa: S102 - the doc's own example
    return {key: {attr: value for attr, value in vars(value).items()
                  if attr in ("detector_name", "detector_cls", "config", "expected_failures")}
            for key, value in namespace.items()
            if isinstance(value, type) and issubclass(value, (DetectorContract, DetectorQuality))
            and value not in (DetectorContract, DetectorQuality)}


def test_the_docs_example_is_the_example_plugins_test_file():
    """Each class of the doc's example is in examples/radar-unigram/tests/test_contract.py
    with the same settings (test_example_plugin.py runs that file)."""
    (block,) = re.findall(r"```python\n(.*?)```", kit_docs_section(), re.DOTALL)
    documented = kit_classes(block, "docs/plugins.md (radar.testing example)")
    path = ROOT / "examples" / "radar-unigram" / "tests" / "test_contract.py"
    real = kit_classes(path.read_text(), str(path))
    assert documented and {name: real.get(name) for name in documented} == documented


def test_the_docs_table_lists_every_check():
    rows = re.findall(r"^\| `(\w+)` \|", kit_docs_section(), re.MULTILINE)
    assert rows == list(CONTRACT_CHECKS)
