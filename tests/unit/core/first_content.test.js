// firstPacket "content" (assembly/core/first_content.ts): which SSE events are the first packet, with
// the event shapes of the providers' public stream documentation (OpenAI chat completions, OpenAI
// Responses, Anthropic Messages, Azure OpenAI).
const { load } = require("../support/wasm");
const w = load();
const judge = (text, consumed = 0) => w.firstContent(Buffer.from(text), consumed);

// OpenAI chat completions: the first chunk names the role, the next carry content.
const CHAT_ROLE = 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}\n\n';
const CHAT_CONTENT = 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}\n\n';
const CHAT_TOOL = 'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}\n\n';
// Azure OpenAI: the first chunk has no choices, only the prompt filter results.
const AZURE_FILTER = 'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n';
const AZURE_ROLE = 'data: {"choices":[{"content_filter_results":{},"delta":{"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1,"id":"c","model":"gpt-4o","object":"chat.completion.chunk"}\n\n';
// Anthropic Messages.
const A_START = 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}\n\n';
const A_BLOCK = 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n';
const A_PING = 'event: ping\ndata: {"type": "ping"}\n\n';
const A_DELTA = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n';
const A_ERROR = 'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n';
// OpenAI Responses.
const R_CREATED = 'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","error":null,"output":[]}}\n\n';
const R_PROGRESS = 'event: response.in_progress\ndata: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","status":"in_progress","error":null}}\n\n';
const R_ITEM = 'event: response.output_item.added\ndata: {"type":"response.output_item.added","output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}\n\n';
const R_PART = 'event: response.content_part.added\ndata: {"type":"response.content_part.added","item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}\n\n';
const R_DELTA = 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}\n\n';
const R_FAILED = 'event: response.failed\ndata: {"type":"response.failed","sequence_number":2,"response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"The model failed to generate a response."}}}\n\n';
const R_ERROR = 'event: error\ndata: {"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}\n\n';
const CHAT_ERROR = 'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}\n\n';

describe("firstPacket content: events without content wait", () => {
  test.each([
    ["keep-alive comments", ": ping\n\n:\n\n\n"],
    ["an OpenAI chat role-only delta", CHAT_ROLE],
    ["Azure OpenAI's prompt filter chunk, then its role-only delta", AZURE_FILTER + AZURE_ROLE],
    ["Anthropic's message_start, content_block_start and ping", A_START + A_BLOCK + A_PING],
    ["OpenAI Responses' created, in_progress and the .added events", R_CREATED + R_PROGRESS + R_ITEM + R_PART],
    ["a metadata type without an event line", 'data: {"type":"message_start","message":{}}\n\n'],
    ["CRLF line ends", "event: ping\r\ndata: {}\r\n\r\n"],
  ])("%s", (_, text) => {
    expect(judge(text)).toBe(`waiting:${Buffer.byteLength(text)}`);
  });

  test("an event cut by the chunk's end waits for the rest; complete events before it are consumed", () => {
    expect(judge(A_START + A_DELTA.slice(0, 30))).toBe(`waiting:${A_START.length}`);
    expect(judge(CHAT_ROLE + "data: {\"choices\"")).toBe(`waiting:${CHAT_ROLE.length}`);
    // A CR last may be half a CRLF.
    expect(judge("event: ping\r\ndata: {}\r")).toBe("waiting:0");
    // The rest of the cut event, scanned from the consumed offset.
    expect(judge(A_DELTA, A_START.length)).toBe("content");
  });
});

describe("firstPacket content: content is the first packet", () => {
  test.each([
    ["an OpenAI chat content delta", CHAT_ROLE + CHAT_CONTENT],
    ["an OpenAI chat role delta that already carries content", 'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n'],
    ["an OpenAI chat tool call", CHAT_TOOL],
    ["a finish_reason", 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'],
    ["Anthropic's first text delta", A_START + A_PING + A_DELTA],
    ["OpenAI Responses' first text delta", R_CREATED + R_DELTA],
    ["the stream's end", CHAT_ROLE + "data: [DONE]\n\n"],
    ["an event this file does not know", 'event: thinking\ndata: {"type":"thinking"}\n\n'],
    ["a data line that is not JSON", "data: hello\n\n"],
    ["malformed JSON", 'data: {"choices":[{"delta":\n\n'],
    ["several data lines", 'data: {"a":\ndata: 1}\n\n'],
    ["a body that is not SSE (NDJSON), at its first byte", '{"candidates":[{"content"'],
    ["a line that is no SSE field", "hello: world\n\n"],
  ])("%s", (_, text) => {
    expect(judge(text)).toBe("content");
  });

  test("held bytes past MAX_WAITING_BYTES (64 KiB) count as the first packet: a huge metadata event is not held without bound", () => {
    const huge = 'event: response.created\ndata: {"type":"response.created","response":{"instructions":"' + "x".repeat(70000);
    expect(judge(huge)).toBe("content");
    expect(judge(A_START.slice(0, 40), 64 * 1024)).toBe("content");
    expect(judge(A_START.slice(0, 40), 1000)).toBe("waiting:0");
  });
});

describe("firstPacket content: an error before content is a failure", () => {
  test.each([
    ["Anthropic's overloaded_error event", A_START + A_ERROR],
    ["OpenAI Responses' response.failed", R_CREATED + R_PROGRESS + R_FAILED],
    ["OpenAI Responses' error event", R_CREATED + R_ERROR],
    ["an OpenAI chat chunk with an error object", CHAT_ERROR],
    ["an error type without an event line", 'data: {"type":"error","error":{"type":"api_error","message":"Internal server error"}}\n\n'],
  ])("%s", (_, text) => {
    expect(judge(text)).toBe("error");
  });

  test("after content, nothing is judged any more (the first event with content decides)", () => {
    expect(judge(CHAT_CONTENT + CHAT_ERROR)).toBe("content");
    // An "error" member that is no object (a Responses status's error: null) is no error.
    expect(judge(R_PROGRESS)).toBe(`waiting:${R_PROGRESS.length}`);
  });
});
