"""Prompt pairing, the only place pairs are made: exact-length recorded/live pairs of the bank
(:func:`equal_length_pairs`) and transfer pairs, a recursive and a baseline prompt of exactly equal token
length in the pre-registered order (:func:`transfer_pairs`).

Exact-length pairs are the primary design. A bank without enough of them (a researcher's own prompts of
natural lengths) gets the registered **unmatched variant** (:func:`unmatched_pairs`, chosen by
:func:`choose_pairs`): the exact pairs first, then unique pairs by nearest token length (greedy, closest
first). A pair of the variant may differ in length (n recipient tokens, m donor tokens): the patch covers the
shared positions 0 … min(n, m) − 2 (:class:`harness.engine.patch_specs.Alignment` ``SHARED_PREFIX``, see
:meth:`TransferPair.aligned`), the recipient's own later tokens stay its own, and the report states the
variant and every pair's length difference (:func:`pairing_summary`).

See :mod:`harness.transfer` for the order and how claims select pairs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from itertools import zip_longest
from typing import Any, TypeVar

from harness.engine.patch_specs import ActivationPatchSpec, Alignment, KVPatchSpec
from harness.engine.tokens import encode
from harness.models import LoadedModel
from harness.prompts.bank import LEVELS, PAIR_KINDS, Prompt, PromptBank, PromptPair, Tokenizer, content_token_count

__all__ = [
    "EXACT_DESIGN_MINIMUM", "DonorLevelBlock", "PairRole", "PairSelection", "TransferPair", "choose_pairs", "donor_level_blocks",
    "equal_length_pairs", "make_pair", "nearest_length_pairs", "pairing_summary", "select_pairs", "transfer_pairs",
    "unmatched_pairs",
]

PatchT = TypeVar("PatchT", KVPatchSpec, ActivationPatchSpec)


def equal_length_pairs(
    bank: PromptBank,
    tokenizer: Tokenizer,
    kind: str = "recursive_baseline",
    rematch: bool = False,
) -> list[PromptPair]:
    """Pairs of ``kind`` whose two prompts have exactly equal content-token counts under ``tokenizer``.

    First the recorded pairs that are exactly equal under this tokenizer (in id order). With
    ``rematch=True`` the prompts of the two groups that are in no such pair are then matched by exact
    token count (within each count, in id order: a maximum matching, since equal count is an
    equivalence); those pairs get ids ``auto:<first>~<second>`` and their counts under the key ``"live"``.
    Each prompt occurs at most once in the result.
    """
    counts = {p.id: content_token_count(p.text, tokenizer) for p in bank.prompts}
    exact = [p for p in bank.pairs(kind) if counts[p.first] == counts[p.second]]
    if not rematch:
        return exact
    used = {m for p in exact for m in (p.first, p.second)}
    group_first, group_second = PAIR_KINDS[kind]
    buckets: dict[int, list[str]] = defaultdict(list)
    for p in bank.group(group_second):
        if p.id not in used:
            buckets[counts[p.id]].append(p.id)
    extra = []
    for p in bank.group(group_first):
        if p.id in used or not buckets.get(counts[p.id]):
            continue
        partner = buckets[counts[p.id]].pop(0)
        n = counts[p.id]
        extra.append(
            PromptPair(id=f"auto:{p.id}~{partner}", kind=kind, first=p.id, second=partner, token_counts={"live": (n, n)})
        )
    return exact + extra


class PairRole(str, Enum):
    """Which prompt of a :class:`TransferPair` plays a part: A (recursive), B (baseline), B' (other baseline) or
    A' (other recursive)."""

    RECURSIVE = "recursive"
    BASELINE = "baseline"
    OTHER_BASELINE = "other_baseline"
    OTHER_RECURSIVE = "other_recursive"


