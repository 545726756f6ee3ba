// The per-request state machine, driven by scripted host events.
const { load } = require("../support/wasm");
const w = load();
// The status path: without error meanings (neverTrigger/alwaysTrigger empty) unless a test sets them.
const run = (config, script) => w.runMachine(JSON.stringify({ neverTrigger: [], alwaysTrigger: [], ...config }),
  script.trim().split("\n").map((l) => l.trim()).join("\n"));
const two = { backups: [{ service: "b1", timeout: 1000 }, { service: "b2", model: "m2" }] };

describe("fallback state machine", () => {
  test("a 2xx primary passes through and nothing else happens", () => {
    expect(run(two, "end\nheaders 200\nchunk first")).toBe(
      "end -> deadline none\nheaders 200 -> continue (pass-through)\nchunk first -> continue (pass-through)\nattempts: \ntrigger: \n");
  });

  test("primary 503: backups in order, the first 2xx is served", () => {
    expect(run(two, "body 5\nend\nheaders 503\nanswer 500\nanswer 200")).toBe([
      "body 5 -> keep", "end -> deadline none",
      "headers 503 -> dispatch b1 1000 (falling-back)",
      "answer 500 -> dispatch b2 120000 (falling-back)",
      "answer 200 -> serve-backup (answering) swap-in-place",
      "attempts: primary;result=503, b1;model=pass-through;result=500, b2;model=m2;result=200",
      "trigger: status=503", ""].join("\n"));
  });

  test("all backups answer errors: the last error is served", () => {
    expect(run(two, "end\nheaders 500\nanswer 429\nanswer 503")).toContain("answer 503 -> serve-last-error (answering) swap-in-place");
  });

  test("no backup answered over HTTP: the held primary response is resumed", () => {
    const out = run(two, "end\nheaders 502\nrefuse\nanswer 0");
    expect(out).toContain("refuse -> dispatch b2 120000 (falling-back)");
    expect(out).toContain("answer 0 -> resume-primary (resumed)");
    expect(out).toContain("attempts: primary;result=502, b1;model=pass-through;result=unknown_cluster, b2;model=m2;result=no_response");
  });

  test("an unknown cluster and a call Envoy refused at once are told apart", () => {
    const out = run(two, "end\nheaders 503\nrefuse unknown_cluster\nrefuse refused");
    expect(out).toContain("refuse refused -> resume-primary (resumed)");
    expect(out).toContain("attempts: primary;result=503, b1;model=pass-through;result=unknown_cluster, b2;model=m2;result=refused");
  });

  test("an override that cannot be written skips its backup (not_rewritable) and the chain goes on", () => {
    const out = run(two, "end\nheaders 503\nanswer 500\nnorewrite");
    // b2 was the last: b1's error is the last answer at hand.
    expect(out).toContain("norewrite -> serve-last-error");
    expect(out).toContain("attempts: primary;result=503, b1;model=pass-through;result=500, b2;model=m2;result=not_rewritable");
  });

  test("a skipped override backup is followed by the next backup", () => {
    const overrideFirst = { backups: [{ service: "b1", model: "m1" }, { service: "b2" }] };
    const out = run(overrideFirst, "end\nheaders 503\nnorewrite\nanswer 200");
    expect(out).toMatch(/norewrite -> dispatch b2 \d+ \(falling-back\)/);
    expect(out).toContain("attempts: primary;result=503, b1;model=m1;result=not_rewritable, b2;model=pass-through;result=200");
  });

  test("a call that comes back after its timeout is recorded as a timeout", () => {
    const out = run(two, "end\nat 1000\nheaders 500\nat 2000\nanswer 504\nanswer 0");
    expect(out).toContain("b1;model=pass-through;result=timeout");
  });

  test("the chain deadline bounds each call's timeout and stops the chain", () => {
    const cfg = { ...two, fallbackDeadline: 1500 };
    const out = run(cfg, "end\nat 1000\nheaders 500\nat 2100\nanswer 500\nat 2600\nanswer 0");
    expect(out).toContain("headers 500 -> dispatch b1 1000");
    expect(out).toContain("answer 500 -> dispatch b2 400");
    const late = run(cfg, "end\nat 1000\nheaders 500\nat 2600\nanswer 500");
    expect(late).toContain("answer 500 -> serve-last-error");
    expect(late).toContain("chain;result=deadline_exceeded");
  });

  test("a chain with (almost) no time left dispatches nothing more: a 0 ms call would have no timeout", () => {
    const out = run({ ...two, fallbackDeadline: 1000 }, "end\nat 1000\nheaders 500\nat 1990\nanswer 500");
    expect(out).toContain("answer 500 -> serve-last-error");
    expect(out).toContain("chain;result=deadline_exceeded");
  });

  test("a request over the body limit is not replayed; the error passes through", () => {
    const out = run({ ...two, maxRequestBodyBytes: 10 }, "body 6\nbody 6\nend\nheaders 503");
    expect(out).toContain("body 6 -> drop");
    expect(out).toContain("headers 503 -> continue (pass-through)");
    expect(out).toContain("declined: the request cannot be replayed: request body over maxRequestBodyBytes (10)");
  });

  test("an error before the request is complete passes through", () => {
    expect(run(two, "body 5\nheaders 413")).toContain("declined: the primary answered before the request was complete");
  });

  test("an intercepted reply passes while backendErrorsOnly is on", () => {
    expect(run(two, "end\nheaders 429 local_rate_limited")).toContain("headers 429 local_rate_limited -> continue (pass-through)");
    expect(run({ ...two, backendErrorsOnly: false }, "end\nheaders 429 local_rate_limited")).toContain("-> dispatch b1");
  });

  describe("how an answer reaches the client", () => {
    test("a held error with a body to come is swapped: its first chunk takes the answer's body, the rest is dropped", () => {
      const out = run(two, "end\nheaders 503\nanswer 200\nchunk first\nchunk first");
      expect(out).toContain("headers 503 -> dispatch b1 1000 (falling-back)");
      expect(out).toContain("answer 200 -> serve-backup (answering) swap-in-place");
      expect(out).toContain("chunk first -> write-body (answering)\nchunk first -> drop-chunk (answering)");
    });

    test("a headers-only error cannot take a body: the answer goes straight to the client, past the filters", () => {
      const out = run(two, "end\nheaders 503 eos\nanswer 200\nheaders 200 ai_fallback");
      expect(out).toContain("answer 200 -> serve-backup (replying) direct");
      expect(out).toContain("headers 200 ai_fallback -> continue (replying)");
    });

    test("with no primary response, this filter's own local reply is rewritten to the answer as it passes", () => {
      const fpt = { ...two, firstPacketTimeout: 500 };
      const out = run(fpt, "end stream\nupstream\ntimeout\nanswer 200\nheaders 200 ai_fallback\nchunk first\nchunk first");
      expect(out).toContain("answer 200 -> serve-backup (answering) through-filter-chain");
      expect(out).toContain("headers 200 ai_fallback -> write-headers (answering)");
      expect(out).toContain("chunk first -> write-body (answering)\nchunk first -> drop-chunk (answering)");
    });

    test("held 2xx headers (first packet timeout after them): the answer goes straight to the client", () => {
      const fpt = { ...two, firstPacketTimeout: 500 };
      expect(run(fpt, "end stream\nheaders 200\ntimeout\nanswer 200")).toContain("answer 200 -> serve-backup (replying) direct");
    });

    test("a late primary error is held whole and swapped like any held error", () => {
      const fpt = { ...two, firstPacketTimeout: 500 };
      const out = run(fpt, "end stream\nupstream\ntimeout\nheaders 502\nanswer 200");
      expect(out).toContain("headers 502 -> hold-whole (falling-back)");
      expect(out).toContain("answer 200 -> serve-backup (answering) swap-in-place");
    });

    test("the filter's own error passes its own callbacks untouched", () => {
      const fpt = { ...two, firstPacketTimeout: 500 };
      const out = run(fpt, "end stream\nupstream\ntimeout\nanswer 0\nanswer 0\nheaders 504 ai_fallback\nchunk first");
      expect(out).toContain("headers 504 ai_fallback -> continue (replying)\nchunk first -> continue (replying)");
    });
  });

  describe("first packet timeout", () => {
    const fpt = { ...two, firstPacketTimeout: 500 };
    test("only streaming requests get a deadline", () => {
      expect(run(fpt, "end")).toContain("end -> deadline none");
      expect(run(fpt, "at 1000\nend stream")).toContain("end stream -> awaiting upstream");
      expect(run(two, "end stream")).toContain("end stream -> deadline none");
    });

    test("the deadline counts from when the request left for the primary, not from this filter", () => {
      expect(run(fpt, "at 1000\nend stream\nat 1800\nupstream")).toContain("upstream -> deadline 2300");
    });

    test("a request that never reached the primary is never replayed by the timer", () => {
      const out = run(fpt, "end stream\ntimeout\nheaders 403 ext_authz_denied");
      expect(out).toContain("timeout -> continue (awaiting)");
      expect(out).toContain("headers 403 ext_authz_denied -> continue (pass-through)");
      expect(out).toContain("attempts: \n");
    });

    test("a 2xx from the primary before the upstream was seen starts the timer and is held", () => {
      const out = run(fpt, "end stream\nheaders 200\ntimeout");
      expect(out).toContain("headers 200 -> hold (holding-first-packet)");
      expect(out).toContain("timeout -> dispatch b1");
    });

    test("2xx headers are held until the first packet, then the stream flows", () => {
      const out = run(fpt, "end stream\nupstream\nheaders 200\nchunk keepalive\nchunk first\nchunk first");
      expect(out).toContain("headers 200 -> hold (holding-first-packet)");
      expect(out).toContain("chunk keepalive -> hold-buffered (holding-first-packet)");
      expect(out).toContain("chunk first -> continue (pass-through)");
    });

    test("the timer before any header starts the chain; a late primary is held as a last resort", () => {
      const out = run(fpt, "end stream\nupstream\ntimeout\nheaders 200\nanswer 0\nanswer 0");
      expect(out).toContain("timeout -> dispatch b1");
      expect(out).toContain("headers 200 -> hold-whole (falling-back)");
      expect(out).toContain("answer 0 -> resume-primary (resumed)");
      expect(out).toContain("trigger: first_packet_timeout");
    });

    test("a headers-only 2xx is complete: nothing waits for a first packet", () => {
      expect(run(fpt, "end stream\nupstream\nheaders 200 eos")).toContain("headers 200 eos -> continue (pass-through)");
    });

    test("a held 2xx primary beats a backup's error when the chain ends", () => {
      const out = run(fpt, "end stream\nupstream\nheaders 200\ntimeout\nanswer 500\nanswer 503");
      expect(out).toContain("answer 503 -> resume-primary (resumed)");
    });

    test("a held error primary loses to a later backup error (the last attempt's answer)", () => {
      expect(run(two, "end\nheaders 500\nanswer 429\nanswer 503")).toContain("answer 503 -> serve-last-error");
    });

    test("the timer with nothing at hand ends in the filter's own error", () => {
      expect(run(fpt, "end stream\nupstream\ntimeout\nanswer 0\nanswer 0")).toContain("answer 0 -> reply-error (replying)");
    });

    test("the timer after the first packet does nothing", () => {
      expect(run(fpt, "end stream\nupstream\nheaders 200\nchunk first\ntimeout")).toContain("timeout -> continue (pass-through)");
    });

    test("a streaming 4xx/5xx falls back like any other", () => {
      expect(run(fpt, "end stream\nupstream\nheaders 500")).toContain("headers 500 -> dispatch b1");
    });
  });

  describe("the rule of the route the request finally took (a filter behind changed the route)", () => {
    // Routes no rule matches have no fallback (no global backups): "route -1".
    const rules = {
      _rules_: [
        { _match_route_: ["chat"], backups: [{ service: "chat-b" }], firstPacketTimeout: 500 },
        { _match_route_: ["start"], backups: [{ service: "start-b" }] },
        { _match_route_: ["small"], backups: [{ service: "small-b" }], maxRequestBodyBytes: 4 },
        { _match_route_: ["slow"], backups: [{ service: "slow-b" }], firstPacketTimeout: 2000 },
        { _match_route_: ["untimed"], backups: [{ service: "untimed-b" }], firstPacketTimeout: 0 },
      ],
    };

    test("its backups are tried, not those chosen at the request's headers", () => {
      const out = run({ ...rules, backups: [{ service: "global-b" }] }, "body 5\nend\nroute 0\nheaders 503");
      expect(out).toContain("route 0 -> replayable");
      expect(out).toContain("headers 503 -> dispatch chat-b");
    });

    test("a final rule without backups, without the method, or with a smaller body limit replays nothing", () => {
      // chosen at the headers: the rule "start"; finally: a route no rule matches
      const none = run(rules, "body 5\nend\nroute 1\nroute -1\nheaders 503");
      expect(none).toContain("route -1 -> not replayable: its final route's rule has no backups");
      expect(none).toContain("headers 503 -> continue (pass-through)");
      const noMethod = run(rules, "body 5\nend\nroute 0 nomethod\nheaders 503");
      expect(noMethod).toContain("route 0 nomethod -> not replayable: its final route's rule does not replay its method");
      expect(noMethod).toContain("headers 503 -> continue (pass-through)");
      expect(run(rules, "body 5\nend\nroute 2\nheaders 503")).toContain("route 2 -> not replayable: request body over its final route's maxRequestBodyBytes (4)");
    });

    test("once the fallback started, the rule no longer changes", () => {
      const out = run({ ...rules, backups: [{ service: "global-b" }] }, "body 5\nend\nheaders 503\nroute 1\nanswer 200");
      expect(out).toContain("route 1 -> replayable");
      expect(out).toContain("attempts: primary;result=503, global-b;model=pass-through;result=200");
    });

    test("the first packet is timed by the final rule: later, or not at all (a held 2xx is released)", () => {
      const chat = { ...rules, backups: [{ service: "global-b" }], firstPacketTimeout: 500 };
      const later = run(chat, "end stream\nat 1000\nupstream\nat 1500\nroute 3\ntimeout\nat 3000\ntimeout");
      expect(later).toContain("route 3 -> replayable\ntimeout -> continue (awaiting)");
      expect(later).toContain("timeout -> dispatch slow-b");
      const untimed = run(chat, "end stream\nat 1000\nupstream\nheaders 200\nat 1500\nroute 4\ntimeout");
      expect(untimed).toContain("timeout -> release-primary (pass-through)");
      expect(untimed).toContain("attempts: \n");
    });
  });
});

