// Streamed answers as model services send them, written from their public API references (OpenAI
// chat completions streaming, OpenAI Responses streaming events, Anthropic Messages streaming), for
// the mock's `sse.raw`: each string is one SSE event, blank line included.
"use strict";

const chatChunk = (delta, finish = null) => `data: ${JSON.stringify({
  id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-4o",
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
})}\n\n`;

const anthropic = (type, body) => `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}\n\n`;
const responses = (type, body, n) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: n, ...body })}\n\n`;

const OPENAI_CHAT = {
  /** The first chunk: the role, no content. */
  role: chatChunk({ role: "assistant", content: "", refusal: null }),
  content: (text) => chatChunk({ content: text }),
  stop: chatChunk({}, "stop"),
  done: "data: [DONE]\n\n",
  /** An in-band error chunk (OpenAI-compatible servers send one when a stream fails). */
  error: `data: ${JSON.stringify({ error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } })}\n\n`,
};

const ANTHROPIC = {
  messageStart: anthropic("message_start", {
    message: { id: "msg_1", type: "message", role: "assistant", content: [], model: "claude-sonnet-4-5", stop_reason: null, stop_sequence: null, usage: { input_tokens: 25, output_tokens: 1 } },
  }),
  blockStart: anthropic("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
  ping: anthropic("ping", {}),
  delta: (text) => anthropic("content_block_delta", { index: 0, delta: { type: "text_delta", text } }),
  blockStop: anthropic("content_block_stop", { index: 0 }),
  messageDelta: anthropic("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 15 } }),
  messageStop: anthropic("message_stop", {}),
  overloaded: anthropic("error", { error: { type: "overloaded_error", message: "Overloaded" } }),
};

const RESPONSE = { id: "resp_1", object: "response", created_at: 1, model: "gpt-4.1", output: [], error: null };
const OPENAI_RESPONSES = {
  created: responses("response.created", { response: { ...RESPONSE, status: "in_progress" } }, 0),
  inProgress: responses("response.in_progress", { response: { ...RESPONSE, status: "in_progress" } }, 1),
  itemAdded: responses("response.output_item.added", { output_index: 0, item: { id: "msg_1", type: "message", status: "in_progress", content: [], role: "assistant" } }, 2),
  partAdded: responses("response.content_part.added", { item_id: "msg_1", output_index: 0, content_index: 0, part: { type: "output_text", annotations: [], text: "" } }, 3),
  delta: (text, n = 4) => responses("response.output_text.delta", { item_id: "msg_1", output_index: 0, content_index: 0, delta: text }, n),
  failed: responses("response.failed", { response: { ...RESPONSE, status: "failed", error: { code: "server_error", message: "The model failed to generate a response." } } }, 2),
  error: responses("error", { code: "ERR_SOMETHING", message: "Something went wrong", param: null }, 2),
};

module.exports = { OPENAI_CHAT, ANTHROPIC, OPENAI_RESPONSES };
