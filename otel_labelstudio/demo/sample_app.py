"""A small LangChain app with no OpenTelemetry code at all, talking to fake models.

The demo runs it under `opentelemetry-instrument` with `OTEL_TRACES_EXPORTER=labelstudio`: the
LangChain instrumentation (opentelemetry-instrumentation-langchain) traces each call and our
exporter turns each traced call into a Label Studio task. No API key, no network.

    python -m otel_labelstudio.demo.sample_app prompt|chat
"""

from __future__ import annotations

import sys

from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

# (question, the fake model's answer): some answers are good, some want a reviewer's correction.
PROMPTS = [
    ("What is the capital of Australia?", "The capital of Australia is Sydney."),
    ("Translate 'good morning' into French.", "Bonjour."),
    ("How many bytes are in a kibibyte?", "A kibibyte is 1,024 bytes."),
    (
        "Summarise: the meeting moved from Tuesday to Thursday at 3 pm.",
        "The meeting is now on Thursday at 3 pm.",
    ),
]

SUPPORT_SYSTEM = "You are a support agent for Acme Cloud. Be brief and polite."
DIALOGUES: list[tuple[list[BaseMessage], str]] = [
    (
        [SystemMessage(SUPPORT_SYSTEM), HumanMessage("My invoice shows two charges this month.")],
        "Sorry about that! One charge is a pre-authorisation and will disappear within 5 days.",
    ),
    (
        [
            SystemMessage(SUPPORT_SYSTEM),
            HumanMessage("How do I reset my password?"),
            AIMessage("Use 'Forgot password' on the sign-in page."),
            HumanMessage("I did, but the email never arrives."),
        ],
        "Please check your spam folder, or tell me your account email and I will resend it.",
    ),
    (
        [SystemMessage(SUPPORT_SYSTEM), HumanMessage("Can I export my data as CSV?")],
        "No, only JSON exports are possible.",
    ),
]


def run_prompts() -> int:
    llm = FakeListLLM(responses=[answer for _, answer in PROMPTS])
    for question, _ in PROMPTS:
        print(f"  prompt: {question!r} -> {llm.invoke(question)!r}")
    return len(PROMPTS)


def run_dialogues() -> int:
    chat = FakeListChatModel(responses=[answer for _, answer in DIALOGUES])
    for messages, _ in DIALOGUES:
        reply = chat.invoke(messages)
        print(f"  chat: {messages[-1].content!r} -> {reply.content!r}")
    return len(DIALOGUES)


def main(argv: list[str]) -> int:
    which = argv[1] if len(argv) > 1 else "prompt"
    count = run_dialogues() if which == "chat" else run_prompts()
    print(f"  {count} LLM calls made")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
