"""Code blocks in answers are highlighted by the vendored highlight.js, and stay text, never markup."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person


def test_a_code_block_of_a_named_language_is_highlighted(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    answer = ui.send_and_wait("code:\n```python\ndef greet():\n    return '<b>hi</b>'\n```")

    code = answer.locator("pre code")
    expect(code.locator("span.hljs-keyword").first).to_have_text("def")
    expect(code.locator("span.hljs-string")).to_have_text("'<b>hi</b>'")
    expect(code.locator("b")).to_have_count(0)
    expect(code).to_have_text("def greet():\n    return '<b>hi</b>'")
    color = code.locator("span.hljs-keyword").first.evaluate("el => getComputedStyle(el).color")
    plain = code.evaluate("el => getComputedStyle(el).color")
    assert color != plain


def test_markup_in_highlighted_code_never_becomes_elements(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    answer = ui.send_and_wait('code:\n```html\n<img src=x onerror="alert(1)"><script>alert(2)</script>\n```')

    code = answer.locator("pre code")
    expect(code).to_contain_text('<img src=x onerror="alert(1)">')
    expect(answer.locator("img, script")).to_have_count(0)
    expect(code.locator("span").first).to_be_visible()
