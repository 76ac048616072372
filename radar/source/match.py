"""Link a log template or a raw log line to the logging statements that could print it.

Both sides become token lists (words, numbers, single punctuation marks; whitespace only
marks where a new word starts). A statement's slots and a template's wildcards
(``<*>``, ``<NUM>``, ``<IP>``...) are gap tokens. The weighted longest common
subsequence of the constant tokens aligns them; then every stretch between two aligned
tokens is judged:

- log text facing a slot is a value: free where its words look like values (hold a
  digit or a wildcard: ids, addresses, numbers), while each word of plain text costs
  :data:`TEXT_IN_SLOT`, so a short statement does not swallow any long message;
- statement text facing only a wildcard was generalised away by the template miner
  (half credit);
- anything else is unexplained on its side.

``score = 2 * matched / (statement weight + log weight - explained + penalties)``, 1.0
for a line the statement prints exactly. Candidates come from an inverted index of the
statements' words (IDF-weighted overlap) so only a few are aligned per query. Below
``min_score`` the answer is "no match": better no link than a wrong one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections import defaultdict

from radar.source.templates import Template, constant_length

GAP = None
WILDCARD = re.compile(r"<\*>|<[A-Z][A-Z0-9_]*>")
_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")
_CONTEXT = re.compile(r"\s*\[[^\]]*\]\s*(?=\S)")
_SEPARATORS = frozenset(":=,;()[]{}<>\"'")
_SPACES = re.compile(r"(?:\\\s)+")      # escaped whitespace in re.escape's output
TEXT_IN_SLOT = 0.35     # each word of plain text a slot has to swallow
ABSORBED_CREDIT = 0.5   # statement text a template's wildcard covers
EMPTY_WILDCARD = 0.3    # a template wildcard facing nothing in the statement
MIN_SCORE = 0.6
NEIGHBOUR = 0.05      # tie-break towards runs of adjacent matches
CANDIDATES = 12


def token_weight(text: str) -> float:
    if text.isalpha():
        return 1.0 if len(text) > 1 else 0.5
    if text.isdigit():
        return 0.3
    return 0.2


@dataclasses.dataclass(frozen=True)
class Tokens:
    """Texts (``None`` for a gap), weights, whether each token starts a new word, and
    whether its word is a value (holds a digit or a gap: ids, addresses, numbers)."""

    texts: tuple
    weights: tuple
    word_start: tuple
    in_value: tuple

    @property
    def words(self) -> set[str]:
        return {t.lower() for t in self.texts if t is not None and t.isalpha() and len(t) > 1}

    @property
    def constant_weight(self) -> float:
        return sum(w for t, w in zip(self.texts, self.weights) if t is not None)


def tokenize(pieces: list) -> Tokens:
    """Tokens of a list of text pieces and gaps (``None``)."""
    texts, weights, starts = [], [], []
    space = True            # whitespace (or the start) comes before the next token
    for piece in pieces:
        if piece is None:
            if not (texts and texts[-1] is None):
                texts.append(None)
                weights.append(0.0)
                starts.append(space)
            space = False
            continue
        position = 0
        for found in _TOKEN.finditer(piece):
            space = space or found.start() > position    # only whitespace is skipped
            texts.append(found.group())
            weights.append(token_weight(found.group()))
            starts.append(space)
            space, position = False, found.end()
        space = space or position < len(piece)
    return Tokens(tuple(texts), tuple(weights), tuple(starts), _value_words(texts, starts))


def _value_words(texts: list, starts: list) -> tuple:
    """Per token: whether its piece of word is a value. Pieces end at whitespace and at
    separators (``key=value``, ``name:value``), so ``environment:java-7`` keeps its text."""
    flags = [False] * len(texts)
    begin = 0
    for end in range(1, len(texts) + 1):
        if end == len(texts) or starts[end] or texts[end] in _SEPARATORS \
                or texts[end - 1] in _SEPARATORS:
            value = any(t is None or t.isdigit() for t in texts[begin:end])
            flags[begin:end] = [value] * (end - begin)
            begin = end
    return tuple(flags)


def mask_values(tokens: Tokens) -> Tokens:
    """A raw line with each value (ids, addresses, numbers) as one gap, as a template miner
    would mask it: values never match a statement's text, and fewer tokens align faster."""
    keep = [i for i in range(len(tokens.texts)) if not tokens.in_value[i] or i == 0
            or tokens.word_start[i] or not tokens.in_value[i - 1]]
    texts = [None if tokens.in_value[i] else tokens.texts[i] for i in keep]
    weights = [0.0 if tokens.in_value[i] else tokens.weights[i] for i in keep]
    return Tokens(tuple(texts), tuple(weights), tuple(tokens.word_start[i] for i in keep),
                  tuple(tokens.in_value[i] for i in keep))


