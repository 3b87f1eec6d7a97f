"""The ``nbart`` command: flags generated from the parameter spec, a tqdm bar on stderr, atomic outputs.

``main(argv) -> exit status``: 0 on success; 2 with one ``nbart: error: ...`` line for bad input; 1 with one line
when a run fails or its output can't be written (the last good image is still written when it can be); 130 after
Ctrl-C, 128 + N after a catchable signal N that ends a process (SIGTERM from ``timeout`` or a scheduler, SIGHUP),
both writing the current image. No traceback reaches the user unless NBART_DEBUG=1.

What can't be caught (SIGKILL, an out-of-memory abort, a crash in a native library) can't lose more than
``CHECKPOINT_SECONDS`` of work (:mod:`nbart.safety`): during a run, the output path holds a checkpoint, the latest
image written atomically (with the settings and the step reached in its metadata, ``ended: "checkpoint"``), renewed
every ``CHECKPOINT_SECONDS`` and at the end of every stage (octave, resolution).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nbart import backbones, safety
from nbart.backbones import WeightsError
from nbart.cost import WontFit
from nbart.events import error_message
from nbart.images import GIF_MAX_FRAMES, SAVE_FORMATS, ImageError, folder_problem, sample_names, save_gif, save_image
from nbart.params import DreamParams, FastStyleParams, FieldInfo, ParamError, StyleParams, fields_of

CLI_ONLY_FLAGS = ("output", "gif", "video", "quiet", "dry_run")  # the flags that are not parameters of the engine


class CliError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        raise CliError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, but an unknown flag is named with the closest real one (``--stepz``: ``--steps``)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            sub = self._subparser(getattr(parsed, "command", None))
            if getattr(parsed, "sweep_task", None) and isinstance(sub, _Parser):  # nbart sweep TASK: its flags
                sub = sub._subparser(parsed.sweep_task)
            known = list(sub._option_string_actions)  # noqa: SLF001 (argparse keeps no public list of flags)
            hints = [f"did you mean {close[0]}?" for flag in extras if flag.startswith("--")
                     for close in [difflib.get_close_matches(flag.split("=", 1)[0], known, n=1, cutoff=0.6)]
                     if close]
            where = sub.prog if sub is not self else self.prog
            raise CliError(f"unrecognized arguments: {' '.join(extras)}" + (f"; {' '.join(hints)}" if hints else "")
                           + f" (see {where} --help)")
        return parsed

    def _subparser(self, command: str | None) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:  # noqa: SLF001
                return action.choices[command]
        return self


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _as_flags(line: str) -> str:
    """A parameter's message in the CLI's words: each two-word field name (``average_decay``) as its flag
    (``--average-decay``), so the line names what the user typed; one-word names read the same either way."""
    names = {i.name for cls in (DreamParams, StyleParams, FastStyleParams) for i in fields_of(cls) if "_" in i.name}
    for name in sorted(names, key=len, reverse=True):
        line = re.sub(rf"(?<![\w:/.-]){name}\b", _flag(name), line)
    return line


def _typed(kind: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind == 'int' else 'a number'} "
                                             f"(got {text!r})") from None

    return convert


def _show_default(info: FieldInfo) -> str:
    value = info.default
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "empty"
    return str(value)


def _help_of(info: FieldInfo) -> str:
    """A flag's help with its default, unless the help already says what empty means and empty is the default."""
    shown = _show_default(info)
    if shown == "empty" and "(empty:" in info.spec.help:
        return info.spec.help
    return f"{info.spec.help} (default: {shown})"


def add_spec_arguments(parser: argparse.ArgumentParser, params_cls: type) -> None:
    """One flag per field of ``params_cls``: ``--octave-scale``, ``--layers a,b``, ``--preserve-colors/--no-...``.

    Flags left out keep the spec's defaults (argparse.SUPPRESS), so the defaults live in one place.
    """
    group = parser.add_argument_group("parameters")
    for info in fields_of(params_cls):
        kw: dict[str, Any] = dict(dest=info.name, default=argparse.SUPPRESS,
                                  help=_help_of(info))
        if info.kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif info.choices:
            kw.update(choices=info.choices, metavar="{" + ",".join(map(str, info.choices)) + "}")
        elif info.kind in ("int", "float", "optional_int"):
            kw.update(type=_typed("float" if info.kind == "float" else "int"), metavar="N" if "int" in info.kind
                      else "F")
        elif info.kind.endswith("_tuple"):
            kw["metavar"] = "A,B,..."
        group.add_argument(_flag(info.name), **kw)


