"""What the analysis tools (``tools/analysis/benchmark.py``, ``get_flops.py``) are made of: the
models they know by name (:mod:`.zoo`), their inputs (:mod:`.inputs`), one timed step
(:mod:`.steps`), timing rounds and memory (:mod:`.timing`), profiles (:mod:`.profiling`),
reports (:mod:`.report`) and FLOP counts (:mod:`.flops`). Each tool's command line is its
module's ``main`` (:mod:`.benchmark`, :mod:`.flops`)."""
