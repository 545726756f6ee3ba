// The handoff way (issue 26): its configuration field, and the chain one hop carries to the next.
const { load } = require("../support/wasm");
const w = load();
const cfg = (obj) => w.configSummary(JSON.stringify(obj));

describe("handoff configuration", () => {
  test("off by default; \"higress-route-fallback\" turns it on, \"dispatch\" keeps the default, per rule too", () => {
    expect(cfg({ backups: [{ service: "a" }] }).global.handoff).toBe(false);
    expect(cfg({ backups: [{ service: "a" }], handoff: "dispatch" }).global.handoff).toBe(false);
    const c = cfg({ backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], handoff: "higress-route-fallback" }] });
    expect([c.global.handoff, c.rules[0].policy.handoff]).toEqual([false, true]);
  });

  test("any other value is refused, naming the field and the two values", () => {
    expect(cfg({ backups: [{ service: "a" }], handoff: true }).error)
      .toBe('handoff: must be "dispatch" (call backups from the filter, the default) or "higress-route-fallback" (mark the answer for Higress\'s route fallback), got true');
    expect(cfg({ backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], handoff: "route" }] }).error).toMatch(/^_rules_\[0\]\.handoff: must be "dispatch"/);
  });
});

describe("the carried chain", () => {
  test("round trip: the next hop, the trigger and every attempt", () => {
    expect(w.handoffChainRoundTrip(2, "status=503", "primary||503;backup-a|m-a|first_packet_timeout"))
      .toBe("2 status=503 primary;result=503, backup-a;model=m-a;result=first_packet_timeout");
  });

  test("anything this filter did not write reads as no chain", () => {
    for (const text of ["", "x\tstatus=503", "0\tstatus=503", "1", "1\tt\tonly\ttwo", "1000\tt"]) {
      expect(w.handoffChainRead(text)).toBe("null");
    }
  });
});