@dataclass(frozen=True)
class TransferPair:
    """A recursive prompt and a baseline prompt of exactly equal token length (``ids`` = model token ids), or,
    with ``unmatched``, a pair of the registered unmatched variant whose lengths may differ.

    ``other_baseline`` is a different baseline prompt of the same token length (the cross-baseline donor),
    or None when the bank has none; in the unmatched variant it is the baseline of nearest length.
    ``other_recursive`` likewise is a different recursive prompt of the recursive prompt's token length (the
    same-length recursive donor of the reverse patch's contrast), chosen by the same rule among recursive prompts.
    """

    id: str
    recursive: Prompt
    baseline: Prompt
    recursive_ids: tuple[int, ...]
    baseline_ids: tuple[int, ...]
    other_baseline: Prompt | None = None
    other_baseline_ids: tuple[int, ...] | None = None
    unmatched: bool = False
    other_recursive: Prompt | None = None
    other_recursive_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.unmatched and len(self.recursive_ids) != len(self.baseline_ids):
            raise ValueError(
                f"pair {self.id!r}: {self.recursive.id} has {len(self.recursive_ids)} tokens and "
                f"{self.baseline.id} {len(self.baseline_ids)}; a transfer pair needs exactly equal lengths"
            )
        self._check_other("baseline", self.other_baseline, self.other_baseline_ids, self.baseline, self.baseline_ids)
        self._check_other("recursive", self.other_recursive, self.other_recursive_ids, self.recursive,
                          self.recursive_ids)
        every = (self.recursive_ids, self.baseline_ids, self.other_baseline_ids or (0, 0),
                 self.other_recursive_ids or (0, 0))
        if self.unmatched and any(len(ids) < 2 for ids in every):
            raise ValueError(f"pair {self.id!r}: every prompt of an unmatched pair needs at least 2 tokens")

    def _check_other(self, role: str, other: Prompt | None, other_ids: tuple[int, ...] | None, own: Prompt,
                     own_ids: tuple[int, ...]) -> None:
        """Raise ValueError unless the optional second prompt of ``role`` comes with its ids, differs from the pair's
        own prompt of that role and, in an exact-length pair, has its length."""
        if (other is None) != (other_ids is None):
            raise ValueError(f"pair {self.id!r}: other_{role} and other_{role}_ids go together")
        if other is None:
            return
        if other.id == own.id:
            raise ValueError(f"pair {self.id!r}: the other {role} prompt must differ from the pair's {role} prompt")
        if not self.unmatched and len(other_ids or ()) != len(own_ids):
            raise ValueError(f"pair {self.id!r}: the other {role} prompt {other.id} differs in length")

    @property
    def n_tokens(self) -> int:
        """Token count of the baseline prompt (BOS included): of each prompt in an exact-length pair."""
        return len(self.baseline_ids)

    @property
    def length_difference(self) -> int:
        """Recursive minus baseline token count (0 for an exact-length pair)."""
        return len(self.recursive_ids) - len(self.baseline_ids)

    def has(self, role: PairRole) -> bool:
        """Whether the pair has a prompt for ``role``."""
        if role is PairRole.OTHER_BASELINE:
            return self.other_baseline is not None
        if role is PairRole.OTHER_RECURSIVE:
            return self.other_recursive is not None
        return True

    def prompt(self, role: PairRole) -> tuple[Prompt, tuple[int, ...]]:
        """The prompt playing ``role`` and its token ids."""
        if role is PairRole.RECURSIVE:
            return self.recursive, self.recursive_ids
        if role is PairRole.BASELINE:
            return self.baseline, self.baseline_ids
        if role is PairRole.OTHER_RECURSIVE:
            if self.other_recursive is None or self.other_recursive_ids is None:
                raise ValueError(f"pair {self.id!r} has no other recursive prompt of its length "
                                 f"({len(self.recursive_ids)} tokens)")
            return self.other_recursive, self.other_recursive_ids
        if self.other_baseline is None or self.other_baseline_ids is None:
            raise ValueError(f"pair {self.id!r} has no other baseline of its length ({self.n_tokens} tokens)")
        return self.other_baseline, self.other_baseline_ids

    def aligned(self, patch: PatchT | None, recipient: PairRole, donor: PairRole | None) -> PatchT | None:
        """``patch`` for this pair with ``recipient`` and ``donor``: unchanged when their lengths are equal (the
        primary design, so its cache keys and numbers stay as they are), else with ``SHARED_PREFIX`` alignment:
        the recipient's positions 0 … min(n, m) − 2 take the donor's, its own later tokens stay."""
        if patch is None or donor is None:
            return patch
        n, m = len(self.prompt(recipient)[1]), len(self.prompt(donor)[1])
        return patch if n == m else replace(patch, alignment=Alignment.SHARED_PREFIX)


