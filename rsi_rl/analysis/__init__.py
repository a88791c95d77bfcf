"""Analysis of runs and benches: statistics, typed results, tables, plots, HTML reports.

One job per module:

- :mod:`~rsi_rl.analysis.stats`: bootstrap intervals, paired Wilcoxon tests, Holm's
  correction, normalised regret, censored medians (numbers in, numbers out).
- :mod:`~rsi_rl.analysis.results`: bench campaigns as typed records, read from one or
  several bench folders and summarised into a :class:`~rsi_rl.analysis.results.BenchResult`
  (what ``bench.json`` holds).
- :mod:`~rsi_rl.analysis.runs`: a run directory's ledger as typed data (campaign facts,
  multirun jobs).
- :mod:`~rsi_rl.analysis.tables` and :mod:`~rsi_rl.analysis.plots`: text tables and PNGs
  drawn from those records.
- :mod:`~rsi_rl.analysis.bench`: ``rsi-rl bench`` (the campaigns of every agent on shared
  pairs, the oracle, the files of a bench folder); one campaign, its trace and truth curve
  and its re-measurement on fresh seeds in :mod:`~rsi_rl.analysis.bench_campaign`.
- :mod:`~rsi_rl.analysis.yardstick` and :mod:`~rsi_rl.analysis.headline`: the frozen
  per-instance yardstick and the headline (regret, declared comparisons) scored against it.
- :mod:`~rsi_rl.analysis.report`: ``rsi-rl report`` (the HTML pages).

Importing this package imports none of them (matplotlib and scipy load on use).
"""
