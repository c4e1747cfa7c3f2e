"""What our users see: headless Chromium (Debian's `chromium` package, driven by Playwright through
`executable_path`, no browser download) logs into the session's Label Studio and opens a prompt
task and a dialogue task that our exporter made from real LangChain calls, checks that the prompt,
every turn (role and text) and the pre-filled response are on screen, and saves a full-page
screenshot of each, failed or not, under the test's tmp_path and `test-output/browser/`.

`scripts/ensure-chromium.sh` installs the browser on a fresh machine (scripts/test.sh runs it).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from playwright.sync_api import Browser, Page, expect, sync_playwright

from otel_labelstudio import LabelStudioSpanExporter

pytestmark = pytest.mark.labelstudio

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "browser"  # gitignored
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a container's /dev/shm is often too small for the renderer
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
FIRST_LOAD_MS = 60_000  # a cold server and browser parse Label Studio's large JS bundles
STEP_MS = 20_000

# Stable hooks in Label Studio 1.23's labeling UI (BEM `lsf-*` classes and data-testids; the
# Paragraphs' role/text spans only have CSS-module classes, so those match on the prefix).
LABELING = ".lsf-main-view__annotation"  # the labeling area of the selected annotation
TEXT_LINE = ".lsf-richtext .lsf-richtext__line"  # a <Text> object's content
PHRASE = "[data-testid=phrases-wrapper] [data-testid^='phrase:']"  # one <Paragraphs> turn
PHRASE_ROLE = "[class*=dialoguename]"
PHRASE_TEXT = "[class*=dialoguetext]"
RESPONSE = "[data-testid=textarea-region] [data-testid=htx-textbox-content]"  # a TextArea result
TAB = ".lsf-annotation-button"  # the annotation/prediction tabs above the labeling area
SELECTED_TAB = ".lsf-annotation-button_selected"
SELECTED_CLASS = re.compile(r"\blsf-annotation-button_selected\b")
PREDICTION_TAB = ".lsf-annotation-button:has(.lsf-annotation-button__userpic_prediction)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh", pytrace=False)
    expect.set_options(timeout=STEP_MS)  # Playwright's 5 s default is short for a loaded CI
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, label_studio: Any) -> Iterator[Page]:
    """A fresh context logged in through Label Studio's login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(STEP_MS)
    try:
        p = context.new_page()
        started = time.perf_counter()
        p.goto(f"{label_studio.url}/user/login/", timeout=FIRST_LOAD_MS)
        p.fill("input[name=email]", label_studio.username)
        p.fill("input[name=password]", label_studio.password)
        p.click("button[type=submit]")
        p.wait_for_url(lambda url: "/user/login" not in url, timeout=FIRST_LOAD_MS)
        print(f"login: {time.perf_counter() - started:.1f} s")
        yield p
    finally:
        context.close()


class Delivery:
    """Our exporter behind the session's instrumented LangChain, for one test."""

    def __init__(self, switchboard: Any, label_studio: Any, project: str, mode: str) -> None:
        self.exporter = LabelStudioSpanExporter(
            url=label_studio.url,
            api_key=label_studio.personal_access_token,
            project_name=project,
            mode=mode,
        )
        self.processor = BatchSpanProcessor(self.exporter)
        self.switchboard = switchboard
        switchboard.target = self.processor

    def flush(self) -> bool:
        return self.processor.force_flush(30_000) and self.exporter.force_flush()

    def close(self) -> None:
        self.switchboard.target = None
        self.processor.shutdown()


@pytest.fixture
def deliver(langchain_tracing: Any, label_studio: Any, unique_project_name: str) -> Iterator[Any]:
    made: list[Delivery] = []

    def make(mode: str) -> Delivery:
        made.append(Delivery(langchain_tracing, label_studio, unique_project_name, mode))
        return made[-1]

    yield make
    for d in made:
        d.close()


def only_task(label_studio: Any, project_title: str) -> Any:
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    projects = [p for p in client.projects.list(title=project_title) if p.title == project_title]
    assert len(projects) == 1, f"expected one project titled {project_title!r}"
    (task,) = client.tasks.list(project=projects[0].id, fields="all")
    return task


def open_task(page: Page, label_studio: Any, task: Any) -> None:
    started = time.perf_counter()
    page.goto(
        f"{label_studio.url}/projects/{task.project}/data?task={task.id}", timeout=FIRST_LOAD_MS
    )
    expect(page.locator(LABELING)).to_be_visible(timeout=FIRST_LOAD_MS)
    print(f"task {task.id} labeling UI: {time.perf_counter() - started:.1f} s")


