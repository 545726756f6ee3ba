;; A test-only proxy-wasm module (never shipped): a neighbouring filter that refuses requests the way
;; guardrail modules written with the Rust or Go proxy-wasm SDKs do, with a local reply whose response
;; details are whatever it passes, usually none. A request carrying `x-refuse: <details>` is answered
;; 403 "refused by guardrail" with <details> as its response code details (empty value: no details),
;; once its whole body has arrived, as a content check would (the request is held until then). Every other request passes untouched.
;; One refusal is pending at a time (the tests send one request at a time). Built into
;; build/refuser.wasm by scripts/build_probe.mjs.
(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $send_local_response (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "x-refuse")
  (data (i32.const 32) "refused by guardrail")
  ;; an empty header map: a count of 0
  (data (i32.const 64) "\00\00\00\00")
  ;; the context whose refusal is pending (0 = none), and its details as the host wrote them
  (global $pending (mut i32) (i32.const 0))
  (global $details (mut i32) (i32.const 0))
  (global $details_size (mut i32) (i32.const 0))
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
  (func $refuse
    (global.set $pending (i32.const 0))
    (drop (call $send_local_response (i32.const 403) (global.get $details) (global.get $details_size)
      (i32.const 32) (i32.const 20) (i32.const 64) (i32.const 4) (i32.const -1))))
  (func (export "proxy_on_request_headers") (param $context i32) (param i32) (param $end i32) (result i32)
    (global.set $bump (i32.const 4096))
    (global.set $pending (i32.const 0))
    ;; map type 0 = request headers; WasmResult 0 = Ok (present): the value's pointer at 8, its size at 12
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 16) (i32.const 8) (i32.const 8) (i32.const 12)))
      (then
        (global.set $details (i32.load (i32.const 8)))
        (global.set $details_size (i32.load (i32.const 12)))
        (global.set $pending (local.get $context))
        ;; the request waits here (StopIteration): the primary never sees a refused request
        (if (local.get $end) (then (call $refuse)))
        (return (i32.const 1))))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param $context i32) (param i32) (param $end i32) (result i32)
    (if (i32.ne (global.get $pending) (local.get $context)) (then (return (i32.const 0))))
    ;; StopIterationAndBuffer until the body is whole, then the refusal
    (if (i32.eqz (local.get $end)) (then (return (i32.const 1))))
    (call $refuse)
    (i32.const 3)))
