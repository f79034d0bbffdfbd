"""A local HTTP server that speaks the OpenAI Chat Completions API (`POST /v1/chat/completions`).

Tests point the real `openai.OpenAI(base_url=stub.base_url)` client at it. Every request is
recorded (`stub.requests`: the parsed JSON body and the headers), so a test can assert exactly
what left the application. Answers are queued:

    with OpenAIStub() as stub:
        stub.answer("We open at nine.")                 # structured output: hand_off false
        stub.hand_off("The knowledge base does not say.")
        stub.raw_content("not json")                    # an unusable answer
        stub.fail_next(2, status=500)                   # transient failures first
        stub.delay(1.5)                                 # hold the next answers back (timeouts)

With nothing queued it answers with a fixed sentence. Usage is reported as the number of words
in the request (prompt) and in the answer (completion), so metering has real numbers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ANSWER = "Thank you for your message."


class OpenAIStub:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._lock = threading.Lock()
        self.requests: list[dict] = []
        self._answers: deque[dict] = deque()
        self._failures: deque[int] = deque()
        self._delay = 0.0

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._answers.clear()
            self._failures.clear()
            self._delay = 0.0

    # --- what to answer ---------------------------------------------------------------------

    def answer(self, text: str, *, reason: str = "") -> None:
        self._queue({"answer": text, "hand_off": False, "reason": reason})

    def hand_off(self, reason: str) -> None:
        self._queue({"answer": "", "hand_off": True, "reason": reason})

    def raw_content(self, content: str) -> None:
        with self._lock:
            self._answers.append({"content": content})

    def refuse(self, refusal: str = "I can't help with that.") -> None:
        with self._lock:
            self._answers.append({"content": None, "refusal": refusal})

    def fail_next(self, times: int = 1, *, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    def _queue(self, structured: dict) -> None:
        with self._lock:
            self._answers.append({"content": json.dumps(structured)})

    @property
    def bodies(self) -> list[dict]:
        return [request["body"] for request in self.requests]

    # --- the server -------------------------------------------------------------------------

    def _respond(self, path: str, headers: dict, raw: bytes) -> tuple[int, dict]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, _error("invalid_request_error", "We could not parse the JSON body.")
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            failure = self._failures.popleft() if self._failures else None
            planned = self._answers.popleft() if (self._answers and failure is None) else None
            delay = self._delay
        if delay:
            time.sleep(delay)
        if path != "/v1/chat/completions":
            return 404, _error("invalid_request_error", f"Unknown path {path}")
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, _error("invalid_request_error", "You didn't provide an API key.")
        if failure is not None:
            return failure, _error("server_error", "The server had an error.")
        if planned is None:
            planned = {
                "content": json.dumps({"answer": DEFAULT_ANSWER, "hand_off": False, "reason": ""})
            }
        content = planned.get("content")
        prompt_words = sum(
            len(str(message.get("content") or "").split()) for message in body.get("messages", [])
        )
        completion_words = len(str(content or planned.get("refusal") or "").split())
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "unknown"),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": planned.get("refusal"),
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_words,
                "completion_tokens": completion_words,
                "total_tokens": prompt_words + completion_words,
            },
        }

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                headers = {key.lower(): value for key, value in self.headers.items()}
                status, payload = stub._respond(self.path, headers, raw)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        return Handler


def _error(kind: str, message: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
