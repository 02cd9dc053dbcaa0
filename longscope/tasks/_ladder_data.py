"""Entity tables and document templates for the difficulty ladder's multi-document QA: made-up people, towns
and companies, so no answer can come from what a model already knows.

Surnames and companies come in two disjoint halves: the asked documents (and their look-alikes) draw from the
first, the filler documents from the second, so the filler can never state a fact about an asked entity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = tuple(
    """
Mara Ilya Corin Tess Bram Nell Odile Piet Rhea Silas Ula Vera Wim Xenia Yorick Zelda Alder Bettina Cyrus
Dagny Edda Fenn Gideon Hesper Ivo Jorah Kasimir Linnea Magnus Noemi Orla Perrin Rosalind Stellan Thea
Ulric Vesna Wren Ysolde Anselm
""".split()
)
ASKED_SURNAMES = tuple(
    """
Kessler Varga Holloway Brannock Castellane Drummond Ellery Fairweather Gallant Hartigan Iverson Jessup
Kincaid Lindqvist Marwood Nettleton Oakhurst Pendry Quennell Rowntree Sallow Thackery Underhill Whitlock
Yarrow Zeller Ashdown Birtwistle Corrigan Delacourt
""".split()
)
FILLER_SURNAMES = tuple(
    """
Abernath Blackwood Coldridge Dunmore Eastling Foxley Greaves Hallam Ingle Jardine Kettering Lowther
Mallory Northcott Ormsby Penhallow Quarrie Redfern Stroud Tolliver Upton Verity Wakeling Yelland Astley
Bellweather Cardew Dorling Elwood Fenwick
""".split()
)
TOWNS = tuple(
    """
Lindvale Marrowby Quenford Varnholt Brennick Osterfeld Calderwick Dunmere Elderholt Farrowgate Glenhallow
Harrowmere Ivelston Jorvale Kestwick Lowbarrow Millbrast Norrowden Ottercombe Pellinford Quarlstone
Rushmere Stavenholt Thornaby Ulverdale Wexcombe Yarlsford Zennick Ambleford Brastow
""".split()
)
PROFESSIONS = (
    "glassblower", "cartographer", "beekeeper", "violin maker", "ferry pilot", "archivist", "stonemason",
    "botanist", "clockmaker", "surveyor", "bookbinder", "lighthouse keeper", "cheesemaker", "locksmith",
    "weaver", "astronomer", "potter", "tailor", "chemist", "carpenter",
)  # fmt: skip
_COMPANY_WORDS_ASKED = tuple(
    "Halvard Corvane Tessaly Brimwood Ostrel Quillon Marbeck Vennick Drayfield Lumora Saxby Pellow".split()
)
_COMPANY_WORDS_FILLER = tuple(
    "Ardent Belgrove Cinder Dovecote Emberly Fallow Gristle Hobb Inkwell Jessamy Kilner Larch".split()
)
_COMPANY_KINDS = ("Works", "Instruments", "Mills", "Foundry", "Textiles", "Shipping", "Press", "Optics")
ASKED_COMPANIES = tuple(f"{w} {k}" for w in _COMPANY_WORDS_ASKED for k in _COMPANY_KINDS)
FILLER_COMPANIES = tuple(f"{w} {k}" for w in _COMPANY_WORDS_FILLER for k in _COMPANY_KINDS)
PRODUCTS = (
    "barometers", "sailcloth", "ceramic tiles", "pocket watches", "telescopes", "rope", "printing presses",
    "lamp oil", "copper kettles", "bicycle frames", "garden tools", "church bells", "fountain pens",
    "weather vanes", "wool blankets",
)  # fmt: skip
HOBBIES = (
    "sailing", "birdwatching", "chess", "rock climbing", "baking bread", "growing orchids", "choir singing",
    "fly fishing", "restoring old radios", "long-distance running",
)  # fmt: skip


@dataclass(frozen=True)
class Person:
    name: str
    town: str
    profession: str
    employer: str
    joined: int
    hobby: str

    def document(self) -> str:
        return (
            f"{self.name}\n{self.name} was born in {self.town}. By trade {self.name} is a {self.profession}. "
            f"In {self.joined}, {self.name} took a position at {self.employer} and has stayed there since. "
            f"Outside work, {self.name} spends most weekends on {self.hobby}."
        )


@dataclass(frozen=True)
class Company:
    name: str
    town: str
    founded: int
    product: str

    def document(self) -> str:
        return (
            f"{self.name}\n{self.name} was founded in {self.founded}. Its head office stands in {self.town}, "
            f"and for most of its history it has been known for its {self.product}."
        )


def person(rng: random.Random, name: str, companies: tuple[str, ...]) -> Person:
    return Person(
        name=name,
        town=rng.choice(TOWNS),
        profession=rng.choice(PROFESSIONS),
        employer=rng.choice(companies),
        joined=rng.randint(1960, 2020),
        hobby=rng.choice(HOBBIES),
    )


def company(rng: random.Random, name: str) -> Company:
    return Company(
        name=name, town=rng.choice(TOWNS), founded=rng.randint(1820, 1990), product=rng.choice(PRODUCTS)
    )


# What a question asks of a person: (attribute, direct wording, paraphrased wording). The direct wording
# repeats the document's words; the paraphrase shares little beyond the name.
PERSON_QUESTIONS = (
    ("town", "In which town was {name} born?", "What is the home town {name} comes from?"),
    ("profession", "What is {name}'s trade?", "What kind of work does {name} do for a living?"),
    ("employer", "Which company did {name} take a position at?", "Who is {name}'s employer?"),
    ("joined", "In which year did {name} take a position at {employer}?", "Since when has {name} been with {employer}?"),
    ("hobby", "What does {name} spend most weekends on outside work?", "What is {name}'s favourite pastime?"),
)  # fmt: skip
# Two hops: the person's document names the employer, the employer's document holds the answer.
COMPANY_QUESTIONS = (
    ("town", "In which town is the head office of the company {name} works for?"),
    ("founded", "In which year was the company {name} works for founded?"),
    ("product", "What is the company {name} works for known for?"),
)


def qa_pair(rng: random.Random, paraphrase: bool) -> tuple[str, str, str, Person]:
    """One question about a fresh asked person: the attribute asked, the question, its answer and the person
    (whose document holds the answer)."""
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(ASKED_SURNAMES)}"
    who = person(rng, name, ASKED_COMPANIES)
    attribute, direct, paraphrased = rng.choice(PERSON_QUESTIONS)
    question = (paraphrased if paraphrase else direct).format(name=name, employer=who.employer)
    return attribute, question, str(getattr(who, attribute)), who


def filler_document(index: int) -> str:
    """Document ``index`` of the filler: people (filler surnames, filler companies) and filler companies in
    turn, the same for every sample."""
    rng = random.Random(f"ladder-document-{index}")
    if index % 3 == 2:
        return company(rng, rng.choice(FILLER_COMPANIES)).document()
    return person(
        rng, f"{rng.choice(FIRST_NAMES)} {rng.choice(FILLER_SURNAMES)}", FILLER_COMPANIES
    ).document()
