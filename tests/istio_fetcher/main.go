// Fetches a Wasm module the way the Istio agent does for a WasmPlugin: istio.io/istio/pkg/wasm's
// LocalFileCache.Get, which runs its OCI image fetcher for oci:// urls and its HTTP fetcher for http(s)://
// urls, and compares the WasmPlugin's sha256 (the manifest digest for oci://, the module for http(s)://).
// Higress runs its fork of this code (higress-group/istio), with the same format handling. Used by
// tests/istio_fetcher/run.mjs.
//
//	istio_fetcher URL [SHA256 [PULL_SECRET_FILE]]   ->   {"moduleSha256":"<hex>","size":N}
//
// PULL_SECRET_FILE holds what an imagePullSecret gives the agent: a Docker config.json.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"istio.io/istio/pkg/wasm"
)

func main() {
	os.Exit(run())
}

func run() int {
	if len(os.Args) < 2 || len(os.Args) > 4 {
		fmt.Fprintln(os.Stderr, "usage: istio_fetcher URL [SHA256 [PULL_SECRET_FILE]]")
		return 2
	}
	opts := wasm.GetOptions{ResourceName: "higress-system/ai-fallback", ResourceVersion: "1", RequestTimeout: 30 * time.Second}
	if len(os.Args) > 2 {
		opts.Checksum = os.Args[2]
	}
	if len(os.Args) > 3 {
		secret, err := os.ReadFile(os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		opts.PullSecret = secret
	}
	dir, err := os.MkdirTemp("", "istio-wasm-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	// Few retries: a refused fetch should fail fast here.
	cache := wasm.NewLocalFileCache(dir, wasm.Options{HTTPRequestMaxRetries: 1})
	defer cache.Cleanup()
	path, err := cache.Get(os.Args[1], opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "get:", err)
		return 1
	}
	module, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sum := sha256.Sum256(module)
	out, _ := json.Marshal(map[string]any{"moduleSha256": hex.EncodeToString(sum[:]), "size": len(module)})
	fmt.Println(string(out))
	return 0
}
