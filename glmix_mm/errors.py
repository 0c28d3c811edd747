"""The one error model of glmix_mm: every mistake a user can make, and every file or setting that
glmix_mm refuses, raises a :class:`GLMixMMError`.

Its message names the problem and the fix in its first line (a key report may follow, as in
:class:`~glmix_mm.checkpoint.CheckpointMismatchError`); its ``exit_code`` is the status a
command-line tool ends with. Every tool of ``tools/`` runs its ``main`` through
:func:`glmix_mm.utils.cli.tool_main`, which answers any of these errors with
``error: <message>`` on stderr and that code, never with a traceback:

* 2 (:class:`UsageError` and the config, dataset and path errors): the command asks for
  something that cannot be (a bad option value, a path that does not exist, a config that does
  not build); change the command or the config;
* 1 (the rest): a file was read and refused (a checkpoint that does not fit, a truncated file),
  or the run cannot go on (a checkpoint to resume from is incomplete, the installed torch is too
  old for a feature).

Subclasses keep the built-in base that Python code caught before (``ConfigError`` is a
``ValueError``, ``CheckpointLoadError`` a ``RuntimeError``, ...).
"""


class GLMixMMError(Exception):
    """An error of ours: a message for the user and the exit code of a tool (1)."""
    exit_code = 1


class UsageError(GLMixMMError, ValueError):
    """A tool's input that cannot work: an option value, an unknown name, a path that does not
    exist (exit code 2)."""
    exit_code = 2
