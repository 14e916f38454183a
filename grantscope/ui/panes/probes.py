"""The Probes pane: pick a probe, fill its form, run all or step by step, read the log.

Every step runs in a thread worker (a blocking device call never stalls the UI) and comes
back as a :class:`StepDone` message.  The first step that changes state asks once for
confirmation.  Mappings and offers a probe makes are offered to the Page view; cleanup runs
when another probe is picked, on ``x`` and when the app quits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, RichLog
from textual.widgets.option_list import Option

from grantscope.errors import GrantscopeError
from grantscope.host.base import Host
from grantscope.model.histogram import histogram
from grantscope.probing.steps import SAMPLES_KEY
from grantscope.ui.messages import OpenPage, PageReleased
from grantscope.ui.panes.base import PaneContext, TabBody
from grantscope.ui.screens.confirm import ConfirmScreen


class StepDone(Message):
    """A step (or a cleanup release) finished; ``record`` is the engine's StepRecord."""

    def __init__(self, record: Any) -> None:
        super().__init__()
        self.record = record


class RunEnded(Message):
    """Run all, a single step or cleanup finished: refresh buttons and artifacts."""


def load_probes() -> list[Any]:
    """The built-in probes (empty when the probe engine cannot be imported)."""
    try:
        from grantscope.probing.engine import builtin_probes
    except ImportError:
        return []
    return list(builtin_probes())


#: The result key holding a probe's latency samples in µs (pingpong's round trips): the log
#: draws them as the histogram ``grantscope pingpong`` prints, not as a list of numbers.
#: Columns a histogram line takes besides its bar (bin edges, unit, frame, count, indent).
HISTOGRAM_TEXT = 36


def histogram_width(log_width: int) -> int:
    """The bar width that fits a histogram in a log ``log_width`` columns wide (10 to 40)."""
    return max(10, min(40, log_width - HISTOGRAM_TEXT))


def format_record(record: Any, bar_width: int = 24) -> Text:
    """One log entry: status, step, call and arguments, result, then the explanation; a
    latency histogram (:func:`grantscope.model.histogram.histogram`) when it has samples."""
    text = Text()
    if getattr(record, "phase", "step") == "cleanup":
        text.append("  cleanup ", style="bold cyan")
    text.append("✔ " if record.ok else "✘ ", style="bold green" if record.ok else "bold red")
    text.append(f"{record.index + 1}. {record.name}", style="bold")
    text.append(f"  {record.duration_s * 1000:.1f} ms\n", style="dim")
    args = ", ".join(f"{k}={v!r}" for k, v in record.arguments.items())
    text.append(f"   {record.call}({args})\n", style="cyan")
    if record.result:
        shown = ", ".join(f"{k}={v!r}" for k, v in record.result.items()
                          if k not in ("error", SAMPLES_KEY))
        if shown:
            text.append(f"   → {shown[:400]}\n")
    if not record.ok and record.errno is not None:
        text.append(f"   errno {record.errno} ({record.errno_name})\n", style="red")
    if record.explanation:
        for line in str(record.explanation).splitlines():
            text.append(f"   {line}\n", style="italic" if record.ok else "")
    samples = record.result.get(SAMPLES_KEY) if record.result else None
    if isinstance(samples, list) and samples and all(
            isinstance(v, (int, float)) for v in samples):
        text.append(f"   round trips ({len(samples)}):\n", style="bold")
        for line in histogram([float(v) for v in samples], width=bar_width):
            text.append(f"   {line}\n", style="cyan")
    return text


