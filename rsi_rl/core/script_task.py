"""Script tasks: any ``python train.py --lr ...`` program that prints its metric.

A :class:`ScriptTask` wraps an ordinary command-line training script, unmodified. Its
config says how each config key reaches the script (a command-line flag, or a JSON/YAML
config file the script reads), which printed line holds the metric (a regex, or a key of
a JSON line), the metric's direction, a time budget, and optional patch files for code
edits::

    # conf/task/my_script.yaml
    _target_: rsi_rl.core.script_task.ScriptTask
    name: my_script
    script: path/to/train.py          # absolute, relative to the working dir, or pkg://
    flags: {lr: --lr, hidden: --hidden, epochs: --epochs}
    seed_flag: --seed
    start_config: {lr: 0.01, hidden: 32, epochs: 20}
    knobs:
      - {kind: lr, key: lr, scale: log, low: 1.0e-4, high: 1.0, step: 2.0}
    metric: val_loss
    metric_regex: 'val_loss: (?P<value>\\S+)'   # the last match counts
    direction: minimize
    report_regex: 'epoch (?P<step>\\d+) .* val_loss (?P<value>\\S+)'  # optional: for env.pruner
    timeout: 60
    patches:
      - {kind: activation_gelu, diff: patches/gelu.diff}

How it runs. The sandbox runs a small generated launcher (``_rsi_rl_launch.py``) in the
forked child, under the same limits as any task. With ``launcher: runpy`` (the default)
the launcher sets ``sys.argv`` and runs the script in-process with :mod:`runpy`, as
``python train.py ...`` would, so it starts warm (torch already imported by the fork
server). With ``launcher: subprocess`` it starts ``command`` (default ``python <script>``)
as a child process in the same process group, for scripts that need a fresh interpreter
or are not Python. Either way the launcher tees the script's stdout and stderr into the
run's logs and hands their last megabyte to the parent, which parses the metric.

Trust. The script computes its own metric, on data it holds: nothing stops an edit from
changing what it prints. Script tasks are therefore ``self_reported`` and every summary,
ledger and report marks them so. For a trusted metric, write a task class whose
``evaluate`` scores submitted predictions (docs/custom_task.md).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.core.errors import PatchError, TaskError
from rsi_rl.core.registry import task_config_hint
from rsi_rl.core.task import CodePatch, InnerTask, Instance, Knob

LAUNCHER = "_rsi_rl_launch.py"
FLOAT = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf|infinity)"

#: the entry file: a stub calling :func:`rsi_rl.exec.script_launch.main` with the launch spec
_LAUNCHER_STUB = (
    '"""Launches a script task\'s program in the rsi_rl sandbox (rsi_rl.exec.script_launch)."""\n'
    "import json\n\nfrom rsi_rl.exec.script_launch import main\n\nmain(json.loads(%r))\n"
)


def resolve_path(path: str | Path, base: Path | None = None) -> Path:
    """Resolve ``pkg://package/rel/path``, an absolute path, or one relative to ``base`` (cwd)."""
    text = str(path)
    if text.startswith("pkg://"):
        from importlib.resources import files

        package, _, rel = text[len("pkg://") :].partition("/")
        try:
            return Path(str(files(package).joinpath(rel)))
        except ModuleNotFoundError:
            return Path(text)
    p = Path(text).expanduser()
    return p if p.is_absolute() else (base or Path.cwd()) / p