def _without_context(text: str) -> str | None:
    """``text`` without a leading bracketed group, or None when it has none."""
    found = _CONTEXT.match(text)
    return text[found.end():] if found else None


def log_pieces(text: str) -> list:
    """A log template's text with its wildcards as gaps (a raw line has none)."""
    pieces: list = []
    last = 0
    for found in WILDCARD.finditer(text):
        pieces.extend([text[last:found.start()], GAP])
        last = found.end()
    pieces.append(text[last:])
    return pieces


def align_score(statement: Tokens, log: Tokens, absorbed_credit: float = ABSORBED_CREDIT
                ) -> tuple[float, float]:
    """(score in [0, 1], matched constant weight) of a statement template against a log
    (``absorbed_credit``: for statement text facing a gap of the log; none for a raw
    line, whose gaps are masked values, not generalised text)."""
    s_texts, s_weights = statement.texts, statement.weights
    l_texts = log.texts
    n, m = len(s_texts), len(l_texts)
    # table[i][j]: best matched weight of statement[:i] against log[:j]; a token whose
    # neighbour before it matches too counts a little more, so "src:" pairs with "src:"
    # and not with a colon further on.
    table = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        text, weight = s_texts[i - 1], s_weights[i - 1]
        before = s_texts[i - 2] if i > 1 else ""
        row, above = table[i], table[i - 1]
        for j in range(1, m + 1):
            left, up = row[j - 1], above[j]
            best = up if up > left else left                # noqa: FURB136 (hot loop)
            if text is not None and text == l_texts[j - 1]:
                gain = above[j - 1] + weight + (NEIGHBOUR if j > 1 and before == l_texts[j - 2]
                                                else 0.0)
                if gain > best:                             # noqa: PLR1730 (hot loop)
                    best = gain
            row[j] = best
    pairs = []
    i, j = n, m
    while i and j:
        if (s_texts[i - 1] is not None and s_texts[i - 1] == l_texts[j - 1]
                and table[i][j] > max(table[i - 1][j], table[i][j - 1])):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    matched = sum(s_weights[i] for i, _ in pairs)
    explained, penalty = _judge_gaps(statement, log, pairs, absorbed_credit)
    denominator = statement.constant_weight + log.constant_weight - explained + penalty
    if matched <= 0 or denominator <= 0:
        return 0.0, 0.0
    return min(1.0, 2 * matched / denominator), matched


def _judge_gaps(statement: Tokens, log: Tokens, pairs: list, absorbed_credit: float
                ) -> tuple[float, float]:
    """(weight explained by slots and wildcards, penalties) over the unaligned stretches."""
    explained = penalty = 0.0
    bounds = [(-1, -1)] + pairs + [(len(statement.texts), len(log.texts))]
    for (i0, j0), (i1, j1) in itertools.pairwise(bounds):
        s_range, l_range = range(i0 + 1, i1), range(j0 + 1, j1)
        slots = sum(1 for i in s_range if statement.texts[i] is None)
        wilds = sum(1 for j in l_range if log.texts[j] is None)
        if slots:
            log_weight = sum(log.weights[j] for j in l_range if log.texts[j] is not None)
            words = sum(1 for j in l_range if log.word_start[j] and not log.in_value[j])
            explained += log_weight
            penalty += TEXT_IN_SLOT * words
        elif wilds:
            s_weight = sum(statement.weights[i] for i in s_range
                           if statement.texts[i] is not None)
            explained += absorbed_credit * s_weight
            if not s_weight:
                penalty += EMPTY_WILDCARD * wilds
    return explained, penalty


@dataclasses.dataclass
class Link:
    """The best statement for one query, the runner-up, and whether it is good enough."""

    statement: dict | None           # None: no match
    score: float
    template: Template | None
    runner_up: dict | None
    runner_up_score: float
    same_text: list[dict]           # other statements that print the very same template


