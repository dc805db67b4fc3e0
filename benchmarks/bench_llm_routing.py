"""Route prompts between a cheap and a strong LLM on real outcomes; rlmemory beside Vowpal Wabbit.

Data: RouteLLM's per-prompt correctness of Mixtral-8x7B-Instruct (cheap, "weak") and
GPT-4-1106 (strong) on the 14,042 MMLU questions (57 subject files, Apache-2.0, from
lm-sys/RouteLLM; its LICENSE lies beside the files). The files are read from ``--data``
(default ``../shared/data/routellm-mmlu`` relative to the repository) and never copied.

Task: the prompts are streamed once in a shuffled order; the router picks weak or strong,
earns ``correct - lambda * [strong]`` and sees only the chosen model's correctness
(progressive validation: every decision is made before its outcome is learned). Each
``lambda`` of a sweep is one fresh pass and gives a point (share of strong calls,
accuracy). PGR(share) = (accuracy - accuracy_weak) / (accuracy_strong - accuracy_weak);
**online APGR** is the area under the monotone upper hull of (0, 0), the points and
(1, 1). Routing at random scores 0.5; the full-information router that knows every
subject's accuracies scores 0.707 (``oracle`` row). Rows: text only (the main row) and
text + subject label (one extra hashed feature).

Peers: Vowpal Wabbit ``--cb_explore_adf --squarecb -q sa`` on the same tokens as the
``TextFeaturizer``, in the same run and on the same shuffles.

Second task (if the ``chatterbot-corpus`` wheel is installed): every statement of its
English topic files is a request, one specialist per topic (21 actions), reward 1 when
the request goes to its topic's specialist; progressive accuracy over one shuffled pass.

    python benchmarks/bench_llm_routing.py            # 3 seeds, 7 lambdas (~6 min on 2 idle cores)
    python benchmarks/bench_llm_routing.py --quick    # 1 seed, 5 lambdas, 4,000 prompts
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import itertools

from bandit_common import machine_description, markdown_table
from rlmemory.features.sparse import SparseVector

from rlmemory.features.hashing import stable_hash
from rlmemory.features.text import TextFeaturizer
from rlmemory.learners.squarecb import SquareCBAgent

WEAK_COLUMN = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_COLUMN = "gpt-4-1106-preview"
ACTIONS = ("weak", "strong")
LAMBDAS = (0.0, 0.04, 0.08, 0.12, 0.16, 0.24, 0.4)
QUICK_LAMBDAS = (0.0, 0.06, 0.12, 0.2, 0.4)
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "routellm-mmlu"


@dataclass(frozen=True)
class Prompt:
    text: str
    subject: str
    weak_correct: bool
    strong_correct: bool


def load_prompts(folder: Path) -> list[Prompt]:
    """Every row of the ``mmlu_<subject>.csv`` files, in file order."""
    files = sorted(folder.glob("mmlu_*.csv"))
    if not files:
        raise SystemExit(f"no mmlu_*.csv files in {folder}; pass --data DIR")
    prompts = []
    for path in files:
        subject = path.stem.removeprefix("mmlu_")
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                prompts.append(
                    Prompt(
                        row["prompt"],
                        subject,
                        row[WEAK_COLUMN] == "True",
                        row[STRONG_COLUMN] == "True",
                    )
                )
    return prompts


# ------------------------------------------------------------------ APGR
def apgr(points: Sequence[tuple[float, float]], weak: float, strong: float) -> float:
    """Area under the monotone upper hull of (0, 0), the (share, PGR) points and (1, 1).

    >>> apgr([(0.5, 0.5)], 0.0, 1.0)
    0.5
    >>> round(apgr([(0.2, 0.8)], 0.0, 1.0), 3)
    0.8
    """
    gain = strong - weak
    hull_input = sorted({(0.0, 0.0), (1.0, 1.0), *((s, (a - weak) / gain) for s, a in points)})
    hull: list[tuple[float, float]] = []
    for point in hull_input:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    area, best = 0.0, 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(hull):
        low, high = max(best, y0), max(best, y1)
        area += (x1 - x0) * (low + high) / 2.0
        best = high
    return area


def _cross(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def oracle_apgr(prompts: Sequence[Prompt]) -> float:
    """The full-information router: subjects ordered by their strong-minus-weak gain."""
    by_subject: dict[str, list[Prompt]] = {}
    for prompt in prompts:
        by_subject.setdefault(prompt.subject, []).append(prompt)
    weak = sum(p.weak_correct for p in prompts)
    ordered = sorted(
        by_subject.values(),
        key=lambda group: -sum(p.strong_correct - p.weak_correct for p in group) / len(group),
    )
    points, strong_calls, correct = [], 0, weak
    for group in ordered:
        strong_calls += len(group)
        correct += sum(p.strong_correct - p.weak_correct for p in group)
        points.append((strong_calls / len(prompts), correct / len(prompts)))
    return apgr(points, *accuracies(prompts))


def accuracies(prompts: Sequence[Prompt]) -> tuple[float, float]:
    n = len(prompts)
    return sum(p.weak_correct for p in prompts) / n, sum(p.strong_correct for p in prompts) / n


# --------------------------------------------------------------- routers
class Router:
    """One fresh learner per pass: ``probabilities`` then ``learn``."""

    def probabilities(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def learn(self, index: int, action: int, reward: float, probability: float) -> None:
        raise NotImplementedError


class SquareCBRouter(Router):
    def __init__(self, vectors: Sequence[SparseVector], actions: Sequence[str], **options) -> None:
        self.vectors = vectors
        self.learner = SquareCBAgent("bench", None, list(actions), seed=0, **options)
        self.actions = list(actions)

    def probabilities(self, index: int) -> np.ndarray:
        scores = self.learner._predict(self.learner._features(self.vectors[index]))
        return self.learner._probabilities(scores)

    def learn(self, index: int, action: int, reward: float, probability: float) -> None:
        self.learner.update(self.vectors[index], self.actions[action], reward)


class VowpalRouter(Router):
    """Vowpal Wabbit's SquareCB with action-dependent features, fed the same tokens."""

    def __init__(
        self, lines: Sequence[str], actions: Sequence[str], seed: int, arguments: str
    ) -> None:
        import vowpalwabbit

        self.lines = lines
        self.actions = [f"|a {action}" for action in actions]
        self.workspace = vowpalwabbit.Workspace(
            f"{arguments} --quiet --random_seed {seed}", enable_logging=False
        )

    def probabilities(self, index: int) -> np.ndarray:
        example = [self.lines[index], *self.actions]
        pmf = np.asarray(self.workspace.predict(example), dtype=np.float64)
        return pmf / pmf.sum()

    def learn(self, index: int, action: int, reward: float, probability: float) -> None:
        example = [self.lines[index]]
        for k, line in enumerate(self.actions):
            example.append(f"0:{-reward}:{probability} {line}" if k == action else line)
        self.workspace.learn(example)

    def finish(self) -> None:
        self.workspace.finish()