class ScriptTask(InnerTask):
    """An unmodified command-line training script as an inner task (self-reported metric).

    Args:
        name: registry name of the task.
        script: the training script (absolute, relative to the working directory, or
            ``pkg://package/path``).
        metric: metric name (e.g. ``val_loss``).
        direction: ``minimize`` or ``maximize``.
        metric_regex: regex whose last match in the output holds the value (group
            ``value``, else group 1); default ``<metric>[:=] <number>``.
        metric_json: instead of a regex: the key of the value in the last JSON line
            (a line starting with ``{``) that has it.
        report_regex: optional regex with groups ``step`` and ``value`` (and optionally
            ``total``, the steps the run makes in all): every output line it matches is
            an intermediate report (``harness.report``), which a pruner (``env.pruner``)
            may use to stop a hopeless run early.
        report_direction: ``minimize`` (default) or ``maximize``: which reported values
            are better.
        flags: config key -> command-line flag (``--lr``; ``--lr=`` joins flag and value;
            booleans become bare ``store_true`` flags when true).
        config_file: instead of (or besides) flags: a file name (``.json``/``.yaml``) in the
            script's working dir where the launcher writes the whole config.
        args: fixed extra arguments; ``{script_dir}`` expands to the script's folder,
            ``{device}`` to ``cuda`` or ``cpu`` (the run's device, ``sandbox.devices``).
        seed_flag: flag that receives the experiment seed (e.g. ``--seed``).
        split_flag: flag that receives ``val`` or ``test``; without it the task has no
            test split (``has_test_split`` is False) and campaigns report "no test
            split" rather than a copy of the validation score.
        start_config: the config the search starts from (every key needs a flag or
            ``config_file``).
        reference_config: optional human reference config.
        knobs: knobs as mappings of :class:`~rsi_rl.core.knob.Knob` fields (``key``, ``role``,
            ``scale``, ...).
        patches: code edits: ``{name, diff: file.diff}`` (unified diff, relative to the
            script's folder) or ``{name, file, hunks: [[old, new], ...]}``; optional
            ``description`` and ``role``.
        files: further editable files next to the script that it imports.
        timeout: wall-clock seconds per experiment.
        noise_prior: prior standard deviation of the metric across seeds.
        metric_optimum: best attainable value, if known (scales the reward).
        launcher: ``runpy`` (in-process, warm) or ``subprocess``.
        command: the subprocess command (default ``["{python}", "{script}"]``).
        preload: modules the fork server imports once (default numpy, torch).
        artifacts: files the script writes that you keep (e.g. ``out/model.pt``, relative to
            its working dir): copied out after each successful run (``sandbox.artifact_mb``
            in all); the best candidate's land in ``best/artifacts/``.
    """

    self_reported = True
    meta_train_seeds = range(0, 1)
    heldout_seeds = range(0, 1)

    def __init__(
        self,
        name: str,
        script: str,
        metric: str,
        direction: str = "minimize",
        metric_regex: str | None = None,
        metric_json: str | None = None,
        report_regex: str | None = None,
        report_direction: str = "minimize",
        flags: dict[str, str] | None = None,
        config_file: str | None = None,
        args: list[str] | None = None,
        seed_flag: str | None = None,
        split_flag: str | None = None,
        start_config: dict[str, Any] | None = None,
        reference_config: dict[str, Any] | None = None,
        knobs: list[dict[str, Any]] | None = None,
        patches: list[dict[str, Any]] | None = None,
        files: list[str] | None = None,
        timeout: float = 60.0,
        noise_prior: float = 0.01,
        metric_optimum: float | None = None,
        launcher: str = "runpy",
        command: list[str] | None = None,
        preload: list[str] | None = None,
        artifacts: list[str] | None = None,
    ) -> None:
        where = task_config_hint()
        flags, start_config, reference_config, knobs, patches, args, files, command, preload = (
            _plain(v)
            for v in (
                flags,
                start_config,
                reference_config,
                knobs,
                patches,
                args,
                files,
                command,
                preload,
            )
        )
        artifacts = _plain(artifacts)
        if not name:
            raise TaskError(f"script task: set `name` in {where}")

        def fail(key: str, why: str) -> TaskError:
            return TaskError(f"script task {name!r}: {key} {why} (fix {key} in {where})")

        path = resolve_path(script)
        if not path.is_file():
            raise fail("script", f"{str(path)!r} does not exist")
        if direction not in ("minimize", "maximize"):
            raise fail("direction", f"must be minimize or maximize, not {direction!r}")
        if launcher not in ("runpy", "subprocess"):
            raise fail("launcher", f"must be runpy or subprocess, not {launcher!r}")
        if metric_regex is not None and metric_json is not None:
            raise fail("metric_regex", "and metric_json are exclusive; keep one")
        if metric_json is None:
            pattern = metric_regex or rf"{re.escape(metric)}\s*[:=]\s*(?P<value>{FLOAT})"
            try:
                self._regex: re.Pattern[str] | None = re.compile(pattern, re.MULTILINE)
            except re.error as exc:
                raise fail("metric_regex", f"is not a valid regex ({exc})") from None
        else:
            self._regex = None
        self._json_key = metric_json
        self.metric_regex = metric_regex
        if report_direction not in ("minimize", "maximize"):
            raise fail(
                "report_direction", f"must be minimize or maximize, not {report_direction!r}"
            )
        if report_regex is not None:
            try:
                groups = re.compile(report_regex).groupindex
            except re.error as exc:
                raise fail("report_regex", f"is not a valid regex ({exc})") from None
            if not {"step", "value"} <= set(groups):
                raise fail(
                    "report_regex", "needs the named groups (?P<step>...) and (?P<value>...)"
                )
        self.report_regex = report_regex
        start = dict(start_config or {})
        flags = dict(flags or {})
        for key in flags:
            if key not in start:
                known = ", ".join(sorted(start)) or "none"
                raise fail(
                    f"flags.{key}", f"maps a config key that start_config lacks (keys: {known})"
                )
        if config_file is None:
            for key in start:
                if key not in flags:
                    raise fail(
                        f"start_config.{key}",
                        "reaches the script by no flag; add it to flags or set config_file",
                    )
        built_knobs = []
        for i, spec in enumerate(knobs or []):
            spec = dict(spec)
            if "kind" in spec and "role" not in spec:  # the earlier spelling of role
                spec["role"] = spec.pop("kind")
            if "choices" in spec:
                spec["choices"] = tuple(spec["choices"])
            try:
                knob = Knob(**spec)
            except (TypeError, TaskError) as exc:
                raise fail(f"knobs[{i}]", f"is invalid: {exc}") from None
            if knob.key not in start:
                raise fail(f"knobs[{i}].key", f"{knob.key!r} is not a key of start_config")
            built_knobs.append(knob)

        # class data, declared per instance (each config is its own task)
        program_files = [path.name, *(files or [])]
        for rel in program_files[1:]:
            if not (path.parent / rel).is_file():
                raise fail("files", f"names {rel!r}, which is not next to the script")
        built_patches = []
        for i, spec in enumerate(patches or []):
            patch = self._load_patch(dict(spec), path.parent, path.name, fail, i)
            if patch.file not in program_files:
                if not (path.parent / patch.file).is_file():
                    raise fail(
                        f"patches[{i}]", f"edits {patch.file!r}, which is not next to the script"
                    )
                program_files.append(patch.file)
            built_patches.append(patch)
        attrs: dict[str, Any] = {
            "name": name,
            "metric": metric,
            "direction": direction,
            "metric_optimum": metric_optimum,
            "noise_prior": float(noise_prior),
            "program_dir": path.parent,
            "program_files": tuple(program_files),
            "entry": LAUNCHER,
            "default_timeout": float(timeout),
            "knobs": tuple(built_knobs),
            "patches": tuple(built_patches),
            "has_test_split": split_flag is not None,
            "report_direction": report_direction,
        }
        if preload is not None:
            attrs["preload"] = tuple(preload)
        if artifacts:
            attrs["artifacts"] = _artifact_paths(artifacts, fail)
        for key, value in attrs.items():
            setattr(self, key, value)
        super().__init__()
        self.script = path
        self.start_config = start
        self.reference_config = dict(reference_config) if reference_config else None
        self._spec = {
            "script": path.name,
            "script_dir": str(path.parent),
            "args": [str(a) for a in (args or [])],
            "flags": flags,
            "seed_flag": seed_flag,
            "split_flag": split_flag,
            "config_file": config_file,
            "launcher": launcher,
            "command": list(command or ["{python}", "{script}"]),
            # only when set: a script task without reports keeps its candidates' hashes
            **({"report_regex": report_regex} if report_regex else {}),
        }
        source = self.source()
        for patch in self.patches:
            try:
                patch.apply(source[patch.file])
            except PatchError as exc:
                raise fail(
                    f"patches[{self.patches.index(patch)}]", f"does not apply: {exc}"
                ) from None

    @staticmethod
    def _load_patch(spec: dict[str, Any], base: Path, script: str, fail: Any, i: int) -> CodePatch:
        kind = spec.get("name") or spec.get("kind")  # ``kind``: the earlier spelling
        if not kind:
            raise fail(f"patches[{i}].name", "is missing")
        desc = str(spec.get("description", kind))
        if "diff" in spec:
            diff = resolve_path(spec["diff"], base)
            if not diff.is_file():
                raise fail(f"patches[{i}].diff", f"{str(diff)!r} does not exist")
            try:
                return CodePatch.from_diff(
                    diff.read_text(), kind, desc, str(diff), str(spec.get("role") or "")
                )
            except TaskError as exc:
                raise fail(f"patches[{i}].diff", str(exc)) from None
        hunks = spec.get("hunks")
        if "old" in spec and "new" in spec:
            hunks = [[spec["old"], spec["new"]]]
        if not hunks or not all(isinstance(h, (list, tuple)) and len(h) == 2 for h in hunks):
            raise fail(f"patches[{i}]", "needs `diff: <file>` or `hunks: [[old, new], ...]`")
        return CodePatch(
            kind,
            desc,
            tuple((str(a), str(b)) for a, b in hunks),
            str(spec.get("file", script)),
            str(spec.get("role") or ""),
        )

    # ----------------------------------------------------------------- InnerTask API
    def source(self) -> dict[str, str]:
        """The script's editable files plus the generated launcher."""
        files = super().source()
        spec = json.dumps(self._spec)
        files[LAUNCHER] = _LAUNCHER_STUB % spec
        return files

    def make_instance(self, seed: int) -> Instance:
        """The script's one instance: its start config (the script owns its data)."""
        return Instance(
            task=self.name,
            seed=seed,
            data={},
            start_config=dict(self.start_config),
            reference_config=dict(self.reference_config) if self.reference_config else None,
            info={"script": str(self.script), "self_reported": True},
        )

    def child_inputs(self, instance: Instance, split: str) -> dict[str, np.ndarray]:
        return {"split": np.asarray(split)}

    def parse_metric(self, output: str) -> float:
        """The metric in the script's output (the last match or JSON line).

        Raises:
            ValueError: no line holds the metric (the message names the key to fix).
        """
        if self._json_key is not None:
            for line in reversed(output.splitlines()):
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and self._json_key in row:
                    try:
                        return float(row[self._json_key])
                    except (TypeError, ValueError):
                        raise ValueError(
                            f"metric_json key {self._json_key!r} holds {row[self._json_key]!r}, not a number"
                        ) from None
            raise ValueError(
                f"no JSON line of the script's output has the key {self._json_key!r} "
                f"(fix metric_json in {task_config_hint()}); last line: {_last_line(output)!r}"
            )
        assert self._regex is not None
        matches = list(self._regex.finditer(output))
        if not matches:
            raise ValueError(
                f"metric_regex {self._regex.pattern!r} matched nothing in the script's output "
                f"(fix metric_regex in {task_config_hint()}); last line: {_last_line(output)!r}"
            )
        m = matches[-1]
        text = (
            m.group("value")
            if "value" in m.re.groupindex
            else (m.group(1) if m.re.groups else m.group(0))
        )
        try:
            return float(text)
        except ValueError:
            raise ValueError(
                f"metric_regex matched {text!r}, not a number (fix metric_regex in {task_config_hint()})"
            ) from None

    def evaluate(self, predictions: np.ndarray, instance: Instance, split: str) -> dict[str, float]:
        """Parse the metric from the captured output (self-reported: the script computed it)."""
        out = np.asarray(predictions).astype(np.uint8).tobytes().decode("utf-8", errors="replace")
        value = self.parse_metric(out)
        return {self.metric_for(split): value if math.isfinite(value) else float("nan")}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["script"] = str(self.script)
        return d


def _plain(value: Any) -> Any:
    """OmegaConf containers (what Hydra's ``instantiate`` passes) as plain dicts and lists."""
    if hasattr(value, "_metadata") and hasattr(value, "_get_node"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def _artifact_paths(paths: Any, fail: Any) -> tuple[str, ...]:
    """``artifacts`` as plain relative paths (no ``..``, not absolute), or ``fail``'s error."""
    if isinstance(paths, str) or not isinstance(paths, (list, tuple)):
        raise fail("artifacts", f"must be a list of file paths, got {paths!r}")
    for path in paths:
        parts = str(path).split("/")
        if not path or str(path).startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise fail("artifacts", f"holds {path!r}: give a path relative to the script's run")
    return tuple(str(p) for p in paths)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:120] if lines else "(no output)"


__all__ = ["LAUNCHER", "ScriptTask", "resolve_path"]