class ProbesPane(TabBody, Horizontal):
    """Probe list, parameter form and step log."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # "s" and not "n": the confirmation a mutating step asks answers n (No), and a user
        # stepping with repeated presses must not answer it by accident
        Binding("s", "step", "Step", id="probes.step"),
        Binding("a", "run_all", "Run all", id="probes.run_all"),
        Binding("x", "cleanup", "Cleanup", id="probes.cleanup"),
        Binding("o", "open_page", "Open page", id="probes.open_page"),
        Binding("escape", "leave_field", "Leave field", show=False, id="probes.leave_field"),
    ]
    DEFAULT_CSS = """
    ProbesPane #probe-list { width: 26; border-right: solid $panel; }
    ProbesPane #probe-side { width: 1fr; }
    ProbesPane #probe-summary { width: 1fr; padding: 0 1; text-style: bold; }
    ProbesPane #probe-form { height: auto; max-height: 12; padding: 1 1 0 1; }
    ProbesPane .param { height: 1; margin-bottom: 1; }
    ProbesPane .param Label { width: 12; }
    ProbesPane .param Input { width: 1fr; height: 1; border: none; padding: 0 1;
                              background: $boost; }
    ProbesPane .param Input:focus { background: $primary 20%; }
    ProbesPane #probe-buttons { height: 3; padding: 0 1; }
    ProbesPane #probe-buttons Button { margin-right: 1; min-width: 12; }
    ProbesPane #probe-status { padding: 0 1; color: $text-muted; }
    ProbesPane RichLog { height: 1fr; border-top: solid $panel; padding: 0 1; }
    """

    def __init__(self, host: Host, *, readonly: bool = False, live: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(host, live=live, **kwargs)
        self.readonly = readonly or host.devices() is None
        every = load_probes()
        # --readonly hides every mutating action: mutating probes are not even listed
        self.probes = [p for p in every if not (self.readonly and p.mutating)]
        self.hidden = len(every) - len(self.probes)
        self.probe: Any = None
        self.run: Any = None
        self.confirmed = False
        self.busy = False
        self.published: set[str] = set()
        self.transcript: list[str] = []  # the log as plain text (what the RichLog shows)

    def compose(self) -> ComposeResult:
        yield OptionList(*[Option(p.name, id=p.name) for p in self.probes], id="probe-list")
        with Vertical(id="probe-side"):
            yield Label(self._intro(), id="probe-summary")
            yield VerticalScroll(id="probe-form")
            with Horizontal(id="probe-buttons"):
                yield Button("Step (s)", id="step", variant="primary")
                yield Button("Run all (a)", id="run-all", variant="success")
                yield Button("Cleanup (x)", id="cleanup", variant="warning")
            yield Label("", id="probe-status")
            yield RichLog(id="probe-log", wrap=True, markup=False, auto_scroll=True)

    def _intro(self) -> str:
        if not self.probes:
            if self.hidden and self.host.info().backend == "replay":
                # the user typed no --readonly: say why in their terms
                return ("A bundle is a recording: probes act on live devices, so none can "
                        "run here. Run them on the host itself (grantscope, tab 5).")
            if self.hidden:
                return (f"--readonly hides all {self.hidden} probes: each one maps, grants, "
                        "binds or writes something other domains can see.")
            return "The probe engine is not available in this installation."
        return "Pick a probe on the left."

    @classmethod
    def for_app(cls, app: PaneContext) -> ProbesPane:
        """The pane for ``app``: it hides the mutating probes of a read-only app."""
        return cls(app.host, readonly=app.readonly, live=app.live,
                   domain_names=app.domain_names)

    def on_mount(self) -> None:
        if self.readonly or not self.probes:
            for bid in ("step", "run-all", "cleanup"):
                self.query_one(f"#{bid}", Button).disabled = not self.probes
        if self.probes:
            self.select_probe(self.probes[0].name)

    # -- choosing a probe --------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "probe-list" and event.option.id:
            event.stop()
            if self.probe is None or self.probe.name != event.option.id:
                self.select_probe(event.option.id)

    def select_probe(self, name: str) -> None:
        """Show ``name``'s form; a run of another probe is cleaned up first."""
        if self.busy:
            self.notify("a step is running; wait for it", severity="warning")
            return
        if self.run is not None:
            self.cleanup_run()
        self.probe = next(p for p in self.probes if p.name == name)
        self.query_one("#probe-list", OptionList).highlighted = self.probes.index(self.probe)
        self.run = None
        self.confirmed = False
        self.query_one("#probe-summary", Label).update(f"{self.probe.name}: {self.probe.summary}")
        form = self.query_one("#probe-form", VerticalScroll)
        form.remove_children()
        rows = []
        hints = self.host.probe_hints().get(name, {})
        for param in self.probe.params:
            box = Input(value=hints.get(param.name, param.default or ""),
                        placeholder=f"{param.kind}: {param.help}",
                        id=f"param-{param.name}", tooltip=param.help)
            box.cursor_blink = self.live  # a blinking cursor would make snapshots flaky
            rows.append(Horizontal(Label(param.name), box, classes="param"))
        form.mount_all(rows)
        self.set_status()
        self.query_one(RichLog).clear()
        self.transcript.clear()

    def write_log(self, text: Text) -> None:
        """Append to the step log (and to the plain-text transcript)."""
        self.transcript.append(text.plain)
        self.query_one(RichLog).write(text)

    def values(self) -> dict[str, str]:
        """The form's values (empty fields are left out, so defaults apply)."""
        out: dict[str, str] = {}
        for param in self.probe.params if self.probe else ():
            value = self.query_one(f"#param-{param.name}", Input).value.strip()
            if value:
                out[param.name] = value
        return out

    def set_status(self) -> None:
        """One line: which step is next."""
        label = self.query_one("#probe-status", Label)
        if self.run is None:
            label.update("not started: s runs the first step, a runs all")
        elif self.run.done:
            label.update(f"done ({'ok' if self.run.ok else 'failed'}): x cleans up, "
                         "o opens a page it made")
        else:
            name = self.run.step_names[self.run.next_index]
            label.update(f"next: {self.run.next_index + 1}/{len(self.run.step_names)} {name}")

    # -- running -------------------------------------------------------------------------
    def _ensure_run(self) -> bool:
        if self.probe is None:
            return False
        if self.run is not None:
            return True
        devices = self.host.devices()
        if devices is None:
            self.notify("this host is read-only: probes cannot run", severity="error")
            return False
        from grantscope.probing.engine import ProbeRun

        try:
            self.run = ProbeRun(self.probe, self.values(), devices, readonly=self.readonly)
        except GrantscopeError as err:
            self.write_log(Text(f"✘ {err.message}", style="bold red"))
            if err.explanation:
                self.write_log(Text(f"   {err.explanation}"))
            return False
        self.write_log(Text(
            f"▶ {self.probe.name}: {len(self.run.step_names)} steps", style="bold"))
        return True

    def _confirm_then(self, action: str) -> None:
        if self.busy or not self._ensure_run() or self.run.done:
            if self.run is not None and self.run.done:
                self.notify("the run is over: x cleans up, then run it again")
            return
        mutating_ahead = any(s.mutating for s in self.run.steps[self.run.next_index:])
        needs = self.run.next_is_mutating() if action == "step" else mutating_ahead
        if needs and not self.confirmed:
            ahead = self.run.steps[self.run.next_index:]
            step = next(s.name for s in ahead if s.mutating)
            question = (f"Probe {self.probe.name} is about to change state other domains can "
                        f"see (first: '{step}'). Run its mutating steps?")

            def answered(yes: bool | None) -> None:
                if yes:
                    self.confirmed = True
                    self._go(action)
                else:
                    self.notify("not run")

            self.app.push_screen(ConfirmScreen(question), answered)
            return
        self._go(action)

    def _go(self, action: str) -> None:
        self.busy = True
        self.execute(action == "all")

    def action_leave_field(self) -> None:
        """Escape in a parameter field: back to the probe list, where keys are commands again
        (in a field, ``q`` and the step keys are text)."""
        if isinstance(self.app.focused, Input):
            self.query_one("#probe-list").focus()

    def action_step(self) -> None:
        """``s``: run the next step."""
        self._confirm_then("step")

    def action_run_all(self) -> None:
        """``a``: run every remaining step."""
        self._confirm_then("all")

    @work(thread=True, exclusive=True, group="probe", exit_on_error=False)
    def execute(self, run_all: bool) -> None:
        """Run one step or all remaining ones; each record is posted as it completes."""
        try:
            run = self.run
            while run is not None and not run.done:
                self.post_message(StepDone(run.run_next()))
                if not run_all:
                    break
        finally:
            self.post_message(RunEnded())

    def _bar_width(self) -> int:
        return histogram_width(self.query_one(RichLog).scrollable_content_region.width)

    def on_step_done(self, message: StepDone) -> None:
        self.write_log(format_record(message.record, self._bar_width()))

    def on_run_ended(self, _: RunEnded) -> None:
        self.busy = False
        self.set_status()
        self.publish_artifacts()

    def publish_artifacts(self) -> None:
        """Offer each mapping or offer the run holds to the Page view (once)."""
        if self.run is None:
            return
        for key, obj in list(self.run.artifacts.items()):
            if not hasattr(obj, "read") or not hasattr(obj, "grefs"):
                continue
            page_key = f"probe:{self.probe.name}:{key}"
            if page_key in self.published:
                continue
            self.published.add(page_key)
            title = f"{self.probe.name}: {key} d{obj.domid} gref {obj.grefs[0]}"
            self.post_message(OpenPage(page_key, title, obj))

    def action_open_page(self) -> None:
        """``o``: show the newest page this run made in the Page view."""
        if not self.published:
            self.notify("this run has made no mapping or offer yet")
            return
        key = sorted(self.published)[-1]
        self.post_message(OpenPage(key, key))  # no source: the app shows the Page tab at it

    def action_cleanup(self) -> None:
        """``x``: release what the run holds, newest first."""
        if self.busy:
            self.notify("a step is running; cleanup follows when it ends", severity="warning")
            return
        self.cleanup_run()

    def cleanup_run(self) -> None:
        """Run the engine's cleanup now (on the UI thread: releases are quick and must finish)."""
        if self.run is None:
            return
        run, self.run = self.run, None
        for record in run.cleanup():
            self.write_log(format_record(record, self._bar_width()))
        for key in self.published:
            self.post_message(PageReleased(key))
        self.published.clear()
        self.confirmed = False
        self.set_status()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"step": self.action_step, "run-all": self.action_run_all,
         "cleanup": self.action_cleanup}[str(event.button.id)]()