def vw_line(tokens: Sequence[str]) -> str:
    """A VW shared line: the featuriser's tokens with VW's separators escaped."""
    cleaned = (t.replace(" ", "_").replace(":", ";").replace("|", "/") for t in tokens)
    return "shared |s " + " ".join(cleaned)


def progressive_pass(
    router: Router,
    order: np.ndarray,
    reward_of: Callable[[int, int], float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Route every index of ``order`` once; return the action taken for each."""
    taken = np.empty(order.size, dtype=np.int64)
    for position, index in enumerate(order.tolist()):
        probabilities = router.probabilities(index)
        cumulative = np.cumsum(probabilities)
        action = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        action = min(action, probabilities.size - 1)
        router.learn(index, action, reward_of(index, action), float(probabilities[action]))
        taken[position] = action
    if hasattr(router, "finish"):
        router.finish()
    return taken


# ------------------------------------------------------------ MMLU task
RouterFactory = Callable[[Sequence[SparseVector], Sequence[str]], Callable[[int], Router]]


def mmlu_routers(args: argparse.Namespace) -> dict[str, RouterFactory]:
    """The compared routers: rlmemory's SquareCB at its defaults and tuned, VW likewise."""

    def squarecb(options: dict[str, float]) -> RouterFactory:
        return lambda vectors, lines: lambda seed: SquareCBRouter(vectors, ACTIONS, **options)

    def vowpal(arguments: str) -> RouterFactory:
        return lambda vectors, lines: lambda seed: VowpalRouter(lines, ACTIONS, seed, arguments)

    routers = {
        "rlmemory SquareCBAgent (defaults)": squarecb({}),
        f"rlmemory SquareCBAgent {_options_text(args.squarecb)}": squarecb(args.squarecb),
        f"Vowpal Wabbit {args.vw}": vowpal(args.vw),
    }
    if args.vw_tuned:
        routers[f"Vowpal Wabbit {args.vw} {args.vw_tuned}"] = vowpal(f"{args.vw} {args.vw_tuned}")
    return routers


def _options_text(options: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in options.items())


def mmlu_points(
    make_router: Callable[[int], Router],
    prompts: Sequence[Prompt],
    lambdas: Sequence[float],
    seed: int,
) -> list[tuple[float, float]]:
    """(share of strong calls, accuracy) of one progressive pass per lambda."""
    order = np.random.default_rng(seed).permutation(len(prompts))
    weak = np.array([p.weak_correct for p in prompts], dtype=np.float64)
    strong = np.array([p.strong_correct for p in prompts], dtype=np.float64)
    points = []
    for cost in lambdas:

        def reward_of(index: int, action: int, cost: float = cost) -> float:
            return strong[index] - cost if action == 1 else weak[index]

        taken = progressive_pass(make_router(seed), order, reward_of, np.random.default_rng(seed))
        chosen = np.where(taken == 1, strong[order], weak[order])
        points.append((float(taken.mean()), float(chosen.mean())))
    return points


def run_mmlu(args: argparse.Namespace) -> None:
    prompts = load_prompts(Path(args.data))
    if args.limit:
        prompts = [prompts[i] for i in np.random.default_rng(0).permutation(len(prompts))][
            : args.limit
        ]
    weak, strong = accuracies(prompts)
    featurizer = TextFeaturizer(dimension=2**args.bits)
    started = time.perf_counter()
    text_vectors = [featurizer.sparse(p.text) for p in prompts]
    subject_vectors = [
        _with_subject(v, p.subject) for v, p in zip(text_vectors, prompts, strict=True)
    ]
    tokens = [featurizer.tokens(p.text) for p in prompts]
    text_lines = [vw_line(t) for t in tokens]
    subject_lines = [
        vw_line([*t, f"subject={p.subject}"]) for t, p in zip(tokens, prompts, strict=True)
    ]
    featurise_seconds = time.perf_counter() - started
    print(
        f"MMLU: {len(prompts)} prompts, accuracy weak {weak:.3f}, strong {strong:.3f}; "
        f"featurised in {featurise_seconds:.1f} s; lambdas {list(args.lambdas)}; "
        f"seeds {args.seeds}\n"
    )
    routers = mmlu_routers(args)
    rows = []
    for context, vectors, lines in (
        ("text only", text_vectors, text_lines),
        ("text + subject", subject_vectors, subject_lines),
    ):
        for router_name, factory in routers.items():
            started = time.perf_counter()
            scores = []
            for seed in range(args.seeds):
                points = mmlu_points(factory(vectors, lines), prompts, args.lambdas, seed)
                scores.append(apgr(points, weak, strong))
            seconds = (time.perf_counter() - started) / args.seeds / len(args.lambdas)
            rows.append(
                [
                    context,
                    router_name,
                    f"{np.mean(scores):.3f}",
                    f"{np.std(scores):.3f}",
                    " ".join(f"{s:.3f}" for s in scores),
                    f"{seconds:.1f}",
                ]
            )
            print(f"  {context:15s} {router_name:45s} APGR {np.mean(scores):.3f}", flush=True)
    rows.append(["(full information)", "per-subject oracle", f"{oracle_apgr(prompts):.3f}"])
    rows[-1] += ["", "", ""]
    rows.append(["(none)", "random routing", "0.500", "", "", ""])
    print()
    print(markdown_table(["context", "router", "online APGR", "std", "per seed", "s / pass"], rows))


def _with_subject(vector: SparseVector, subject: str) -> SparseVector:
    index = stable_hash(f"subject={subject}") % vector.dimension
    pairs = dict(zip(vector.indices.tolist(), vector.values.tolist(), strict=True))
    pairs[index] = pairs.get(index, 0.0) + 1.0
    return SparseVector.from_pairs(pairs, vector.dimension)


# ------------------------------------------------------- chatterbot task
def load_chatterbot() -> list[tuple[str, str]] | None:
    """(statement, topic) for every statement of the English chatterbot corpus, or None."""
    try:
        import chatterbot_corpus
        import yaml
    except ImportError:
        return None
    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    statements = []
    for path in sorted(folder.glob("*.yml")):
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        for conversation in document.get("conversations") or []:
            statements.extend((str(text), path.stem) for text in conversation)
    return statements


def run_chatterbot(args: argparse.Namespace) -> None:
    statements = load_chatterbot()
    if statements is None:
        print("\nchatterbot-corpus is not installed (pip install chatterbot-corpus): skipped")
        return
    topics = sorted({topic for _, topic in statements})
    featurizer = TextFeaturizer(dimension=2**args.chat_bits)
    vectors = [featurizer.sparse(text) for text, _ in statements]
    lines = [vw_line(featurizer.tokens(text)) for text, _ in statements]
    labels = np.array([topics.index(topic) for _, topic in statements])
    print(
        f"\nchatterbot-corpus: {len(statements)} statements, {len(topics)} topics "
        f"(one specialist each); largest topic {np.bincount(labels).max() / labels.size:.1%}"
    )
    routers: dict[str, Callable[[int], Router]] = {
        "rlmemory SquareCBAgent (defaults)": lambda seed: SquareCBRouter(vectors, topics),
        f"rlmemory SquareCBAgent {_options_text(args.squarecb)}": lambda seed: SquareCBRouter(
            vectors, topics, **args.squarecb
        ),
        f"Vowpal Wabbit {args.vw}": lambda seed: VowpalRouter(lines, topics, seed, args.vw),
    }
    rows = []
    for router_name, make_router in routers.items():
        accuracies_by_seed, late = [], []
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(statements))
            taken = progressive_pass(
                make_router(seed),
                order,
                lambda index, action: float(labels[index] == action),
                np.random.default_rng(seed),
            )
            right = taken == labels[order]
            accuracies_by_seed.append(right.mean())
            late.append(right[right.size // 2 :].mean())
        rows.append(
            [
                router_name,
                f"{np.mean(accuracies_by_seed):.3f}",
                f"{np.mean(late):.3f}",
                " ".join(f"{a:.3f}" for a in accuracies_by_seed),
            ]
        )
    rows.append(["random routing", f"{1 / len(topics):.3f}", f"{1 / len(topics):.3f}", ""])
    print(markdown_table(["router", "progressive accuracy", "second half", "per seed"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="RouteLLM MMLU folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 seed, 5 lambdas, 4,000 prompts")
    parser.add_argument("--limit", type=int, default=0, help="use this many prompts (0: all)")
    parser.add_argument("--bits", type=int, default=18, help="log2 of the hashed dimension")
    parser.add_argument("--chat-bits", type=int, default=16)
    parser.add_argument("--gamma", type=float, default=3.0, help="of the tuned SquareCB row")
    parser.add_argument("--learning-rate", type=float, default=0.2, help="likewise")
    parser.add_argument("--vw", default="--cb_explore_adf --squarecb -q sa")
    parser.add_argument(
        "--vw-tuned",
        default="",
        help="extra VW options for a second VW row, e.g. '--gamma_scale 3' (default: none)",
    )
    parser.add_argument("--skip-chatterbot", action="store_true")
    args = parser.parse_args()
    args.lambdas = LAMBDAS
    if args.quick:
        args.seeds, args.lambdas, args.limit = 1, QUICK_LAMBDAS, args.limit or 4000
    args.squarecb = {"gamma": args.gamma, "learning_rate": args.learning_rate}
    print(machine_description(["numpy", "vowpalwabbit", "chatterbot-corpus"]))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"tuned SquareCBAgent: {args.squarecb}; VW: {args.vw} (and {args.vw_tuned!r})\n")
    run_mmlu(args)
    if not args.skip_chatterbot:
        run_chatterbot(args)


if __name__ == "__main__":
    main()
