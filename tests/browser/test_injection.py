"""Model or user text never becomes markup or script, live or reloaded from history.

The echo model repeats the message, so each payload reaches the page twice: as the user's text and
inside the assistant's Markdown. The page's watch (see chatpage.py) fails the test on any dialog,
uncaught error or console error, and these tests check the DOM itself too: the page's Content
Security Policy would block an injected inline handler anyway, so a missing dialog alone would
prove nothing about the sanitizing.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person

IMG_PAYLOAD = "<img src=x onerror=alert(1)>"

DANGEROUS = (
    "#messages img, #messages script, #messages iframe, #messages object, #messages embed, "
    "#messages svg, #messages style, #messages form, #messages input, #messages [onerror], "
    "#messages [onclick], #messages [onload], #messages [style]"
)


def assert_no_markup_got_in(ui: ChatPage) -> None:
    expect(ui.page.locator(DANGEROUS)).to_have_count(0)
    links = ui.page.locator("#messages a")
    for index in range(links.count()):
        href = links.nth(index).get_attribute("href")
        assert href is None or href.startswith(("http://", "https://", "mailto:")), href


def test_an_img_tag_with_a_handler_shows_as_text_and_runs_nothing(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    answer = ui.send_and_wait(IMG_PAYLOAD)

    expect(ui.user_messages.last.locator(".plain")).to_have_text(IMG_PAYLOAD)
    expect(answer.locator(".md")).to_have_text(f"echo: {IMG_PAYLOAD}")
    assert_no_markup_got_in(ui)
    ui.reload()
    expect(ui.user_messages.last.locator(".plain")).to_have_text(IMG_PAYLOAD)
    expect(ui.answers.last.locator(".md")).to_have_text(f"echo: {IMG_PAYLOAD}")
    assert_no_markup_got_in(ui)
    assert not [r for r in ui.watch.requests if r.split("?")[0].endswith("/x")], "the image was fetched"
    assert ui.watch.dialogs == []


def test_script_tags_and_block_html_show_as_text(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    payload = "hi\n<div>\n<script>alert(2)</script>\n</div>\n<svg onload=alert(3)>"

    answer = ui.send_and_wait(payload)

    text = answer.locator(".md").inner_text()
    assert "<script>alert(2)</script>" in text
    assert "<svg onload=alert(3)>" in text
    assert_no_markup_got_in(ui)


def test_links_keep_only_web_targets_and_images_become_plain_links(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    payload = (
        "[safe](https://example.com/docs) [bad](javascript:alert(4)) "
        '<a href="javascript:alert(5)">raw</a> ![pixel](http://127.0.0.1:9/track.png)'
    )

    answer = ui.send_and_wait(payload)

    safe = answer.get_by_role("link", name="safe")
    expect(safe).to_have_attribute("href", "https://example.com/docs")
    expect(safe).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(safe).to_have_attribute("target", "_blank")
    expect(answer.get_by_role("link", name="pixel")).to_have_attribute("href", "http://127.0.0.1:9/track.png")
    expect(answer.locator(".md")).to_contain_text('<a href="javascript:alert(5)">raw</a>')
    assert_no_markup_got_in(ui)
    assert not [r for r in ui.watch.requests if "track.png" in r], "the image was fetched"
