"""The report's Jinja2 templates and style: one self-contained page, autoescaped, no scripts, no network."""

from __future__ import annotations

import functools

from jinja2 import BaseLoader, Environment, StrictUndefined

# The page runs no script and loads nothing: the policy makes that a rule the browser enforces too, so an
# output that slipped past escaping still could not run or call out.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
:root { --fg: #1d2329; --muted: #5f6b76; --line: #dde3e8; --bg: #ffffff; --soft: #f5f7f9; --accent: #1f6feb;
        --warn-bg: #fff6d6; --warn-line: #e0b400; --bad: #b42318; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1120px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 1.55rem; margin: 0.2em 0 0.1em; word-break: break-word; }
h2 { font-size: 1.2rem; margin: 2em 0 0.5em; padding-top: 0.4em; border-top: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.4em 0 0.4em; }
p, li { max-width: 78ch; }
.muted { color: var(--muted); }
.small { font-size: 0.86rem; }
nav { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 0.9rem; margin: 8px 0 4px; }
nav a { color: var(--accent); text-decoration: none; }
.banner { background: var(--warn-bg); border: 1px solid var(--warn-line); border-radius: 8px; padding: 10px 14px;
          margin: 12px 0; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 12px 0; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .value { font-size: 1.5rem; font-weight: 700; }
.card .label { font-size: 0.82rem; color: var(--muted); }
.card .extra { font-size: 0.8rem; color: var(--muted); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 8px 0; }
table { border-collapse: collapse; font-size: 0.88rem; min-width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td .ci { display: block; color: var(--muted); font-size: 0.78rem; }
td .bad { color: var(--bad); display: block; font-size: 0.78rem; }
td.pred { white-space: pre-wrap; word-break: break-word; max-width: 32ch; font-family: ui-monospace, Menlo, Consolas, monospace;
          font-size: 0.8rem; }
tr.total td { font-weight: 700; }
ul.legend { margin: 2px 0 10px; padding-left: 1.2em; }
ul.paired li.total { font-weight: 600; }
ul.paired .where { color: var(--muted); }
.sig { color: var(--accent); }
figure { margin: 14px 0 22px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 420px), 1fr)); gap: 0 18px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { font-size: 0.86rem; color: var(--muted); margin-top: 6px; max-width: 78ch; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.84rem; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px; overflow-x: auto;
      white-space: pre-wrap; word-break: break-all; }
details summary { cursor: pointer; color: var(--accent); }
@media (max-width: 640px) {
  body { font-size: 14px; }
  main { padding: 10px 12px 36px; }
  h1 { font-size: 1.25rem; }
  .card .value { font-size: 1.25rem; }
  th, td { padding: 4px 5px; }
}
"""

BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="referrer" content="no-referrer">
<title>{{ title }}</title>
<style>{{ style | safe }}</style>
</head>
<body>
<main>
{% block body %}{% endblock %}
<p class="muted small">Written by longscope {{ version }} on {{ written }}. Self-contained: nothing on this page
loads from the network.</p>
</main>
</body>
</html>
"""

FIGURE = """{% macro figure(plot) -%}
<figure id="{{ plot.id }}">
<img src="{{ plot.src }}" alt="{{ plot.alt }}" loading="eager">
<figcaption><strong>{{ plot.title }}.</strong> {{ plot.caption }}</figcaption>
</figure>
{%- endmacro %}"""

# A score as the tables print it: the mean, then the interval (its letter names the rule, its title says it in
# full) and n; a legend under each table spells the letters out.
NUMBERS = """{% macro cell_text(cell) -%}
{{ cell.mean }}<span class="ci" title="{{ cell.title }}">{{ cell.ci }}<sup>{{ cell.mark }}</sup>{% if cell.n is defined and cell.n is not none %} n={{ cell.n }}{% endif %}</span>
{%- endmacro %}
{% macro legend_list(entries) -%}
{% if entries %}<ul class="legend small muted">{% for e in entries %}<li><sup>{{ e.mark }}</sup> {{ e.text }}</li>{% endfor %}</ul>{% endif %}
{%- endmacro %}"""

REPORT = """{% extends "base" %}{% from "figure" import figure %}{% from "numbers" import cell_text, legend_list %}
{% block body %}
<h1>{{ model_name }}</h1>
<div class="muted">longscope report of <code>{{ run_dir }}</code> · {{ n_rows }} result rows · model {{ model_id or "unknown" }}</div>
<nav>
<a href="#headline">headline</a>{% if paired %}<a href="#paired">paired</a>{% endif %}<a href="#scores">scores</a>
{% if degradation %}<a href="#degradation">degradation</a>{% endif %}
{% if heatmaps %}<a href="#depth">depth × length</a>{% endif %}
{% if plane %}<a href="#plane">difficulty plane</a>{% endif %}
{% if frontier %}<a href="#frontier">cost frontier</a>{% endif %}
{% if retrieval %}<a href="#retrieval">score against what is sent</a>{% endif %}
{% if benchmarks %}<a href="#benchmarks">benchmarks</a>{% endif %}
{% if long_output %}<a href="#long-output">long outputs</a>{% endif %}
{% if probe %}<a href="#probe">loss by position</a>{% endif %}
{% if breakdowns %}<a href="#score-by">score by difficulty</a>{% endif %}
{% if judging %}<a href="#judging">judging</a>{% endif %}
<a href="#cost">cost model</a><a href="#predictions">predictions</a><a href="#exports">exports</a>
</nav>
{% if in_progress %}
<div class="banner" role="status" id="in-progress">This run has not finished (it is still running or was stopped):
this report shows the {{ n_rows }} samples finished so far. Run the same command again to complete it.</div>
{% endif %}
{% if not has_rows %}
<div class="banner" role="status">This run has no results yet.</div>
{% else %}
<section id="headline">
<h2>Headline{% if several_methods %} ({{ primary }}){% endif %}</h2>
<div class="cards">
<div class="card"><div class="label">effective context length (RULER)</div>
<div class="value">{{ effective }}</div>
<div class="extra">longest length whose mean score over tasks exceeds {{ threshold }}; “&gt;” the longest tested passes, “&lt;” none does</div></div>
<div class="card"><div class="label">relative effective length (NoLiMa, {{ relative_share }})</div>
<div class="value">{{ relative }}</div>
<div class="extra">longest length keeping {{ relative_share }} of the score at the shortest length</div></div>
<div class="card"><div class="label">area under the score-length curve</div>
<div class="value">{{ auc }}</div><div class="extra">{% if auc_ci %}{{ auc_ci }} · {% endif %}{{ auc_kind }}</div></div>
<div class="card"><div class="label">wAvg (inc), weights rise with length</div>
<div class="value">{{ wavg_inc }}</div></div>
<div class="card"><div class="label">wAvg (dec), weights fall with length</div>
<div class="value">{{ wavg_dec }}</div></div>
{% for item in per_length %}
<div class="card"><div class="label">mean score at {{ item.length }}</div>
<div class="value">{{ item.mean }}</div><div class="extra">{% if item.ci %}{{ item.ci }} · {% endif %}{{ item.kind }} · n={{ item.n }} over {{ item.tasks }} tasks</div></div>
{% endfor %}
</div>
<p class="small muted" id="rules">{{ effective_rule }} {{ relative_rule }} {{ auc_rule }}</p>
{% if method_rows %}
<div class="scroll"><table id="methods">
<thead><tr><th>method</th><th class="num">effective</th><th class="num">relative</th><th class="num">AUC</th>
<th class="num">wAvg inc</th><th class="num">wAvg dec</th>
{% for h in method_headers %}<th class="num">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in method_rows %}<tr><td>{{ row.method }}</td><td class="num">{{ row.effective }}</td>
<td class="num">{{ row.relative }}</td><td class="num">{{ cell_text(row.auc) }}</td>
<td class="num">{{ row.wavg_inc }}</td><td class="num">{{ row.wavg_dec }}</td>
{% for cell in row.cells %}<td class="num">{% if cell %}{{ cell_text(cell) }}{% else %}—{% endif %}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table></div>
{{ legend_list(method_legend) }}
<p class="small muted">Mean score over tasks at each length, per method, with n the scored samples under it.
Degradation, depth and the difficulty plane below describe {{ primary }}.</p>
{% endif %}
{% if totals.failed or totals.truncated or totals.skipped %}
<p><strong>Not in the scores:</strong> {{ totals.failed }} failed, {{ totals.skipped }} skipped;
{{ totals.truncated }} scored on a truncated context.</p>
{% endif %}
</section>

{% if paired %}
<section id="paired">
<h2>Methods against {{ paired.reference }} on the same samples</h2>
<p class="small muted">Each method's score minus {{ paired.reference }}'s, in points, on the samples both scored
(same sample, mode and turn), with its paired {{ level }}% interval: McNemar's exact test for pass/fail scores,
else a paired bootstrap (by context, from {{ min_bootstrap }} contexts) whose interval decides significance.
A sample one method failed or skipped is left out of both sides.</p>
{% for group in paired.groups %}
<h3>{{ group.method }}</h3>
<ul class="paired">{% for item in group["items"] %}<li{% if item.total %} class="total"{% endif %}><span class="where">{{ item.length }}:</span>
{% if item.significant %}<strong class="sig">{{ item.sentence }}</strong>{% else %}{{ item.sentence }}{% endif %}</li>
{% endfor %}</ul>
{% endfor %}
</section>
{% endif %}

<section id="scores">
<h2>Score by task and length</h2>
<p class="small muted">Mean score (0-100) with its {{ level }}% interval and n, the number of scored samples.
The letter after an interval says how it was made (listed under each table): {{ interval_rules["pass/fail"] }}
for pass/fail scores; for graded ones, {{ interval_rules["graded"] }}; for the mean over tasks,
{{ interval_rules["mean over tasks"] }}. Bootstraps draw {{ resamples }} resamples with seed {{ seed }}.
Failed samples are counted apart, not scored as zero. A length passes when its score exceeds the threshold
({{ threshold }}), RULER's stated rule.</p>
{% for section in score_sections %}
{% if several_methods %}<h3>{{ section.method }}</h3>{% endif %}
<div class="scroll"><table class="scores">
<thead><tr><th>task</th>{% for h in section.length_headers %}<th class="num">{{ h }}</th>{% endfor %}<th class="num">effective</th>
<th class="num">relative</th><th class="num">AUC</th><th class="num">wAvg inc</th><th class="num">wAvg dec</th></tr></thead>
<tbody>
{% for row in section.rows %}
<tr{% if row.total %} class="total"{% endif %}><td>{{ row.task }}</td>
{% for cell in row.cells %}<td class="num">{% if cell %}{{ cell_text(cell) }}
{% for note in cell.notes %}<span class="bad">{{ note }}</span>{% endfor %}{% endif %}</td>{% endfor %}
<td class="num">{{ row.effective }}</td><td class="num">{{ row.relative }}</td><td class="num">{{ cell_text(row.auc) }}</td>
<td class="num">{{ row.wavg_inc }}</td><td class="num">{{ row.wavg_dec }}</td></tr>
{% endfor %}
</tbody></table></div>
{{ legend_list(section.legend) }}
{{ figure(section.plot) }}
{% endfor %}
</section>

{% if benchmarks %}
<section id="benchmarks">
<h2>Published benchmarks</h2>
<p class="small muted">Each benchmark as its paper reports it: every subset's mean score (0-100) with its 95%
interval and their unweighted average (with the stratified interval where every subset has 10 samples), then its
own breakdowns. Truncated records were cut to the model window by the benchmark's
rule; skipped ones (invalid records, or too long under the skip rule) and failed ones are not scored.</p>
{% for bench in benchmarks %}
<h3>{{ bench.name }}</h3>
<div class="scroll"><table>
<thead><tr><th>subset</th><th class="num">score</th><th class="num">n</th><th class="num">truncated</th>
<th class="num">skipped</th><th class="num">failed</th></tr></thead>
<tbody>{% for row in bench.subsets %}<tr><td>{{ row.name }}</td><td class="num">{{ cell_text(row.score) }}</td>
<td class="num">{{ row.n }}</td><td class="num">{{ row.truncated }}</td><td class="num">{{ row.skipped }}</td>
<td class="num">{{ row.failed }}</td></tr>{% endfor %}
<tr class="total"><td>average over subsets</td><td class="num">{{ cell_text(bench.average) }}</td><td class="num">{{ bench.totals.scored }}</td>
<td class="num">{{ bench.totals.truncated }}</td><td class="num">{{ bench.totals.skipped }}</td><td class="num">{{ bench.totals.failed }}</td></tr>
</tbody></table></div>
{% if bench.printed %}
<p class="small">As {{ bench.name }} prints it (its own rounding, the average over its datasets):
{% for name, value in bench.printed.items() %}{{ name }} <b>{{ value }}</b>{% if not loop.last %} · {% endif %}{% endfor %}
— average <b>{{ bench.printed_average }}</b>.</p>
{% endif %}
{% if bench.categories %}
<p class="small">Per category, as {{ bench.name }} averages them (each the mean of its datasets' scores):
{% for name, value in bench.categories.items() if name != "average" %}{{ name }} <b>{{ value }}</b>{% if not loop.last %} · {% endif %}{% endfor %}
— mean of the categories <b>{{ bench.categories.average }}</b>.</p>
{% endif %}
{% for b in bench.breakdowns %}
<div class="scroll"><table>
<thead><tr><th>{{ b.key }}</th><th class="num">score</th><th class="num">n</th></tr></thead>
<tbody>{% for row in b.rows %}<tr><td>{{ row.value }}</td><td class="num">{{ cell_text(row.score) }}</td><td class="num">{{ row.n }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endfor %}
{{ legend_list(bench.legend) }}
{% endfor %}
</section>
{% endif %}

{% if degradation %}
<section id="degradation">
<h2>Degradation</h2>
<div class="scroll"><table>
<thead><tr><th>task</th>{% for h in length_headers %}<th class="num">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in degradation.rows %}<tr{% if row.total %} class="total"{% endif %}><td>{{ row.task }}</td>
{% for v in row.cells %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table></div>
<p class="small muted">Each entry: score as a percentage of the task's score at its shortest scored length
(— where that score is zero or missing).</p>
{% if degradation.plot %}{{ figure(degradation.plot) }}{% endif %}
</section>
{% endif %}

{% if heatmaps %}
<section id="depth">
<h2>Depth × length</h2>
<div class="grid">{% for plot in heatmaps %}{{ figure(plot) }}{% endfor %}</div>
</section>
{% endif %}

{% if plane %}
<section id="plane">
<h2>Difficulty plane</h2>
{{ figure(plane.plot) }}
{% if plane.unplaced %}<p class="small muted">Not placed (no diffusion/scope recorded): {{ plane.unplaced | join(", ") }}.</p>{% endif %}
{% if plane.measured %}
<p class="small">Measured on each sample's evidence (the context units its answers need): scope = evidence units ÷ all
units; diffusion = 1 − the mean reciprocal rank of the evidence units when every unit is ranked against the question,
by BM25 and by the dense retriever (their mean is plotted as a hollow marker joined to the declared point). Tasks whose
samples do not record their evidence stay declared only.</p>
<div class="scroll"><table>
<thead><tr><th>task</th><th class="num">length</th><th class="num">n</th><th class="num">declared scope / diffusion</th>
<th class="num">measured scope</th><th class="num">diffusion (BM25)</th><th class="num">diffusion (dense)</th>
<th class="num">distance</th></tr></thead>
<tbody>{% for row in plane.measured %}<tr><td>{{ row.task }}</td><td class="num">{{ row.length }}</td><td class="num">{{ row.n }}</td>
<td class="num">{{ row.declared }}</td><td class="num">{{ row.scope }}</td><td class="num">{{ row.bm25 }}</td>
<td class="num">{{ row.dense }}</td><td class="num">{{ row.distance }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
</section>
{% endif %}

{% if retrieval %}
<section id="retrieval">
<h2>Score against what is sent</h2>
{{ figure(retrieval.plot) }}
{% if retrieval.rows %}
<p class="small muted">Each method beside full context on the same task and length: "matches" when its mean score is at most {{ retrieval.match_points }} points below; token share is its input tokens (all calls) over full context's. Low-scope tasks are the ones retrieval can match; aggregation, sorting and counting need every record.</p>
<div class="scroll"><table>
<thead><tr><th>task</th><th class="num">length</th><th>method</th><th class="num">score</th><th class="num">full context</th>
<th class="num">gap</th><th class="num">token share</th><th class="num">retrieval recall</th><th>matches full</th></tr></thead>
<tbody>{% for row in retrieval.rows %}<tr><td>{{ row.task }}</td><td class="num">{{ row.length }}</td><td>{{ row.method }}</td>
<td class="num">{{ row.score }}</td><td class="num">{{ row.full_score }}</td><td class="num">{{ row.gap }}</td>
<td class="num">{{ row.token_share }}</td><td class="num">{{ row.recall }}</td><td>{{ "yes" if row.matches else "no" }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
</section>
{% endif %}

{% if frontier %}
<section id="frontier">
<h2>Accuracy against cost</h2>
{{ figure(frontier.plot) }}
<div class="scroll"><table>
<thead><tr><th>method</th><th class="num">length</th><th class="num">score</th><th class="num">KV cache</th>
<th class="num">time to first token</th><th class="num">input tokens</th><th>on the frontier</th></tr></thead>
<tbody>{% for row in frontier.rows %}<tr><td>{{ row.method }}</td><td class="num">{{ row.length }}</td>
<td class="num">{{ cell_text(row.score) }}</td><td class="num">{{ row.kv }}</td><td class="num">{{ row.ttft }}</td>
<td class="num">{{ row.tokens }}</td><td>{{ row.frontier }}</td></tr>{% endfor %}</tbody>
</table></div>
{{ legend_list(frontier.legend) }}
</section>
{% endif %}
{% endif %}

{% if long_output %}
<section id="long-output">
<h2>Long outputs</h2>
{% if long_output.length_plot %}{{ figure(long_output.length_plot) }}{% endif %}
{% if long_output.positions %}
<h3>Accuracy by position in the answer</h3>
<div class="scroll"><table>
<thead><tr><th>method</th>{% for h in long_output.position_headers %}<th class="num">{{ h }}</th>{% endfor %}
<th class="num">items not found</th></tr></thead>
<tbody>{% for row in long_output.positions %}<tr><td>{{ row.method }}</td>
{% for cell in row.cells %}<td class="num">{{ cell_text(cell) }}</td>{% endfor %}
<td class="num">{{ row.unplaced }}{% if row.unplaced %} (mean {{ row.unplaced_mean }}){% endif %}</td></tr>{% endfor %}</tbody>
</table></div>
{{ legend_list(long_output.legend) }}
{% if long_output.position_plot %}{{ figure(long_output.position_plot) }}{% endif %}
{% endif %}
{% if long_output.packing %}
<h3>The packing drop</h3>
<p class="small muted">The same questions answered all in one response (packed) and one per response, paired question by
question; questions of one packed response are resampled together.</p>
<div class="scroll"><table>
<thead><tr><th>method</th><th class="num">packed</th><th class="num">one at a time</th><th class="num">questions per response</th><th>difference</th></tr></thead>
<tbody>{% for row in long_output.packing %}<tr><td>{{ row.method }}</td><td class="num">{{ row.packed }}</td>
<td class="num">{{ row.separate }}</td><td class="num">{{ row.questions }}</td>
<td>{% if row.significant %}<strong class="sig">{{ row.sentence }}</strong>{% else %}{{ row.sentence }}{% endif %}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
<h3>Generation methods</h3>
<div class="scroll"><table>
<thead><tr><th>method</th><th class="num">score</th><th class="num">n</th><th class="num">failed</th><th class="num">input tokens</th>
<th class="num">output tokens</th><th class="num">calls</th><th class="num">words per answer</th><th class="num">repeated 4-grams (%)</th></tr></thead>
<tbody>{% for row in long_output.methods %}<tr><td>{{ row.method }}</td><td class="num">{{ row.score }}</td>
<td class="num">{{ row.n }}</td><td class="num">{{ row.failed }}</td><td class="num">{{ row.input_tokens }}</td>
<td class="num">{{ row.output_tokens }}</td><td class="num">{{ row.calls }}</td><td class="num">{{ row.words }}</td>
<td class="num">{{ row.repetition }}</td></tr>{% endfor %}</tbody>
</table></div>
<p class="small muted">Tokens and calls are totals over the method's long-output answers, every call of a multi-call
method counted; words are whitespace words (characters for CJK text).</p>
</section>
{% endif %}

{% if probe %}
<section id="probe">
<h2>Loss by position beside the scores</h2>
<p class="small muted">The probe's token NLL over the built-in essays ({{ probe.model }}{% if probe.trained_window %}, trained
window {{ probe.trained_window }} tokens{% endif %}){% if probe.bos %}; a BOS token is prepended at position 0, so every essay
token has a prediction{% endif %}.{% if not probe.same_model %} <strong>The probe read another model than this run's.</strong>{% endif %}
{{ " " }}Far-end NLL is the mean over the last quarter of each length's positions; NLL and score disagree when the score falls
{{ probe.score_drop }} points or more while the far-end NLL rises less than {{ probe.nll_rise }} nats, or the reverse.</p>
{{ figure(probe.plot) }}
<div class="scroll"><table>
<thead><tr><th>method</th>{% for h in probe.headers %}<th class="num">{{ h }}: score</th><th class="num">{{ h }}: far-end NLL</th>{% endfor %}
<th>NLL against score</th></tr></thead>
<tbody>{% for row in probe.rows %}<tr><td>{{ row.method }}</td>
{% for cell in row.cells %}<td class="num">{{ cell.score }}</td><td class="num">{{ cell.nll }}</td>{% endfor %}
<td>{% if row.disagree %}<strong class="sig">{{ row.verdict }}</strong>{% else %}{{ row.verdict }}{% endif %}</td></tr>{% endfor %}</tbody>
</table></div>
</section>
{% endif %}

{% if breakdowns %}
<section id="score-by">
<h2>Score by difficulty</h2>
<p class="small muted">Each task's score (0-100) split by the setting its samples were built at; a task appears
under each key its samples carry.</p>
{% for table in breakdowns %}
<h3>Score by {{ table.key }}</h3>
{% if table.meaning %}<p class="small muted">{{ table.key }}: {{ table.meaning }}.</p>{% endif %}
<div class="scroll"><table>
<thead><tr><th>task</th>{% for h in table.headers %}<th class="num">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in table.rows %}<tr><td>{{ row.task }}</td>
{% for cell in row.cells %}<td class="num">{% if cell %}{{ cell_text(cell) }}{% else %}—{% endif %}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table></div>
{{ legend_list(table.legend) }}
{% endfor %}
</section>
{% endif %}

<section id="cost">
<h2>Cost model</h2>
{% if cost.overlay %}
<p>{{ cost.summary }}</p>
{{ figure(cost.plot) }}
<div class="scroll"><table>
<thead><tr><th>length</th><th class="num">rows</th><th class="num">TTFT measured (mean)</th><th class="num">predicted</th>
<th class="num">error</th><th class="num">KV measured (mean)</th><th class="num">predicted</th><th class="num">error</th></tr></thead>
<tbody>{% for row in cost.rows %}<tr>{% for v in row %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table></div>
{% else %}
<p>{{ cost.note }}</p>
{% endif %}
{% if cost.predictions %}
<h3>Predicted cost of {{ cost.model }} on {{ cost.hardware }}</h3>
<div class="scroll"><table>
<thead><tr><th>context</th><th class="num">KV cache / request</th><th class="num">prefill (TTFT)</th>
<th class="num">decode / token</th><th class="num">concurrent requests</th><th class="num">swap cache to host</th></tr></thead>
<tbody>{% for row in cost.predictions %}<tr>{% for v in row %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table></div>
<p class="small muted">{{ cost.assumptions }}</p>
{% endif %}
{% if judging %}
<h3 id="judging">Judging, counted apart from the evaluated model</h3>
<div class="scroll"><table>
<thead><tr><th>who</th><th>role</th><th class="num">graded</th><th class="num">failed judgements</th><th class="num">calls</th>
<th class="num">input tokens</th><th class="num">output tokens</th><th class="num">time</th><th class="num">cost</th></tr></thead>
<tbody>{% for row in judging.rows %}<tr><td>{{ row.who }}</td><td>{{ row.role }}</td><td class="num">{{ row.graded }}</td>
<td class="num">{% if row.failed and row.failed != "0" %}<span class="bad">{{ row.failed }}</span>{% else %}{{ row.failed }}{% endif %}</td>
<td class="num">{{ row.calls }}</td><td class="num">{{ row.input_tokens }}</td><td class="num">{{ row.output_tokens }}</td>
<td class="num">{{ row.seconds }}</td><td class="num">{{ row.cost }}</td></tr>{% endfor %}</tbody>
</table></div>
<p class="small muted">A judgement answered from the judge's cache makes no call; cost is given where the judge URI
names its prices (price_in=, price_out= per million tokens). A failed judgement keeps the answer and is graded again
on the next run.{% if judging.unjudged %} {{ judging.unjudged }} judged outputs were skipped: the run had no judge.{% endif %}</p>
{% if judging.identities %}
<div class="scroll"><table>
<thead><tr><th>judge</th><th>URI</th><th class="num">window</th><th>prompt versions</th></tr></thead>
<tbody>{% for j in judging.identities %}<tr><td>{{ j.identity }}</td><td>{{ j.uri }}</td><td class="num">{{ j.window }}</td>
<td>{{ j.prompts }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
{% if judging.comparisons %}
<h3>Two judges on the same outputs</h3>
<ul class="paired">{% for c in judging.comparisons %}<li>{% if c.significant %}<strong class="sig">{{ c.sentence }}</strong>{% else %}{{ c.sentence }}{% endif %}</li>{% endfor %}</ul>
{% endif %}
{% endif %}
</section>

<section id="predictions">
<h2>Predictions</h2>
<p class="small muted">{{ predictions_note }}</p>
{% if predictions %}
<details id="predictions-list"><summary>show {{ predictions | length }} predictions</summary>
<div class="scroll"><table id="predictions-table">
<thead><tr><th>task</th><th class="num">length</th><th class="num">depth</th><th class="num">seed</th><th>method</th>
<th>status</th><th class="num">score</th><th>prediction</th><th>gold</th></tr></thead>
<tbody>{% for row in predictions %}<tr><td>{{ row.task }}</td><td class="num">{{ row.length }}</td>
<td class="num">{{ row.depth }}</td><td class="num">{{ row.seed }}</td><td>{{ row.method }}</td><td>{{ row.status }}</td>
<td class="num">{{ row.score }}</td><td class="pred">{{ row.prediction }}</td><td class="pred">{{ row.gold }}</td></tr>
{% endfor %}</tbody></table></div>
</details>
{% endif %}
</section>

<section id="exports">
<h2>Exports and re-running</h2>
<ul>
<li><a href="results.csv">results.csv</a>: every result row, failed ones included.</li>
<li><a href="summary.json">summary.json</a>: the numbers on this page.</li>
<li><a href="config.json">config.json</a>: the run's configuration.</li>
</ul>
{% if rerun %}<p>Re-run it{% if rerun | length > 1 %} (one line per invocation that wrote rows here, in order;
<code>--add</code> adds a later plan's rows to the run){% endif %}:</p><pre id="rerun">{{ rerun | join("\n") }}</pre>{% endif %}
</section>
{% endblock %}
"""

COMPARE = """{% extends "base" %}{% from "figure" import figure %}{% from "numbers" import cell_text, legend_list %}
{% block body %}
<h1>Comparison of {{ runs | length }} runs</h1>
<nav><a href="#runs">runs</a>{% if paired %}<a href="#paired">paired</a>{% endif %}<a href="#scores">scores</a>{% if not_shared %}<a href="#not-shared">not compared</a>{% endif %}</nav>
{% for note in notes %}<div class="banner" role="status">{{ note }}</div>{% endfor %}
<section id="runs">
<h2>Runs</h2>
<div class="scroll"><table>
<thead><tr><th>run</th><th>model</th><th>method</th><th>state</th><th class="num">rows</th><th class="num">effective (shared tasks)</th>
<th class="num">effective (own tasks)</th><th class="num">AUC (shared)</th><th class="num">wAvg inc</th><th class="num">wAvg dec</th></tr></thead>
<tbody>{% for run in runs %}<tr><td><strong>{{ run.label }}</strong><br><code class="small">{{ run.dir }}</code></td>
<td>{{ run.model }}</td><td>{{ run.method }}</td><td>{{ run.state }}</td><td class="num">{{ run.rows }}</td><td class="num">{{ run.effective_shared }}</td>
<td class="num">{{ run.effective_own }}</td><td class="num">{% if run.auc %}{{ cell_text(run.auc) }}{% else %}—{% endif %}</td>
<td class="num">{{ run.wavg_inc }}</td><td class="num">{{ run.wavg_dec }}</td></tr>{% endfor %}</tbody>
</table></div>
<p class="small muted">Effective lengths, the area under the score-length curve and weighted averages over the shared
tasks and lengths, so that the runs are measured on the same ground; "own tasks" uses everything each run has.
{{ effective_rule }}</p>
</section>
{% if paired %}
<section id="paired">
<h2>Runs against {{ reference }} on the same samples</h2>
<p class="small muted">Each run's score minus {{ reference }}'s, in points, on the samples both scored (same sample,
mode and turn, each run on the method it is compared on), with its paired 95% interval: McNemar's exact test for
pass/fail scores, else a paired bootstrap (by context, from {{ min_bootstrap }} contexts) whose interval decides
significance. A sample either run failed or skipped is left out of both sides.</p>
{% for group in paired %}
<h3>{{ group.run }}</h3>
<ul class="paired">{% for item in group["items"] %}<li{% if item.total %} class="total"{% endif %}><span class="where">{{ item.length }}:</span>
{% if item.significant %}<strong class="sig">{{ item.sentence }}</strong>{% else %}{{ item.sentence }}{% endif %}</li>
{% endfor %}</ul>
{% endfor %}
</section>
{% endif %}
<section id="scores">
<h2>Scores on what the runs share</h2>
{% if shared_rows %}
<p class="small muted">Mean score (0-100) with its 95% interval and n; the letter after an interval names its rule
(listed under the table), or the reason there is none.</p>
<div class="scroll"><table>
<thead><tr><th>task</th><th class="num">length</th>{% for run in runs %}<th class="num">{{ run.label }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in shared_rows %}<tr{% if row.total %} class="total"{% endif %}><td>{{ row.task }}</td><td class="num">{{ row.length }}</td>
{% for cell in row.cells %}<td class="num">{{ cell_text(cell) }}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table></div>
{{ legend_list(legend) }}
{% for plot in plots %}{{ figure(plot) }}{% endfor %}
{% else %}
<p><strong>The runs share no task at any common length:</strong> there is nothing to compare side by side.</p>
{% endif %}
</section>
{% if not_shared %}
<section id="not-shared">
<h2>Not compared</h2>
<p>These task × length cells are not in every run, so they are left out of the comparison:</p>
<div class="scroll"><table><thead><tr><th>task</th><th>length</th><th>only in</th></tr></thead>
<tbody>{% for row in not_shared %}<tr><td>{{ row.task }}</td><td>{{ row.length }}</td><td>{{ row.runs }}</td></tr>{% endfor %}</tbody>
</table></div>
</section>
{% endif %}
{% endblock %}
"""


@functools.cache
def environment() -> Environment:
    """Autoescape on for every template: model outputs and task names reach the page only as text."""

    class Templates(BaseLoader):
        sources = {"base": BASE, "figure": FIGURE, "numbers": NUMBERS, "report": REPORT, "compare": COMPARE}

        def get_source(self, env, name):
            return self.sources[name], None, lambda: True

    env = Environment(loader=Templates(), autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)  # fmt: skip
    env.globals.update(csp=CSP, style=STYLE)
    return env