def make_pair(lm: LoadedModel, recursive: Prompt, baseline: Prompt, *, pair_id: str | None = None,
              other_baseline: Prompt | None = None, unmatched: bool = False,
              other_recursive: Prompt | None = None) -> TransferPair:
    """A :class:`TransferPair` from two prompts (e.g. a donor of another level onto a baseline recipient).

    Raises ValueError when the token lengths under ``lm``'s tokenizer differ, unless ``unmatched``.
    """
    other_ids = tuple(encode(lm.tokenizer, other_baseline.text)) if other_baseline is not None else None
    other_rec_ids = tuple(encode(lm.tokenizer, other_recursive.text)) if other_recursive is not None else None
    return TransferPair(
        id=pair_id or f"{recursive.id}~{baseline.id}",
        recursive=recursive,
        baseline=baseline,
        recursive_ids=tuple(encode(lm.tokenizer, recursive.text)),
        baseline_ids=tuple(encode(lm.tokenizer, baseline.text)),
        other_baseline=other_baseline,
        other_baseline_ids=other_ids,
        unmatched=unmatched,
        other_recursive=other_recursive,
        other_recursive_ids=other_rec_ids,
    )


def _level_interleaved(pairs: list[TransferPair]) -> list[TransferPair]:
    by_level: dict[int, list[TransferPair]] = defaultdict(list)
    for p in pairs:
        by_level[p.recursive.level or 0].append(p)
    rounds = zip_longest(*(by_level[level] for level in sorted(by_level)))
    return [p for group in rounds for p in group if p is not None]


def transfer_pairs(lm: LoadedModel, bank: PromptBank) -> list[TransferPair]:
    """All exact-length recursive/baseline pairs of ``bank`` under ``lm``'s tokenizer, in the pre-registered
    order of the module docstring, each with its cross-baseline donor where one exists.

    The cross-baseline donor of baseline B is the next baseline prompt in id order (cyclically) with the
    same token count as B, B excluded; the other recursive prompt of A is chosen by the same rule among the
    recursive prompts (:func:`_next_of_same_length`).
    """
    others = {group: _next_of_same_length(lm, bank.group(group)) for group in ("baseline", "recursive")}
    out = []
    for rec_base in equal_length_pairs(bank, lm.tokenizer, rematch=True):
        recursive, baseline = bank.get(rec_base.first), bank.get(rec_base.second)
        out.append(make_pair(lm, recursive, baseline, pair_id=rec_base.id, other_baseline=others["baseline"].get(baseline.id),
                             other_recursive=others["recursive"].get(recursive.id)))
    return _level_interleaved(out)


def _next_of_same_length(lm: LoadedModel, prompts: Sequence[Prompt]) -> dict[str, Prompt]:
    """For each prompt id, the next prompt of ``prompts`` in id order (cyclically) with the same token count under
    ``lm``'s tokenizer, itself excluded; prompts without such a partner are absent."""
    by_length: dict[int, list[Prompt]] = defaultdict(list)
    for p in prompts:
        by_length[len(encode(lm.tokenizer, p.text))].append(p)
    out = {}
    for same in by_length.values():
        if len(same) > 1:
            out.update({p.id: same[(i + 1) % len(same)] for i, p in enumerate(same)})
    return out


def _nearest_other(prompt: Prompt, candidates: Sequence[Prompt], lengths: dict[str, int]) -> Prompt | None:
    """The prompt of ``candidates`` other than ``prompt`` whose token length is nearest to its (ties: id order)."""
    others = [o for o in candidates if o.id != prompt.id]
    return min(others, key=lambda o: (abs(lengths[o.id] - lengths[prompt.id]), o.id)) if others else None


def select_pairs(
    lm: LoadedModel, bank: PromptBank, n: int, *, roles: Sequence[PairRole] = (PairRole.RECURSIVE, PairRole.BASELINE)
) -> list[TransferPair]:
    """The first ``n`` pairs of :func:`transfer_pairs` that have a prompt for every role in ``roles``."""
    if n < 1:
        raise ValueError(f"select_pairs: n must be >= 1, got {n}")
    eligible = [p for p in transfer_pairs(lm, bank) if all(p.has(r) for r in roles)]
    return eligible[:n]