def expect_response_shown(page: Page, response: str) -> None:
    """The response is in the annotation selected on opening (Label Studio pre-fills a new
    annotation from the prediction) and in the prediction's own tab, named after its model
    version. Ends with the first annotation selected again, as a user finds the task."""
    labeling = page.locator(LABELING)
    first = page.locator(TAB).nth(0)
    expect(page.locator(SELECTED_TAB)).to_have_count(1)
    expect(first).to_have_class(SELECTED_CLASS)
    expect(labeling.locator(RESPONSE)).to_have_text([response])
    expect(labeling.locator(RESPONSE)).to_be_visible()
    prediction = page.locator(PREDICTION_TAB)
    expect(prediction).to_have_count(1)
    expect(prediction).to_contain_text("unknown")
    prediction.click()
    expect(prediction).to_have_class(SELECTED_CLASS)
    expect(labeling.locator(RESPONSE)).to_have_text([response])
    first.click()
    expect(first).to_have_class(SELECTED_CLASS)
    expect(labeling.locator(RESPONSE)).to_have_text([response])


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """A full-page screenshot under tmp_path, copied to test-output/browser/; never raises, so
    a failing test still reports its own error."""
    try:
        shot = tmp_path / "browser" / f"{name}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True, timeout=STEP_MS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        copy = shutil.copy(shot, SCREENSHOTS / shot.name)
        print(f"screenshot: {shot}\nscreenshot: {copy}")
    except Exception as exc:  # the screenshot is a by-product: never mask the test result
        print(f"screenshot {name} failed: {exc}")


def test_prompt_task_shows_prompt_and_prefilled_response(
    label_studio: Any, deliver: Any, unique_project_name: str, page: Page, tmp_path: Path
) -> None:
    prompt = "What is the capital of France? Answer in one word."
    response = "Paris."
    d = deliver("prompt")
    assert FakeListLLM(responses=[response]).invoke(prompt) == response
    assert d.flush()
    task = only_task(label_studio, unique_project_name)

    try:
        open_task(page, label_studio, task)
        labeling = page.locator(LABELING)
        expect(labeling.locator(TEXT_LINE)).to_have_text([prompt], timeout=FIRST_LOAD_MS)
        expect(labeling.get_by_text(prompt, exact=True)).to_be_visible()
        expect_response_shown(page, response)
        expect(labeling.get_by_text(response, exact=True)).to_be_visible()
    finally:
        screenshot(page, tmp_path, "prompt-task")


def test_dialogue_task_shows_every_turn_and_prefilled_response(
    label_studio: Any, deliver: Any, unique_project_name: str, page: Page, tmp_path: Path
) -> None:
    history = [
        SystemMessage("You are a terse travel assistant."),
        HumanMessage("I am planning a weekend in Lisbon."),
        AIMessage("Great choice. Trams, pastries and viewpoints."),
        HumanMessage("Which tram line should I take first?"),
    ]
    response = "Tram 28, early in the morning."
    d = deliver("chat")
    assert FakeListChatModel(responses=[response]).invoke(history).content == response
    assert d.flush()
    task = only_task(label_studio, unique_project_name)
    turns = list(zip(["system", "user", "assistant", "user"], history, strict=True))

    try:
        open_task(page, label_studio, task)
        phrases = page.locator(LABELING).locator(PHRASE)
        expect(phrases).to_have_count(len(turns), timeout=FIRST_LOAD_MS)
        for i, (role, message) in enumerate(turns):
            phrase = phrases.nth(i)
            expect(phrase.locator(PHRASE_ROLE)).to_have_text(role)
            expect(phrase.locator(PHRASE_ROLE)).to_be_visible()
            expect(phrase.locator(PHRASE_TEXT)).to_have_text(str(message.content))
            expect(phrase.locator(PHRASE_TEXT)).to_be_visible()
            # Chat turns have no times: the built-in config hides Label Studio's "00:00:00".
            expect(phrase.get_by_text("00:00:00", exact=False)).to_be_hidden()
        expect_response_shown(page, response)
        expect(page.locator(LABELING).get_by_text(response, exact=True)).to_be_visible()
    finally:
        screenshot(page, tmp_path, "dialogue-task")
