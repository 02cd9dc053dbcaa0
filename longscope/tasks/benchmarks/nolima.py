"""NoLiMa (Modarressi et al., 2025): needles whose question shares no words with them, hidden in shuffled book
text at the run's lengths and depths, built from NoLiMa's published needle sets and haystack books.

Data (local only, the files NoLiMa's ``download_NoLiMa_data.sh`` fetches from the hub dataset
``amodaresi/NoLiMa``): a needle set, ``needlesets/needle_set.json`` (or ``needle_set_hard``, ``_w_CoT``,
``_ONLYDirect``, ``_MC``, ``_w_Distractor``), and the haystack books ``haystack/rand_shuffle/rand_book_N.txt``;
--data names the directory holding them (those sub-folders, or the files side by side).

A needle set is a list of experiments: ``id``, ``needle`` (with ``{CHAR}`` for the character and ``{1}``,
``{2}``... for a test's arguments), ``questions`` (question type -> question, e.g. ``onehop``, ``twohop``),
``tests`` (test id -> ``{"input_args": [...]}``, with ``gold_answers`` where the needle has no ``{CHAR}``),
``character_set`` (names the character is drawn from), and optionally ``distractors`` (question type -> a
sentence placed away from the needle) and ``task_template``. As NoLiMa's run_tests.py expands it: one test per
experiment x question type x test, the needle's placeholders filled one after another, the question's from the
question as written each time (so only its last placeholder present is filled, as NoLiMa does; the published
questions have one), the character drawn from ``character_set`` and is the gold answer.

Seed ``s`` asks test ``s mod T`` (of the T tests) over book ``(s div T) mod B``; the character is drawn from
the seed. The needle joins the end of a book line at the run's depth, as NoLiMa's BookHaystack places it
(" " + needle, then the line break); a distractor goes to a depth drawn outside a zone of 0.2 around the
needle, as NoLiMa draws it. NoLiMa's default prompt and system prompt ("You are a helpful assistant"), its
192-token cap and its ``contains`` metric (case-sensitive containment of the character's name) are the
defaults. NoLiMa's effective length is relative: the longest length whose score keeps 85% of the base score
(its mean over the three shortest lengths, NoLiMa's 250, 500 and 1K); the report shows it for every task
beside RULER's absolute one, with that base for NoLiMa's runs.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from longscope.cache import stable_hash
from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Corpus, Needle
from longscope.tasks.base import Task
from longscope.tasks.benchmarks.base import check_fields

# run_tests.py's DEFAULT_TASK_TEMPLATE (its {haystack} becomes our {context}); the space before "Return" is
# NoLiMa's.
TEMPLATE = (
    "You will answer a question based on the following book snippet:\n\n{haystack}\n\nUse the information "
    "provided in the book snippet to answer the question. Your answer should be short and based on either "
    "explicitly stated facts or strong, logical inferences.\n\nQuestion: {question}\n\n Return only the final "
    "answer with no additional explanation or reasoning."
)
SYSTEM = "You are a helpful assistant"  # the API connector's default system prompt, used in NoLiMa's runs
OUTPUT_CAP = 192  # max_tokens of NoLiMa's model configurations
METRICS = {
    "contains": "nolima_contains",
    "EM": "nolima_em",
    "lastline_EM": "nolima_lastline_em",
    "lastline_contains": "nolima_lastline_contains",
}
NEEDLE_SETS = (
    "needle_set",
    "needle_set_hard",
    "needle_set_w_CoT",
    "needle_set_ONLYDirect",
    "needle_set_MC",
    "needle_set_w_Distractor",
)
EXPERIMENT_FIELDS: dict[str, Any] = {"id": str, "needle": str, "questions": dict[str, str], "tests": dict}
DISTRACTOR_FREE_ZONE = 0.2  # BookHaystack's distractor_free_zone


@dataclass(frozen=True)
class NoLiMaTest:
    """One expanded test: what is hidden, what is asked, and who the answer is."""

    name: str  # "0401_T01_onehop": experiment, test and question type, as NoLiMa names its results
    needle: str  # with {CHAR} still open where the character is drawn per sample
    question: str
    characters: tuple[str, ...]  # the character set; empty when the gold answers are given
    gold_answers: tuple[str, ...]
    distractor: str | None
    template: str
    system: str
    question_type: str
    reasoning_type: str


@dataclass(frozen=True)
class NoLiMaData:
    tests: tuple[NoLiMaTest, ...]
    books: tuple[tuple[str, tuple[str, ...]], ...]  # (file name, lines)
    rejected: tuple[tuple[str, str], ...]


def expand(experiment: dict, ref: str) -> tuple[list[NoLiMaTest], list[tuple[str, str]]]:
    """One experiment of a needle set as its tests (run_tests.py's expansion), and the tests it cannot use."""
    tests: list[NoLiMaTest] = []
    rejected: list[tuple[str, str]] = []
    characters = experiment.get("character_set") or []
    template = experiment.get("task_template") or TEMPLATE
    if "{CHAR}" in experiment["needle"] and not (
        isinstance(characters, list) and characters and all(isinstance(c, str) for c in characters)
    ):
        return [], [(ref, "the needle names {CHAR} but 'character_set' is not a list of names")]
    if not isinstance(template, str) or "{haystack}" not in template or "{question}" not in template:
        return [], [(ref, "field 'task_template' must hold {haystack} and {question}")]
    distractors = experiment.get("distractors") or {}
    for question_type, question in experiment["questions"].items():
        for test_id, test in experiment["tests"].items():
            where = f"{ref}.tests.{test_id}"
            args = test.get("input_args") if isinstance(test, dict) else None
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                rejected.append((where, "field 'input_args' should be a list of texts"))
                continue
            gold = test.get("gold_answers", [])
            gold = [gold] if isinstance(gold, str) else gold
            if "{CHAR}" not in experiment["needle"] and not (
                isinstance(gold, list) and gold and all(isinstance(g, str) for g in gold)
            ):
                rejected.append((where, "no {CHAR} in the needle and no 'gold_answers' to score by"))
                continue
            needle, asked, distractor = experiment["needle"], question, None
            for number, arg in enumerate(args, start=1):
                placeholder = "{" + str(number) + "}"
                if placeholder in question:
                    asked = question.replace(placeholder, arg)  # from the question as written, as NoLiMa does
                if placeholder in needle:
                    needle = needle.replace(placeholder, arg)
                if placeholder in distractors.get(question_type, ""):
                    distractor = distractors[question_type].replace(placeholder, arg)
            tests.append(
                NoLiMaTest(
                    name=f"{experiment['id']}_{test_id}_{question_type}",
                    needle=needle,
                    question=asked,
                    characters=tuple(characters) if "{CHAR}" in needle else (),
                    gold_answers=() if "{CHAR}" in needle else tuple(gold),
                    distractor=distractor,
                    template=template,
                    system=experiment.get("system_prompt") or SYSTEM,
                    question_type=question_type,
                    reasoning_type=str(experiment.get("reasoning_type", "")),
                )
            )
    return tests, rejected


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"cannot read {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


@lru_cache(maxsize=4)
def _load(needle_file: str, book_files: tuple[str, ...], stamp: str) -> NoLiMaData:
    """The expanded tests of a needle set and the lines of each book (``stamp`` changes with the files)."""
    path = Path(needle_file)
    experiments = _json(path)
    if not isinstance(experiments, list):
        raise UsageError(f"{path} is not a NoLiMa needle set: it needs a list of experiments")
    tests: list[NoLiMaTest] = []
    rejected: list[tuple[str, str]] = []
    for index, experiment in enumerate(experiments):
        ref = f"{path.name}#{index}"
        reason = (
            f"not a JSON object ({type(experiment).__name__})"
            if not isinstance(experiment, dict)
            else check_fields(experiment, EXPERIMENT_FIELDS)
        )
        if reason is not None:
            rejected.append((ref, reason))
            continue
        found, bad = expand(experiment, ref)
        tests += found
        rejected += bad
    books = []
    for name in book_files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {name}: {exc}") from None
        lines = tuple(line for line in text.split("\n") if line.strip())
        if lines:
            books.append((Path(name).name, lines))
    if not tests:
        raise UsageError(f"{path} holds no usable NoLiMa test")
    if not books:
        raise UsageError(f"the haystack books ({', '.join(Path(b).name for b in book_files)}) hold no text")
    return NoLiMaData(tuple(tests), tuple(books), tuple(rejected))


@dataclass(frozen=True)
class NoLiMa(Task):
    """NoLiMa at the run's lengths and depths: ``nolima --data DIR`` (``nolima(needle_set=needle_set_hard)``)."""

    name: ClassVar[str] = "nolima"
    description: ClassVar[str] = (
        "NoLiMa: needles without literal overlap with the question, in shuffled books"
    )
    uses_depth: ClassVar[bool] = True
    reads_data: ClassVar[bool] = True
    breakdowns: ClassVar[tuple[str, ...]] = ("depth", "question_type", "reasoning_type")
    # The fields of a needle set's experiment, for the custom loader's "looks like" hint.
    shapes: ClassVar[dict[str, dict[str, Any]]] = {"": {"needle": str, "questions": dict, "tests": dict}}
    # NoLiMa's base score averages its three shortest lengths (250, 500, 1K); the report reads this.
    relative_base_lengths: ClassVar[int] = 3
    departures: ClassVar[tuple[str, ...]] = (
        "Lengths: NoLiMa's context_length counts the haystack alone (the needle, prompt and reply come on top); "
        "here the run's length is the whole request (system prompt, template, question, haystack, needle and "
        "the 192-token cap), so a length holds less book text than NoLiMa's length of the same number.",
        "The haystack starts at a line drawn from the seed and runs on line by line (cycling past the book's "
        "end); NoLiMa cuts a window of the book around the needle's position at the token. Both books are "
        "shuffled lines, so the text around the needle is drawn alike; a context may begin mid-line here to "
        "make up the exact length.",
        "NoLiMa's base score is the mean over its three shortest lengths (250, 500 and 1K tokens of haystack); "
        "the report takes the mean over the three shortest lengths run, so a run gets NoLiMa's base when its "
        "three shortest lengths are those (as whole requests: each plus the prompt and the 192-token cap). "
        "With three lengths or fewer the base is the mean of them all.",
        "The character is drawn with Python's random from the seed; NoLiMa draws it with numpy seeded by 42 + "
        "the experiment number + the book number, one draw per depth. The same character set is used.",
    )

    needle_set: str = "needle_set"  # which published needle set (file name without .json)
    metric_name: str = "contains"  # NoLiMa's metric: contains, EM, lastline_EM, lastline_contains
    data: str | None = None
    max_new_tokens: int = OUTPUT_CAP

    def __post_init__(self) -> None:
        if self.metric_name not in METRICS:
            raise UsageError(
                f"nolima: metric_name must be one of {', '.join(METRICS)} (got {self.metric_name!r})"
            )
        if not self.needle_set or "/" in self.needle_set or self.needle_set.endswith(".json"):
            raise UsageError(
                f"nolima: needle_set names a needle set file without .json, e.g. {', '.join(NEEDLE_SETS[:3])} "
                f"(got {self.needle_set!r})"
            )

    @property
    def metric(self) -> str:  # type: ignore[override]
        return METRICS[self.metric_name]

    @property
    def diffusion(self) -> float:
        return 0.8  # no literal overlap: the needle must be found by a latent association

    @property
    def scope(self) -> float:
        return 0.1  # one needle answers

    def label(self) -> str:
        """``nolima(needle_set=needle_set_hard)``: as the command line writes it, without the data path."""
        defaults = type(self)()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name != "data" and getattr(self, f.name) != getattr(defaults, f.name)
        ]
        return self.name + (f"({','.join(changed)})" if changed else "")

    def with_data(self, data: str | None) -> NoLiMa:
        return dataclasses.replace(self, data=data) if self.data is None and data is not None else self

    # --- data -------------------------------------------------------------------------------------------

    def files(self) -> tuple[Path, list[Path]]:
        """The needle set file and the haystack books under --data."""
        if self.data is None:
            raise UsageError(
                "nolima reads local files only: download the hub dataset amodaresi/NoLiMa (needlesets/ and "
                "haystack/rand_shuffle/) and pass --data DIR"
            )
        root = Path(self.data).expanduser()
        if not root.is_dir():
            raise UsageError(
                f"--data {self.data}: NoLiMa reads a directory holding needlesets/ and haystack/"
            )
        name = f"{self.needle_set}.json"
        needles = next((p for p in (root / "needlesets" / name, root / name) if p.is_file()), None)
        if needles is None:
            raise UsageError(f"--data {self.data} holds no needlesets/{name} (nor {name})")
        for folder in (root / "haystack" / "rand_shuffle", root / "rand_shuffle", root / "haystack", root):
            books = sorted(folder.glob("*.txt"))
            if books:
                return needles, books
        raise UsageError(f"--data {self.data} holds no haystack books (haystack/rand_shuffle/*.txt)")

    def loaded(self) -> NoLiMaData:
        needles, books = self.files()
        return _load(str(needles), tuple(str(b) for b in books), self._stamp(needles, books))

    @staticmethod
    def _stamp(needles: Path, books: list[Path]) -> str:
        return stable_hash([[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in [needles, *books]])

    def rejected(self) -> list[tuple[str, str]]:
        return list(self.loaded().rejected)

    def cache_token(self) -> str:
        return self._stamp(*self.files())

    def check(self, backend: Backend, length: int) -> None:
        if length <= self.max_new_tokens:
            raise UsageError(
                f"{self.label()}: length {length} leaves no room for the prompt after the output budget "
                f"max_new_tokens={self.max_new_tokens}"
            )
        self.loaded()

    # --- samples ----------------------------------------------------------------------------------------

    def pick(self, seed: int) -> tuple[NoLiMaTest, int]:
        """The test and the book (index) seed ``seed`` asks."""
        data = self.loaded()
        count = len(data.tests)
        return data.tests[seed % count], (seed // count) % len(data.books)

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        data = self.loaded()
        test, book = self.pick(seed)
        # The seed alone (not where the data lies) draws the character, the start line and the distractor.
        rng = random.Random(int(stable_hash([self.name, self.needle_set, seed]), 16))
        character = rng.choice(test.characters) if test.characters else None
        needle = test.needle.replace("{CHAR}", character) if character else test.needle
        question = test.question.replace("{CHAR}", character) if character else test.question
        answers = (character,) if character else test.gold_answers
        where = 0.5 if depth is None else depth
        needles = [Needle(needle, where)]
        distractor_depth = None
        if test.distractor is not None:
            distractor_depth = distractor_place(where, rng)
            needles.append(Needle(test.distractor, distractor_depth))
        name, lines = data.books[book]
        source = Corpus(
            f"nolima:{name}:{stable_hash(lines)[:12]}", tuple("\n" + line for line in lines), name
        )
        template = test.template.replace("{", "{{").replace("}", "}}")
        template = template.replace("{{haystack}}", "{context}").replace("{{question}}", "{question}")
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=template,
            turns=[Turn(question=question, answers=answers)],
            source=source,
            start=rng.randrange(len(lines)),
            needles=needles,
            system=test.system,
            evidence=[needle],
            metadata={
                "test": test.name,
                "question_type": test.question_type,
                "reasoning_type": test.reasoning_type,
                "needle_set": self.needle_set,
                "book": name,
                "character": character,
                "distractor_depth": distractor_depth,
            },
        )


def distractor_place(depth: float, rng: random.Random) -> float:
    """Where NoLiMa puts a distractor for a needle at ``depth``: uniformly over the context outside a zone of
    ``DISTRACTOR_FREE_ZONE`` on either side of the needle (BookHaystack's draw, for lengths of 500 and up)."""
    zone = DISTRACTOR_FREE_ZONE
    left = max(0.0, depth - 2 * zone)
    right = max(0.0, 1 - (depth + 2 * zone))
    draw = rng.uniform(0, left + right)
    return depth + zone + (draw - left) if draw > left else draw + zone