def nearest_length_pairs(lm: LoadedModel, bank: PromptBank, exclude: Collection[str] = ()) -> list[TransferPair]:
    """Unique recursive/baseline pairs by nearest token length among the prompts not in ``exclude``.

    Greedy, closest first: every (recursive, baseline) candidate sorted by |length difference|, then recursive
    id, then baseline id; a candidate is taken when neither prompt is taken yet. Each pair's cross-baseline
    donor is the other baseline of nearest length to its baseline (ties: id order), its other recursive prompt
    the other recursive prompt of nearest length to its recursive prompt. Pairs are ``unmatched``,
    with ids ``nearest:<recursive>~<baseline>``, in level-interleaved order of the matching.
    """
    lengths = {p.id: len(encode(lm.tokenizer, p.text)) for g in ("recursive", "baseline") for p in bank.group(g)}
    recursive = [p for p in bank.group("recursive") if p.id not in exclude]
    baselines = [p for p in bank.group("baseline") if p.id not in exclude]
    candidates = sorted(((abs(lengths[r.id] - lengths[b.id]), r.id, b.id, r, b) for r in recursive for b in baselines),
                        key=lambda c: c[:3])
    taken: set[str] = set()
    out = []
    for _, _, _, r, b in candidates:
        if r.id in taken or b.id in taken:
            continue
        taken |= {r.id, b.id}
        out.append(make_pair(lm, r, b, pair_id=f"nearest:{r.id}~{b.id}", unmatched=True,
                             other_baseline=_nearest_other(b, bank.group("baseline"), lengths),
                             other_recursive=_nearest_other(r, bank.group("recursive"), lengths)))
    return _level_interleaved(out)


def unmatched_pairs(lm: LoadedModel, bank: PromptBank) -> list[TransferPair]:
    """The registered unmatched variant: the exact-length pairs of :func:`transfer_pairs` (same ids, order and
    equal-length cross-baseline donors and other recursive prompts; a pair without one gets the prompt of nearest
    length), then :func:`nearest_length_pairs` of the prompts in none of them. Every pair is ``unmatched``."""
    exact = transfer_pairs(lm, bank)
    used = {p.id for pair in exact for p in (pair.recursive, pair.baseline)}
    nearest = nearest_length_pairs(lm, bank, exclude=used)
    lengths = {p.id: len(encode(lm.tokenizer, p.text)) for g in ("recursive", "baseline") for p in bank.group(g)}
    out = []
    for pair in exact:
        other = pair.other_baseline or _nearest_other(pair.baseline, bank.group("baseline"), lengths)
        other_rec = pair.other_recursive or _nearest_other(pair.recursive, bank.group("recursive"), lengths)
        out.append(make_pair(lm, pair.recursive, pair.baseline, pair_id=pair.id, other_baseline=other, unmatched=True,
                             other_recursive=other_rec))
    return out + nearest


@dataclass(frozen=True)
class PairSelection:
    """The pairs a claim runs on and the design they come from.

    ``variant`` is False for the primary design (exact-length pairs only) and True for the unmatched variant;
    ``exact_available`` counts the exact-length pairs having every role, ``wanted`` the pairs asked for.
    ``candidates`` is the whole qualifying list of the design that ``pairs`` opens (capped at ``cap`` when
    :func:`choose_pairs` was given one): the list whose runs of pairs are the work units of a condition run
    (:func:`harness.transfer.run_condition`), so claims that ask for different numbers of the same pairs share units.
    """

    pairs: list[TransferPair]
    variant: bool
    exact_available: int
    wanted: int
    candidates: list[TransferPair] = field(default_factory=list)


EXACT_DESIGN_MINIMUM = 16
"""Exact-length pairs stay the design of a claim when the bank has at least this many of them (or the claim's whole
n, if smaller), even when the planned n is larger than the bank can supply (the claim is then INCONCLUSIVE with
n < planned); below it the registered unmatched variant takes over. 16 is a design choice, made with the variant
before any of its data: fewer exact pairs than that give a bootstrap CI over pairs too coarse to prefer them over
a larger set of nearest-length pairs."""


def choose_pairs(
    lm: LoadedModel, bank: PromptBank, n: int, *, roles: Sequence[PairRole] = (PairRole.RECURSIVE, PairRole.BASELINE),
    keep: Callable[[TransferPair], bool] = lambda p: True, cap: int | None = None,
) -> PairSelection:
    """Up to ``n`` pairs having every role in ``roles`` and satisfying ``keep``: exact-length pairs when the bank
    has enough of them (at least ``min(n, EXACT_DESIGN_MINIMUM)``; then the first ``n``, or all of them when the
    bank has fewer than ``n``), else the first ``n`` of :func:`unmatched_pairs` that qualify (which start with
    those exact pairs). ``n`` is the claim's planned n capped by ``--n``; ``cap`` is ``--n`` itself (None without
    it), which caps the selection's ``candidates``."""
    if n < 1:
        raise ValueError(f"choose_pairs: n must be >= 1, got {n}")

    def ok(p: TransferPair) -> bool:
        return all(p.has(r) for r in roles) and keep(p)

    exact = [p for p in transfer_pairs(lm, bank) if ok(p)]
    if len(exact) >= min(n, EXACT_DESIGN_MINIMUM):
        return PairSelection(exact[:n], False, len(exact), n, exact[:cap])
    unmatched = [p for p in unmatched_pairs(lm, bank) if ok(p)]
    return PairSelection(unmatched[:n], True, len(exact), n, unmatched[:cap])