@dataclass(frozen=True)
class Task:
    """A CLI subcommand over an engine run."""

    name: str
    params_cls: type
    start: Callable[..., Any]  # (args, params) -> Run
    inputs: tuple[tuple[str, str | None], ...]  # positional image arguments: (name, argparse nargs)
    help: str
    tensorflow: bool = True  # whether the run needs TensorFlow (imported quietly before the bar starts)

    def input_paths(self, args: argparse.Namespace) -> list[str]:
        """Every image the command line names, flattened."""
        paths: list[str] = []
        for name, _ in self.inputs:
            value = getattr(args, name)
            paths.extend(value if isinstance(value, list) else [value])
        return paths


def _dream_start(args: argparse.Namespace, params: DreamParams) -> Any:
    from nbart.deepdream import dream_run

    return dream_run(args.input, params)


def _style_start(args: argparse.Namespace, params: StyleParams) -> Any:
    from nbart.styletransfer import style_run

    return style_run(args.content, args.style, params)


def _fast_start(args: argparse.Namespace, params: FastStyleParams) -> Any:
    from nbart.fast import fast_style_run

    return fast_style_run(args.content, args.style, params)


TASKS = [
    Task("dream", DreamParams, _dream_start, (("input", None),), "deep-dream an image"),
    Task("style", StyleParams, _style_start, (("content", None), ("style", "+")),
         "paint a content image in the style of one or more style images"),
    Task("fast-style", FastStyleParams, _fast_start, (("content", None), ("style", "+")),
         "paint a content image in the style of one or more style images in one fast forward pass (Magenta's "
         "arbitrary stylization network)", tensorflow=False),
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``nbart`` argument parser."""
    parser = _Parser(prog="nbart", description="Deep Dream and Neural Style Transfer, on TensorFlow/Keras.")
    from nbart import __version__

    parser.add_argument("--version", action="version", version=f"nbart {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    sub.add_parser("models", help="list the backbones, their layers, and which weights are available here")
    download = sub.add_parser("download", help="fetch ImageNet weights into Keras' cache and build the offline ones")
    download.add_argument("models", nargs="*", metavar="MODEL",
                          help=f"backbones to fetch (default: the defaults of dream and style: {_default_models()})")
    samples = ", ".join(f"sample:{n}" for n in sample_names())
    _add_style_sheet(sub, samples)
    from nbart import cli_motion  # nbart zoom (and videos in nbart style / fast-style)

    cli_motion.add_parsers(sub, add_spec_arguments, samples)
    _add_sweep(sub, samples)  # issue 18: nbart sweep dream|style ... --over NAME=V1,V2
    for task in TASKS:
        p = sub.add_parser(task.name, help=task.help, description=task.help)
        for name, nargs in task.inputs:
            p.add_argument(name, nargs=nargs, help=f"image{'s' if nargs else ''}: a path, an http(s) URL, or a "
                                                   f"bundled sample ({samples})")
        p.add_argument("-o", "--output", required=True,
                       help=f"where to write the result ({', '.join(SAVE_FORMATS)}); written atomically")
        p.add_argument("--gif", metavar="PATH", help="also write the run as an animated GIF")
        p.add_argument("--video", metavar="PATH", help="also write the run's timeline (its small frames, the "
                                                       "final picture last) as an MP4, or a GIF (.mp4, .gif)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--dry-run", action="store_true",  # nbart.cost
                       help="print the run's expected time and peak memory on this machine, and exit")
        add_spec_arguments(p, task.params_cls)
    return parser


SHEET_FIELDS = ("strength", "style_size", "preserve_colors")  # the FastStyleParams a style sheet takes


def _add_style_sheet(sub: Any, samples: str) -> None:
    what = "the content painted in every bundled painting (and any STYLE given), fast, as one labelled contact sheet"
    p = sub.add_parser("style-sheet", help=what, description=what)
    p.add_argument("content", help=f"image: a path, an http(s) URL, or a bundled sample ({samples})")
    p.add_argument("style", nargs="*", help="more style images")
    p.add_argument("-o", "--output", required=True, help=f"where to write the sheet ({', '.join(SAVE_FORMATS)})")
    p.add_argument("--tile", type=_typed("int"), default=256, metavar="N",
                   help="long side of each picture, in pixels (default: 256)")
    p.add_argument("--columns", type=_typed("int"), default=4, metavar="N", help="pictures per row (default: 4)")
    group = p.add_argument_group("parameters")
    for info in fields_of(FastStyleParams):
        if info.name in SHEET_FIELDS:
            kw: dict[str, Any] = dict(dest=info.name, default=argparse.SUPPRESS,
                                      help=_help_of(info))
            if info.kind == "bool":
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw.update(type=_typed(info.kind), metavar="F" if info.kind == "float" else "N")
            group.add_argument(_flag(info.name), **kw)


def _style_sheet(args: argparse.Namespace) -> int:
    from nbart.fast import sheet_labels, style_sheet

    out = args.output
    if os.path.splitext(out)[1].lower() not in SAVE_FORMATS:
        raise CliError(f"output must end in {', '.join(SAVE_FORMATS)} (got {out!r})")
    problem = folder_problem(out)
    if problem:
        raise CliError(f"can't write {out}: {problem}")
    kwargs = {name: getattr(args, name) for name in SHEET_FIELDS if hasattr(args, name)}
    sheet = style_sheet(args.content, args.style or None, tile=args.tile, columns=args.columns, **kwargs)
    settings = FastStyleParams(**kwargs, max_size=args.tile).to_dict()
    save_image(sheet, out, {"task": "style-sheet", "inputs": [args.content, *args.style], "tile": args.tile,
                            "columns": args.columns, "labels": sheet_labels(args.style or None),
                            "params": {name: settings[name] for name in SHEET_FIELDS}})
    print(f"nbart: wrote {out}", file=sys.stderr)
    return 0


# --- nbart sweep (issue 18): every combination of a few parameters' values, as one labelled contact sheet ---

def _add_sweep(sub: Any, samples: str) -> None:
    what = "render every combination of a few parameters' values, small, as one labelled contact sheet"
    p = sub.add_parser("sweep", help=what, description=what)
    tasks = p.add_subparsers(dest="sweep_task", metavar="TASK", required=True, parser_class=_Parser)
    for task in TASKS[:2]:  # dream, style
        t = tasks.add_parser(task.name, help=f"sweep: {task.help}", description=f"{what}: {task.help}")
        for name, nargs in task.inputs:
            t.add_argument(name, nargs=nargs, help=f"image{'s' if nargs else ''}: a path, an http(s) URL, or a "
                                                   f"bundled sample ({samples})")
        t.add_argument("--over", action="append", required=True, metavar="NAME=V1,V2",
                       help="a parameter and its values (repeat for more parameters); list values join items with "
                            "'+': --over layers=mixed3+mixed5,mixed4")
        t.add_argument("-o", "--output", required=True, help=f"where to write the sheet ({', '.join(SAVE_FORMATS)})")
        t.add_argument("--size", type=_typed("int"), metavar="N",
                       help="long side of each picture, in pixels (max_size; default: 128)")
        t.add_argument("--columns", type=_typed("int"), metavar="N",
                       help="pictures per row (default: one per value of the last swept parameter)")
        t.add_argument("--quiet", action="store_true", help="no progress bar")
        add_spec_arguments(t, task.params_cls)


def _sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nbart.sweeps import sweep_run, value_text, values_from_text

    task = next(t for t in TASKS if t.name == args.sweep_task)
    out = args.output
    if os.path.splitext(out)[1].lower() not in SAVE_FORMATS:
        raise CliError(f"output must end in {', '.join(SAVE_FORMATS)} (got {out!r})")
    problem = folder_problem(out)
    if problem:
        raise CliError(f"can't write {out}: {problem}")
    over: dict[str, list] = {}
    for text in args.over:
        name, sep, values_text = text.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not name or not values_text.strip():
            raise CliError(f"--over takes NAME=V1,V2,... (got {text!r})")
        values = values_from_text(task.name, name, values_text)
        if name in over:
            raise CliError(f"--over {name} is given twice; list all its values in one --over")
        over[name] = values
    fixed = {info.name: getattr(args, info.name) for info in fields_of(task.params_cls) if hasattr(args, info.name)}
    inputs = task.input_paths(args)
    s = sweep_run(task.name, *inputs, over=over, size=args.size, **fixed)
    _import_tensorflow_quietly()
    bar = tqdm(total=len(s.combinations), file=sys.stderr, disable=args.quiet, unit="picture", dynamic_ncols=True,
               desc=f"sweep {task.name}")
    shown: set[str] = set()
    interrupted, signalled = False, 0
    try:
        with safety.EndingSignals():
            for result in s:
                bar.update(1)
                bar.set_postfix_str(result.label, refresh=False)
                for notice in result.notices:
                    if notice not in shown:
                        shown.add(notice)
                        bar.write(f"nbart: note: {notice}", file=sys.stderr)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP (safety.Signalled): the sheet of what finished
        interrupted, signalled = True, getattr(e, "signum", 0)
        s.stop()
    finally:
        bar.close()
    status = 128 + signalled if signalled else 130
    if not s.results:
        print("nbart: interrupted before the first picture; nothing written", file=sys.stderr)
        return status
    sheet = s.sheet(args.columns)
    save_image(sheet.image, out, {"task": f"sweep {task.name}", "inputs": inputs,
                                  "over": {k: [value_text(v) for v in vs] for k, vs in s.over.items()},
                                  "results": [{"values": {k: value_text(v) for k, v in r.values.items()},
                                               "params": r.params, "ended": r.outcome} for r in s.results]})
    made = f"{len(s.results)} of {len(s.combinations)} pictures"
    print(f"nbart: {'interrupted; ' if interrupted else ''}wrote {out} ({made})", file=sys.stderr)
    return status if interrupted else 0


def _models() -> str:
    lines = []
    for name in backbones.names():
        bb = backbones.get(name)
        imagenet = "cached" if backbones.imagenet_cached(bb) else "not cached (downloaded on first use when online)"
        weights = f"imagenet: {imagenet}; none" + ("; offline (HED VGG16, bundled)" if bb.offline else "")
        lines.append(f"{name}\n  layers: {', '.join(bb.layers)}\n  dream default: {', '.join(bb.dream_layers)}\n"
                     f"  content default: {', '.join(bb.content_layers)}\n"
                     f"  style default: {', '.join(bb.style_layers)}\n  weights: {weights}")
    return "\n".join(lines) + "\n"


def _default_models() -> str:
    return ", ".join(dict.fromkeys(t.params_cls().model for t in TASKS if t.tensorflow))


def _download(models: Sequence[str]) -> str:
    lines = []
    chosen = [backbones.get(name) for name in models or _default_models().split(", ")]  # unknown names fail first
    for bb in chosen:
        lines.append(f"{bb.name}: {backbones.download_imagenet(bb)}")
    lines.append(f"offline vgg16: {backbones.offline_weights_path()}")
    return "\n".join(lines) + "\n"


def _check_paths(args: argparse.Namespace, inputs: Sequence[str]) -> None:
    """Refuse outputs that can't be written before any work, so a long run can't end unable to save."""
    out = args.output
    if os.path.splitext(out)[1].lower() not in SAVE_FORMATS:
        moving = os.path.splitext(out)[1].lower() in (".gif", ".mp4")  # asked for a video from a still input
        raise CliError(f"output must end in {', '.join(SAVE_FORMATS)} (got {out!r})" + (
            f"; a .gif or .mp4 output needs a video or an animated GIF as input, and {inputs[0]!r} is not one"
            if moving and inputs else ""))
    if args.gif and not args.gif.lower().endswith(".gif"):
        raise CliError(f"--gif must end in .gif (got {args.gif!r})")
    video = getattr(args, "video", None)  # nbart.timeline
    if video and os.path.splitext(video)[1].lower() not in (".mp4", ".gif"):
        raise CliError(f"--video must end in .mp4 or .gif (got {video!r})")
    for path in filter(None, (out, args.gif, video)):
        problem = folder_problem(path)
        if problem:
            raise CliError(f"can't write {path}: {problem}")
        for source in inputs:
            if os.path.exists(source) and os.path.abspath(path) == os.path.abspath(source):
                raise CliError(f"output {path} is the input; choose another file name so the input is kept")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow before the progress bar starts, with its native start-up chatter hidden (nbart.quiet)."""
    from nbart.quiet import tensorflow

    tensorflow()


def _run_task(task: Task, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    _check_paths(args, task.input_paths(args))
    values = {info.name: getattr(args, info.name) for info in fields_of(task.params_cls) if hasattr(args, info.name)}
    params = task.params_cls(**values)
    asked = params
    if args.dry_run:  # the estimate, printed whether or not the run would fit
        params = params.replace(force=True)
    # checks the images, and refuses a run that won't fit in memory (nbart.cost.WontFit; see _wont_fit);
    # computes nothing until the first event is pulled
    run = task.start(args, params)
    if task.tensorflow:
        _import_tensorflow_quietly()
        if args.dry_run:
            from nbart.cost import WontFit, check_fits, estimate

            inputs = _estimate_inputs(task, args)
            print(f"nbart: {task.name}: {estimate(task.name, *inputs, params=params).summary()}")
            try:  # a dry run also says whether the real run would be refused for memory
                check_fits(task.name, inputs, asked)
            except WontFit as error:
                print(f"nbart: {task.name}: won't fit here: {_wont_fit(error)}")
            return 0
    elif args.dry_run:
        print(f"nbart: {task.name}: no estimate for this task (one forward pass of the fast style networks)")
        return 0
    frames: list = []
    stride = max(1, math.ceil(run.total / GIF_MAX_FRAMES))
    # the time left is the engine's (event.seconds_left): tqdm's own rate would count the first step's tracing
    bar = tqdm(total=run.total, file=sys.stderr, disable=args.quiet, unit="step", dynamic_ncols=True,
               desc=task.name, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    note_new = safety.Notices(run, bar)  # writes the run's new notices above the bar

    interrupted, failure, signalled = False, None, 0
    # a warning during the run (a library's, or the lean network's fallback) goes above the bar, not into its line
    warnings.showwarning = lambda message, *_, **__: bar.write(f"nbart: warning: {' '.join(str(message).split())}",
                                                              file=sys.stderr)
    saver = safety.Checkpoints(run, args.output, task.input_paths(args), bar)
    poller = safety.ProgressPoller(run, bar)
    try:
        with safety.EndingSignals():
            poller.start()
            note_new()
            for event in run:
                loss = f" loss={event.loss:.4g}" if math.isfinite(event.loss) else ""  # a forward pass has none
                left = event.seconds_left
                left = "" if event.done else f" · {left:.0f} s left" if math.isfinite(left) else " · estimating"
                bar.set_postfix_str(f"{event.label}{loss}{left}", refresh=False)
                bar.update(event.step - bar.n)  # a stage that ended early skips its planned steps
                note_new()
                if args.gif and (event.step % stride == 0 or event.done):
                    frames.append(event.image())
                saver.after(event)
    except KeyboardInterrupt as e:  # Ctrl-C, or a SIGTERM/SIGHUP raised as Signalled
        interrupted, signalled = True, getattr(e, "signum", 0)
        run.close()
    except Exception as e:  # a fault mid-run (out of memory, a bug): keep the last good image, report one line
        failure = e
        run.close()
    finally:
        poller.stop()
        bar.close()
        warnings.showwarning = _warning_line
    note_new()
    stopped_status = 128 + signalled if signalled else 130
    how = f"ended by {signal.Signals(signalled).name}" if signalled else "interrupted"
    if run.latest is None:
        if interrupted:
            print(f"nbart: {how} before the first step; nothing written", file=sys.stderr)
            return stopped_status
        if failure is not None:
            raise failure  # main() turns it into one line
        raise CliError("the run ended before its first step; nothing written")
    steps = f"step {run.latest.step}/{run.total}"
    ended = how if interrupted else f"failed: {error_message(failure)}" if failure else \
        str(run.outcome or "stopped")
    try:
        save_image(run.image(), args.output, run.metadata(ended=ended, inputs=task.input_paths(args)))
        if args.gif and frames:
            save_gif(frames, args.gif)
        if args.video:  # nbart.timeline: the run's bounded frames, the final picture last
            from nbart.timeline import save_timeline

            save_timeline(run.frames(), args.video, final=run.image())
    except ImageError as e:  # a full disk or a folder gone read-only: the run is lost, say so in one line
        print(f"nbart: error: {e}", file=sys.stderr)
        return stopped_status if interrupted else 1
    also = "".join(f" and {p}" for p in (args.gif if frames else None, args.video) if p)  # the other files written
    if interrupted:
        print(f"nbart: {how} at {steps}; wrote {args.output}{also}", file=sys.stderr)
        return stopped_status
    if failure is not None:
        print(f"nbart: error: the run failed at {steps} ({error_message(failure)}); wrote the last good image to "
              f"{args.output}{also}", file=sys.stderr)
        return 1
    if not args.quiet or not run.completed:
        what = "wrote" if run.completed else f"stopped at {steps}; wrote"
        print(f"nbart: {what} {args.output}{also}", file=sys.stderr)
    return 0


def _estimate_inputs(task: Task, args: argparse.Namespace) -> tuple:  # nbart.cost: the images of a run
    return tuple(getattr(args, name) for name, _ in task.inputs)


def _wont_fit(error: WontFit) -> str:
    """nbart.cost.WontFit's line with its way forward as flags: '...; try --max-size 640, or --force'."""
    flags = " ".join(f"{_flag(k)} {','.join(map(str, v)) if isinstance(v, tuple) else v}"
                     for k, v in error.fits.items())
    return f"{error.headline}; " + (f"try {flags}, or --force" if flags else "no --max-size fits; free memory, or "
                                    "--force")


def _warning_line(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    """Python warnings (ours or a library's) as one ``nbart: warning:`` line, without the source line."""
    print(f"nbart: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nbart`` command with ``argv`` (default: sys.argv[1:]) and return its exit status."""
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        return _main(argv)


def _negative_values_joined(argv: Sequence[str]) -> list[str]:
    """``--style-blend -1,1`` as ``--style-blend=-1,1``: argparse takes a value that starts with ``-`` for a flag
    (it knows only plain negative numbers), so a negative value would be called a missing argument, not a bad value."""
    out: list[str] = []
    for token in argv:
        if out and re.match(r"-[\d.]", token) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _main(argv: Sequence[str] | None) -> int:
    command = None
    try:
        args = build_parser().parse_args(_negative_values_joined(sys.argv[1:] if argv is None else argv))
        command = args.command
        if args.command == "models":
            sys.stdout.write(_models())
            return 0
        if args.command == "download":
            sys.stdout.write(_download(args.models))
            return 0
        if args.command == "style-sheet":
            return _style_sheet(args)
        if args.command == "sweep":
            return _sweep(args)
        from nbart import cli_motion

        if args.command == "zoom":
            return cli_motion.zoom(args)
        task = next(t for t in TASKS if t.name == args.command)
        if task.name in ("style", "fast-style") and cli_motion.wants_video(args):  # a video painted frame by frame
            return cli_motion.style_video(args, task.params_cls)
        return _run_task(task, args)
    except (CliError, ParamError, ImageError, WeightsError) as e:
        line = _wont_fit(e) if isinstance(e, WontFit) else str(e)
        if isinstance(e, ParamError) and command != "sweep":  # a sweep's --over takes the Python names
            line = _as_flags(line)
        print(f"nbart: error: {' '.join(line.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nbart: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # --help and --version
        return e.code if isinstance(e.code, int) else 0
    except Exception as e:  # anything else is a fault, not bad input: still one line, unless debugging
        if os.environ.get("NBART_DEBUG", "") not in ("", "0"):
            raise
        print(f"nbart: error: {error_message(e)} (set NBART_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
