// Edit and resend, regenerate, and switching versions, for the open chat (ChatController).

import { editInPlace } from "./branches.js";

/** Remove `item` and everything shown after it. */
function cutFrom(item) {
  while (item?.nextElementSibling) item.nextElementSibling.remove();
  item?.remove();
}

export function treeActions(chat) {
  const path = () => `/api/chats/${encodeURIComponent(chat.chatId)}`;
  const reload = async () => {
    chat.conversation.clear();
    await chat.loadMessages(null);
  };
  const run = async (body, item) => {
    if (chat.busy) return;
    cutFrom(item);
    const sent = { agent_name: chat.agentName, session_id: chat.chatId, ...body };
    if (sent.message) chat.conversation.addUser(sent.message);
    await chat.follow((signal) => chat.api.streamChat(sent, signal), null);
    await reload();
  };
  return {
    edit(message, item) {
      if (chat.busy) return;
      editInPlace(item, message, (text) => run({ message: text, edit_of: message.id }, item));
    },
    regenerate(message) {
      const item = [...chat.conversation.list.querySelectorAll(".msg.assistant")].find((li) =>
        li.querySelector(`.msg-actions[data-message-id="${message.id}"]`));
      run({ regenerate: message.id }, item);
    },
    /** A stored message whose turn ended without an answer, sent again as a new version of it. */
    retry(message) {
      const item = [...chat.conversation.list.querySelectorAll(".msg.user")].find((li) =>
        li.querySelector(`.msg-actions[data-message-id="${message.id}"]`));
      run({ message: message.content, edit_of: message.id }, item);
    },
    async switchTo(messageId) {
      if (chat.busy) return;
      try {
        await chat.api.put(`${path()}/branch`, { message_id: messageId });
      } catch (error) {
        chat.onError(error);
        return;
      }
      await reload();
    },
  };
}
