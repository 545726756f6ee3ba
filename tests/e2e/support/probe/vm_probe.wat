;; A test-only proxy-wasm module (never shipped): it lets the end-to-end tests make a VM trap on demand
;; (request header `x-trap`) and measure how far the host lets a VM's memory grow (`x-grow`: grows
;; page by page until memory.grow fails, then adds the page count to the counter vm_probe.max_pages).
;; Every other request passes untouched. Built into build/vm_probe.wasm by scripts/build_probe.mjs.
(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment_metric (param i32 i64) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "x-trap")
  (data (i32.const 32) "x-grow")
  (data (i32.const 48) "vm_probe.max_pages")
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
  (func $has_header (param $name i32) (param $len i32) (result i32)
    ;; map type 0 = request headers; WasmResult 0 = Ok (present)
    (i32.eqz (call $get_header (i32.const 0) (local.get $name) (local.get $len) (i32.const 8) (i32.const 12))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $bump (i32.const 4096))
    (if (call $has_header (i32.const 16) (i32.const 6)) (then unreachable))
    (if (call $has_header (i32.const 32) (i32.const 6))
      (then
        (block $full
          (loop $grow
            (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
            (br $grow)))
        ;; metric type 0 = counter; its id is written at 0
        (drop (call $define_metric (i32.const 0) (i32.const 48) (i32.const 18) (i32.const 0)))
        (drop (call $increment_metric (i32.load (i32.const 0)) (i64.extend_i32_u (memory.size))))))
    (i32.const 0)))
