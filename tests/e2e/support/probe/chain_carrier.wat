;; A test-only proxy-wasm module (never shipped): it stands in for Higress's route fallback where
;; upstream Envoy cannot recreate a stream a second time (its custom_response redirects once). A
;; request carrying `x-emulated-chain: <chain>` gets that chain as the stream property
;; `ai_fallback.handoff_chain` (what the filter handed on, in the filter's own wire form), and the
;; header is removed. Every other request passes untouched. Built into build/chain_carrier.wasm by
;; scripts/build_probe.mjs.
(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove_header (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_property (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "x-emulated-chain")
  (data (i32.const 48) "ai_fallback.handoff_chain")
  ;; Scratch for the host's return values: a bump allocator reset at every request.
  (global $bump (mut i32) (i32.const 4096))
  (func (export "malloc") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $bump))
    (global.set $bump (i32.add (local.get $at) (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8))))
    (local.get $at))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
  (func (export "proxy_on_request_headers") (param $context i32) (param i32) (param i32) (result i32)
    (global.set $bump (i32.const 4096))
    ;; map type 0 = request headers; WasmResult 0 = Ok (present): the value's pointer at 8, its size at 12
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 16) (i32.const 16) (i32.const 8) (i32.const 12)))
      (then
        (drop (call $set_property (i32.const 48) (i32.const 25) (i32.load (i32.const 8)) (i32.load (i32.const 12))))
        (drop (call $remove_header (i32.const 0) (i32.const 16) (i32.const 16)))))
    (i32.const 0)))
