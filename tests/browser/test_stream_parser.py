"""The page's Server-Sent Events parser, run in the browser on streams cut at awkward places."""

from __future__ import annotations

from typing import Any

from tests.browser.chatpage import ChatPage

PARSE = """async (chunks) => {
    const app = document.querySelector("script[type=module]").src;
    const { parseSSE } = await import(app.replace(/app\\.js$/, "api.js"));
    const encoder = new TextEncoder();
    const stream = new ReadableStream({
        start(controller) {
            for (const chunk of chunks) {
                controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : new Uint8Array(chunk));
            }
            controller.close();
        },
    });
    const events = [];
    for await (const event of parseSSE(stream)) events.push(event);
    return events;
}"""


def parse(ui: ChatPage, chunks: list[Any]) -> list[dict[str, Any]]:
    return list(ui.page.evaluate(PARSE, chunks))


def test_events_cut_into_single_characters_are_put_back_together(ui: ChatPage) -> None:
    text = 'event: token\ndata: {"delta": "he"}\n\nevent: done\ndata: {"ok": true}\n\n'

    assert parse(ui, list(text)) == [
        {"event": "token", "data": {"delta": "he"}},
        {"event": "done", "data": {"ok": True}},
    ]


def test_crlf_line_breaks_cut_between_cr_and_lf_end_one_event(ui: ChatPage) -> None:
    chunks = ["event: token\r", '\ndata: {"delta": "x"}\r\n\r', "\n"]

    assert parse(ui, chunks) == [{"event": "token", "data": {"delta": "x"}}]


def test_a_character_cut_between_its_utf8_bytes_survives(ui: ChatPage) -> None:
    raw = list('data: {"delta": "é✓"}\n\n'.encode())
    cut = raw.index(0xC3) + 1

    assert parse(ui, [raw[:cut], raw[cut:]]) == [{"event": "message", "data": {"delta": "é✓"}}]


def test_comments_are_skipped_and_data_lines_join(ui: ChatPage) -> None:
    chunks = [": keep-alive\n\nevent: note\ndata: line one\ndata: line two\n\n"]

    assert parse(ui, chunks) == [{"event": "note", "data": "line one\nline two"}]


def test_an_event_the_stream_never_finished_is_dropped(ui: ChatPage) -> None:
    assert parse(ui, ['event: token\ndata: {"delta": "a"}\n\nevent: token\ndata: {"delta": "b"}']) == [
        {"event": "token", "data": {"delta": "a"}}
    ]
