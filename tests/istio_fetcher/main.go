// Pulls a Wasm module image with Istio's own image fetcher (istio.io/istio/pkg/wasm), the code Higress runs
// for `url: oci://...` (Higress's fork, higress-group/istio, has the same format handling; it differs in
// falling back to plain HTTP after any HTTPS error). Used by tests/istio_fetcher/run.mjs.
//
//	go run . REGISTRY/REPOSITORY:TAG   ->   {"manifestDigest":"<hex>","moduleSha256":"<hex>","size":N}
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"istio.io/istio/pkg/wasm"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: istio_fetcher REGISTRY/REPOSITORY:TAG")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Default options, as a WasmPlugin without imagePullSecret gets them.
	fetcher := wasm.NewImageFetcher(ctx, wasm.ImageFetcherOption{})
	fetchBinary, manifestDigest, err := fetcher.PrepareFetch(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "prepare:", err)
		os.Exit(1)
	}
	module, err := fetchBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(module)
	out, _ := json.Marshal(map[string]any{"manifestDigest": manifestDigest, "moduleSha256": hex.EncodeToString(sum[:]), "size": len(module)})
	fmt.Println(string(out))
}
