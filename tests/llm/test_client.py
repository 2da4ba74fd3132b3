from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from rag.core.config import load_config
from rag.llm import ChatClient, LLMConnectionError, LLMError, LLMHTTPError, LLMOutputError
from rag.llm.server import free_port
from tests.llm._fake_openai import Canned, FakeOpenAI, chat_answer

SCHEMA = {
    "type": "object",
    "properties": {"valve": {"type": "string"}},
    "required": ["valve"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "user", "content": "Name a heart valve."}]


def test_complete_json_parses_answer_and_sends_strict_schema(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer("POST", "/v1/chat/completions", Canned(body=chat_answer('{"valve": "mitral"}', completion=7)))
    with ChatClient(fake_openai.base_url, "tiny-test", api_key=SecretStr("s3cret")) as client:
        done = client.complete_json(MESSAGES, SCHEMA, schema_name="valve", max_tokens=32, temperature=0.2)
    assert done.data == {"valve": "mitral"}
    assert done.text == '{"valve": "mitral"}'
    assert done.finish_reason == "stop" and done.model == "tiny-test"
    assert done.usage.prompt_tokens == 12 and done.usage.completion_tokens == 7
    assert done.usage.seconds > 0 and done.usage.tokens_per_second == pytest.approx(7 / done.usage.seconds)
    (request,) = fake_openai.seen
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.body["model"] == "tiny-test"
    assert request.body["messages"] == MESSAGES
    assert request.body["max_tokens"] == 32 and request.body["temperature"] == 0.2
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "valve", "schema": SCHEMA, "strict": True},
    }
    assert "s3cret" not in repr(client)


def test_connection_refused_names_url_and_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = ChatClient(url, "tiny-test")
    with pytest.raises(LLMConnectionError) as e:
        client.complete_json(MESSAGES, SCHEMA, schema_name="valve", max_tokens=8)
    assert url in str(e.value) and "rag llm serve" in str(e.value) and "llm.base_url" in str(e.value)
    with pytest.raises(LLMConnectionError, match="rag llm serve"):
        client.models()
    assert client.health() is False


def test_http_500_keeps_status_and_server_message(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer(
        "POST", "/v1/chat/completions", Canned(500, {"error": {"message": "engine core died", "code": 500}})
    )
    client = ChatClient(fake_openai.base_url, "tiny-test")
    with pytest.raises(LLMHTTPError) as e:
        client.complete_json(MESSAGES, SCHEMA, schema_name="valve", max_tokens=8)
    assert e.value.status == 500 and e.value.detail == "engine core died"
    assert "HTTP 500" in str(e.value) and "engine core died" in str(e.value)


def test_http_400_with_vllm_style_body_and_plain_text(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer(
        "POST", "/v1/chat/completions", Canned(400, {"object": "error", "message": "max_tokens too big"})
    )
    fake_openai.answer("GET", "/v1/models", Canned(502, raw="<html>bad gateway</html>"))
    client = ChatClient(fake_openai.base_url, "tiny-test")
    with pytest.raises(LLMHTTPError, match="HTTP 400: max_tokens too big"):
        client.complete_json(MESSAGES, SCHEMA, schema_name="valve", max_tokens=8)
    with pytest.raises(LLMHTTPError, match="bad gateway") as e:
        client.models()
    assert e.value.status == 502


def test_truncated_json_names_finish_reason_and_shows_excerpt(fake_openai: FakeOpenAI) -> None:
    answer = chat_answer('{"valve": "mitr', finish_reason="length", completion=5)
    fake_openai.answer("POST", "/v1/chat/completions", Canned(body=answer))
    client = ChatClient(fake_openai.base_url, "tiny-test")
    with pytest.raises(LLMOutputError) as e:
        client.complete_json(MESSAGES, SCHEMA, schema_name="valve", max_tokens=5)
    msg = str(e.value)
    assert "finish_reason='length'" in msg and "max_tokens=5" in msg and '{"valve": "mitr' in msg
    assert e.value.finish_reason == "length" and e.value.text == '{"valve": "mitr'


def test_json_that_is_not_an_object_is_refused(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer("POST", "/v1/chat/completions", Canned(body=chat_answer('["mitral"]')))
    with pytest.raises(LLMOutputError, match="not an object"):
        ChatClient(fake_openai.base_url, "tiny-test").complete_json(MESSAGES, SCHEMA, schema_name="v", max_tokens=8)


def test_answer_without_choices_is_an_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer("POST", "/v1/chat/completions", Canned(body={"choices": []}))
    with pytest.raises(LLMError, match=r"choices\[0\]"):
        ChatClient(fake_openai.base_url, "tiny-test").complete_json(MESSAGES, SCHEMA, schema_name="v", max_tokens=8)


def test_slow_server_times_out_with_the_key_to_raise(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer("POST", "/v1/chat/completions", Canned(body=chat_answer("{}"), delay=1.5))
    client = ChatClient(fake_openai.base_url, "tiny-test", timeout=0.3)
    with pytest.raises(LLMConnectionError, match=r"within 0 s|llm\.timeout_s"):
        client.complete_json(MESSAGES, SCHEMA, schema_name="v", max_tokens=8)


def test_models_and_health(fake_openai: FakeOpenAI) -> None:
    fake_openai.answer("GET", "/v1/models", Canned(body={"object": "list", "data": [{"id": "a"}, {"id": "b"}]}))
    client = ChatClient(fake_openai.base_url + "/", "a")
    assert client.models() == ["a", "b"]
    assert client.health() is True  # no /health route: falls back to /v1/models
    fake_openai.answer("GET", "/health", Canned(503, {}))
    assert client.health() is False
    fake_openai.answer("GET", "/health", Canned(200, {}))
    assert client.health() is True
    assert [s.path for s in fake_openai.seen] == ["/v1/models", "/health", "/v1/models", "/health", "/health"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(LLMError, match="http://"):
        ChatClient("127.0.0.1:8000/v1", "m")
    with pytest.raises(LLMError, match=r"llm\.model"):
        ChatClient("http://127.0.0.1:8000/v1", "")
    with pytest.raises(LLMError, match="timeout"):
        ChatClient("http://127.0.0.1:8000/v1", "m", timeout=0)
    client = ChatClient("http://127.0.0.1:8000/v1", "m")
    with pytest.raises(LLMError, match="max_tokens"):
        client.complete_json(MESSAGES, SCHEMA, schema_name="v", max_tokens=0)


def test_from_config_uses_llm_block(
    workspace: object, monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI
) -> None:
    monkeypatch.setenv("RAG_LLM__BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("RAG_LLM__MODEL", "tiny-test")
    monkeypatch.setenv("RAG_LLM__API_KEY", "from-env")
    monkeypatch.setenv("RAG_LLM__TIMEOUT_S", "7.5")
    cfg = load_config()
    assert "from-env" not in json.dumps(cfg.model_dump(mode="json"))
    fake_openai.answer("POST", "/v1/chat/completions", Canned(body=chat_answer('{"valve": "aortic"}')))
    client = ChatClient.from_config(cfg.llm)
    assert client.model == "tiny-test" and client.timeout == 7.5
    assert client.complete_json(MESSAGES, SCHEMA, schema_name="v", max_tokens=8).data == {"valve": "aortic"}
    assert fake_openai.seen[0].headers["Authorization"] == "Bearer from-env"