describe("a model service's 4xx is held until its body says what it means", () => {
  const runDefault = (config, script) => w.runMachine(JSON.stringify(config), script.trim().split("\n").map((l) => l.trim()).join("\n"));
  const one = { backups: [{ service: "b1" }] };

  test("a refusal in neverTrigger passes through, reported; nothing is dispatched", () => {
    const out = runDefault(one, "end\nheaders 400\nmeaning invalid_request_error,content_filter whole");
    expect(out).toContain("headers 400 -> hold (reading-error-body)");
    expect(out).toContain("meaning invalid_request_error,content_filter whole -> continue (pass-through)");
    expect(out).toContain("report: never_trigger=content_filter");
    expect(out).toContain("attempts: \n");
  });

  test("another meaning falls back by status; the answer replaces the buffered error whole", () => {
    const out = runDefault(one, "end\nheaders 400\nmeaning context_length_exceeded whole\nanswer 200");
    expect(out).toContain("meaning context_length_exceeded whole -> dispatch b1 120000 (falling-back)");
    expect(out).toContain("answer 200 -> serve-backup (answering) swap-buffered");
    expect(out).toContain("trigger: status=400");
    expect(out).not.toContain("report:");
  });

  test("a body read only in part (or not at all) leaves the answer to be sent directly", () => {
    expect(runDefault(one, "end\nheaders 400\nmeaning - \nanswer 200")).toContain("answer 200 -> serve-backup (replying) direct");
  });

  test("alwaysTrigger: a status out of triggerStatuses falls back by its meaning", () => {
    const narrow = { ...one, triggerStatuses: ["5xx"] };
    expect(runDefault(narrow, "end\nheaders 400\nmeaning context_length_exceeded whole")).toContain("-> dispatch b1");
    expect(runDefault(narrow, "end\nheaders 400\nmeaning invalid_value whole")).toContain("meaning invalid_value whole -> continue (pass-through)");
  });

  test("nothing is held where the meaning cannot matter: a 5xx, a 429, a headers-only 4xx, a 2xx", () => {
    expect(runDefault(one, "end\nheaders 503")).toContain("headers 503 -> dispatch b1");
    expect(runDefault(one, "end\nheaders 429")).toContain("headers 429 -> dispatch b1");
    expect(runDefault(one, "end\nheaders 400 eos")).toContain("headers 400 eos -> dispatch b1");
    expect(runDefault(one, "end\nheaders 200")).toContain("headers 200 -> continue (pass-through)");
    expect(runDefault({ ...one, triggerStatuses: ["5xx"], alwaysTrigger: [] }, "end\nheaders 400")).toContain("headers 400 -> continue (pass-through)");
  });

  test("a request that cannot be replayed is not held for its meaning", () => {
    const out = runDefault({ ...one, maxRequestBodyBytes: 4 }, "body 5\nend\nheaders 400");
    expect(out).toContain("headers 400 -> continue (pass-through)");
    expect(out).toContain("declined: the request cannot be replayed");
  });
});