def pairing_summary(selection: PairSelection) -> dict[str, Any]:
    """The pair design for a claim record: which design, how many exact pairs the bank had, and for the
    unmatched variant each pair's recursive − baseline token difference (and its mean |difference|)."""
    design = "unmatched variant (nearest token length, shared prefix)" if selection.variant else "exact token length"
    out: dict[str, Any] = {"design": design, "exact_pairs_available": selection.exact_available,
                           "pairs_wanted": selection.wanted}
    if selection.variant:
        diffs = {p.id: p.length_difference for p in selection.pairs}
        out["length_difference"] = diffs
        out["mean_abs_length_difference"] = sum(map(abs, diffs.values())) / len(diffs) if diffs else None
        out["unequal_pairs"] = sum(1 for d in diffs.values() if d)
    return out


@dataclass(frozen=True)
class DonorLevelBlock:
    """A baseline recipient with one donor pair per level: ``pairs[ℓ − 1]`` has the level-ℓ donor as its
    recursive prompt. ``used_fraction[ℓ − 1]`` is the share of that donor's tokens the patch can use
    (the recipient's length over the donor's)."""

    baseline: Prompt
    pairs: tuple[TransferPair, ...]
    used_fraction: tuple[float, ...]


def _truncated_pair(lm: LoadedModel, donor: Prompt, recipient: Prompt) -> TransferPair:
    """The pair of ``recipient`` with ``donor``'s first ``len(recipient)`` token ids as its recursive ids."""
    donor_ids = tuple(encode(lm.tokenizer, donor.text))
    recipient_ids = tuple(encode(lm.tokenizer, recipient.text))
    return TransferPair(f"level:{recipient.id}<-{donor.id}", donor, recipient, donor_ids[: len(recipient_ids)],
                        recipient_ids)


def donor_level_blocks(lm: LoadedModel, bank: PromptBank, n: int) -> tuple[list[DonorLevelBlock], int]:
    """The first ``n`` baseline recipients (in :func:`transfer_pairs` order) that have a
    donor of every level, and how many baselines qualified in all.

    Token positions align one to one, and no recursive prompt of every level has a baseline's exact length,
    so a donor must be at least as long as the recipient: the patch then covers every recipient prefix
    position with the donor's first ``n − 1`` tokens (the shared-prefix alignment of DESIGN §4.3; the
    donor's later tokens are not used). Donor rule, fixed before any data: at the level of the
    baseline's own pair, its exact-length recorded partner (that pair itself, id unchanged, so its run is
    shared with kv_transfer); at every other level ℓ, among the level-ℓ prompts at least as long as the
    recipient, in id order, the one at index ``(block index) mod (their number)``, so donors rotate across
    blocks instead of one prompt serving every block. Such a donor's pair carries the donor's first
    ``len(recipient)`` token ids as ``recursive_ids`` (id ``level:<baseline>~<donor>``).
    """
    if n < 1:
        raise ValueError(f"donor_level_blocks: n must be >= 1, got {n}")
    lengths = {p.id: len(encode(lm.tokenizer, p.text)) for p in bank.group("recursive")}
    by_level = {level: bank.group("recursive", level=level) for level in LEVELS}
    blocks: list[DonorLevelBlock] = []
    qualified = 0
    for pair in transfer_pairs(lm, bank):
        own = pair.recursive.level
        need = pair.n_tokens
        eligible = {level: [p for p in by_level[level] if lengths[p.id] >= need] for level in LEVELS}
        if own not in LEVELS or not all(eligible.values()):
            continue
        qualified += 1
        if len(blocks) == n:
            continue
        index = len(blocks)
        chosen = []
        for level in LEVELS:
            if level == own:
                chosen.append(pair)
            else:
                donors = eligible[level]
                chosen.append(_truncated_pair(lm, donors[index % len(donors)], pair.baseline))
        fractions = tuple(need / lengths[c.recursive.id] for c in chosen)
        blocks.append(DonorLevelBlock(pair.baseline, tuple(chosen), fractions))
    return blocks, qualified
