"""Compilations and jit-cache traces seen while code runs (the bench and the tests)."""

from __future__ import annotations

import collections

import jax



class CompileMonitor:
    """Counts XLA compilations and traces by function name, and sums the seconds spent
    tracing, lowering, compiling.

    Listens to the events `jax.monitoring` records for every cache miss of a
    jitted function (and of every op first run eagerly with new shapes).
    """

    _TRACE = "/jax/core/compile/jaxpr_trace_duration"
    _BACKEND = "/jax/core/compile/backend_compile_duration"
    _EVENTS = (_TRACE, "/jax/core/compile/jaxpr_to_mlir_module_duration", _BACKEND)

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        # Traces by function name: each trace of a jitted function adds an entry
        # to its cache (the public stand-in for the cache's size).
        self.traces: collections.Counter = collections.Counter()

    def _listen(self, event: str, duration: float, **kwargs) -> None:
        if event in self._EVENTS:
            self.seconds += duration
        if event == self._BACKEND:
            self.count += 1
        if event == self._TRACE:
            self.traces[kwargs.get("fun_name")] += 1

    def __enter__(self) -> "CompileMonitor":
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)


# The round's four compiled programs, by the names their traces carry. The scorer
# is traced as itself on replicated points, and inside loops.stream_scores' jitted
# chunk (`_score_chunk`) on points split over the devices.
_PROGRAMS = {"m_step": ("m_step",), "disc_step": ("disc_step",),
             "score": ("score", "_score_chunk"), "assigner": ("assigner",)}


def program_traces(monitor: CompileMonitor) -> dict[str, int]:
    """Traces of each of the round's four programs that `monitor` saw."""
    return {name: sum(monitor.traces[traced] for traced in names)
            for name, names in _PROGRAMS.items()}