class Matcher:
    """Statements of an index, ready to be linked to templates and lines."""

    def __init__(self, statements: list[dict], min_score: float = MIN_SCORE,
                 candidates: int = CANDIDATES):
        self.statements, self.min_score, self.candidates = statements, min_score, candidates
        self.variants: list[tuple[int, Template, Tokens]] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for number, statement in enumerate(statements):
            for template in statement["templates"]:
                tokens = tokenize(template)
                if not tokens.words:
                    continue            # nothing constant to recognise it by
                for word in tokens.words:
                    postings[word].append(len(self.variants))
                self.variants.append((number, template, tokens))
        total = max(1, len(self.variants))
        self.idf = {word: math.log(1 + total / len(ids)) for word, ids in postings.items()}
        self.postings = dict(postings)
        self._patterns: dict[int, re.Pattern] = {}

    def link_template(self, text: str) -> Link:
        """The best statement for a template; a leading ``[...]`` group (context a logging
        framework adds, e.g. ``[instance: <*>]``) may be left out."""
        link = self._link(tokenize(log_pieces(text)), None)
        rest = _without_context(text)
        if rest is not None:
            other = self._link(tokenize(log_pieces(rest)), None)
            link = other if other.score > link.score else link
        return link

    def link_line(self, content: str, level: str | None = None) -> Link:
        """The best statement for a raw line's message (a leading ``[...]`` group may be
        left out, as for templates)."""
        link = self._link_line(content, level)
        rest = _without_context(content)
        if rest is not None and link.score < 1.0:
            other = self._link_line(rest, level)
            link = other if other.score > link.score else link
        return link

    def _link_line(self, content: str, level: str | None) -> Link:
        """Statements that print the line exactly (a regular expression per template) need
        no alignment; the best other candidate gives the runner-up."""
        log = mask_values(tokenize([content]))
        shortlist = self._shortlist(log)
        exact = [v for v in shortlist if self._pattern(v).fullmatch(content)]
        if not exact:
            return self._decide([self._scored(v, log, level, 0.0) for v in shortlist])
        rest = [v for v in shortlist if v not in exact][:1]
        rows = [self._row(v, 1.0, self.variants[v][2].constant_weight, level) for v in exact]
        return self._decide(rows + [self._scored(v, log, level, 0.0) for v in rest])

    def _link(self, log: Tokens, level: str | None) -> Link:
        return self._decide([self._scored(v, log, level) for v in self._shortlist(log)])

    def _shortlist(self, log: Tokens) -> list[int]:
        """The variants sharing the most (IDF-weighted) words with the log."""
        overlap: dict[int, float] = defaultdict(float)
        for word in log.words:
            for variant in self.postings.get(word, ()):
                overlap[variant] += self.idf[word]
        return sorted(overlap, key=overlap.__getitem__, reverse=True)[:self.candidates]

    def _pattern(self, variant: int) -> re.Pattern:
        pattern = self._patterns.get(variant)
        if pattern is None:
            pieces = [r".*?" if part is None else _SPACES.sub(r"\\s*", re.escape(part))
                      for part in self.variants[variant][1]]
            pattern = self._patterns[variant] = re.compile(r"\s*" + "".join(pieces) + r"\s*",
                                                           re.DOTALL)
        return pattern

    def _scored(self, variant: int, log: Tokens, level: str | None,
                absorbed_credit: float = ABSORBED_CREDIT) -> tuple:
        score, matched = align_score(self.variants[variant][2], log, absorbed_credit)
        return self._row(variant, score, matched, level)

    def _row(self, variant: int, score: float, matched: float, level: str | None) -> tuple:
        """A sortable row: score, same level as the line, matched weight, specificity."""
        number, template, _ = self.variants[variant]
        same_level = level is not None and self.statements[number]["level"] == level
        return (round(score, 4), same_level, matched, constant_length(template), -number,
                number, template)

    def _decide(self, scored: list[tuple]) -> Link:
        scored.sort(reverse=True)
        best_by_statement: dict[int, tuple] = {}
        for row in scored:
            best_by_statement.setdefault(row[5], row)
        ranked = list(best_by_statement.values())
        if not ranked:
            return Link(None, 0.0, None, None, 0.0, [])
        best = ranked[0]
        second = ranked[1] if len(ranked) > 1 else None
        same = [self.statements[row[5]] for row in ranked[1:]
                if row[6] == best[6] and row[0] == best[0]]
        matched = best[0] >= self.min_score
        return Link(self.statements[best[5]] if matched else None, best[0],
                    best[6] if matched else None,
                    self.statements[second[5]] if second else None,
                    second[0] if second else 0.0, same)
