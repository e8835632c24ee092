"""knit's regression gate and result comparison (`./run.sh gate`, `./run.sh compare`).

stats    ratios of two builds with distribution-free confidence bounds (paired: Hodges-Lehmann
         with the exact Wilcoxon signed-rank bound; unpaired: Hodges-Lehmann shift with the
         exact Mann-Whitney bound), and the verdict rule both commands share
results  reading knit-bench documents (knit-bench/1 and /2), the figure a case is judged by,
         the run context that must match
report   the table, the verdict JSON, the markdown summary and the forest plot
build    the two revisions' source exports and build trees (under build/gate/)
runner   interleaved A/B runs (ABBA over N pairs), the confirmation re-run
__main__ the `gate` command line (python3 harness/gate ...)

docs/gate.md explains the method and its evidence; docs/ci.md how CI uses it.
"""
