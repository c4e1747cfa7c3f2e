"""A fake OpenAI-compatible chat completions server on 127.0.0.1, for the instrumentation tests.

Its answers are a pure function of the request, so the tasks built from the traces are the same on
every run:

- a request whose model is `fail-model` gets a 400 `invalid_request_error`;
- a request with `tools` whose last message is not a tool result gets one `get_weather` call;
- a request whose last message is a tool result answers with that result;
- otherwise the answer echoes the start of the last user message; with `n` > 1, each choice says
  its index.

`stream: true` answers as server-sent events, with a usage chunk when `stream_options` asks.
Standard library only: the legacy openai-v2 venv imports it too.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
FAIL_MODEL = "fail-model"
ECHO_CHARS = 40


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def answer(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The assistant messages (one per choice) and finish reasons for a request."""
    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    if request.get("tools") and last.get("role") != "tool":
        call = {
            "id": "call_weather_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
        }
        return [
            {
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ]
    if last.get("role") == "tool":
        text = f"The weather tool says: {_text(last.get('content'))}"
        return [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
    users = [m for m in messages if m.get("role") == "user"]
    echoed = _text(users[-1].get("content")) if users else ""
    n = int(request.get("n") or 1)
    choices = []
    for index in range(n):
        prefix = f"Choice {index}: " if n > 1 else ""
        text = f"{prefix}You said: {echoed[:ECHO_CHARS]}"
        choices.append({"message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    return choices


def _usage(request: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, int]:
    prompt = sum(len(_text(m.get("content"))) for m in request.get("messages") or []) // 4 + 1
    completion = sum(len(c["message"].get("content") or "") for c in choices) // 4 + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        request = json.loads(body)
        if request.get("model") == FAIL_MODEL:
            error = {
                "error": {
                    "message": "The model `fail-model` does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            }
            self._send(400, "application/json", json.dumps(error).encode())
            return
        choices = answer(request)
        response_id = "chatcmpl-" + hashlib.sha256(body).hexdigest()[:12]
        usage = _usage(request, choices)
        if request.get("stream"):
            self._stream(request, response_id, choices, usage)
            return
        document = {
            "id": response_id,
            "object": "chat.completion",
            "created": 1700000000,
            "model": RESPONSE_MODEL,
            "choices": [{"index": i, **c, "logprobs": None} for i, c in enumerate(choices)],
            "usage": usage,
        }
        self._send(200, "application/json", json.dumps(document).encode())

    def _stream(
        self,
        request: dict[str, Any],
        response_id: str,
        choices: list[dict[str, Any]],
        usage: dict[str, int],
    ) -> None:
        def chunk(delta_choices: list[dict[str, Any]], **extra: Any) -> bytes:
            document = {
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": RESPONSE_MODEL,
                "choices": delta_choices,
                **extra,
            }
            return f"data: {json.dumps(document)}\n\n".encode()

        events = []
        for index, choice in enumerate(choices):
            text = choice["message"].get("content") or ""
            events.append(
                chunk(
                    [
                        {
                            "index": index,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ]
                )
            )
            for start in range(0, len(text), 8):
                events.append(
                    chunk(
                        [
                            {
                                "index": index,
                                "delta": {"content": text[start : start + 8]},
                                "finish_reason": None,
                            }
                        ]
                    )
                )
            events.append(
                chunk([{"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}])
            )
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append(chunk([], usage=usage))
        events.append(b"data: [DONE]\n\n")
        payload = b"".join(events)
        self._send(200, "text/event-stream", payload)

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeOpenAI:
    """`with FakeOpenAI() as server:` → `server.base_url` ("http://127.0.0.1:PORT/v1")."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
